"""Benchmark of the pages as users feel them, cold and warm (``make bench-pages``).

Serves the project with gunicorn (``gunicorn.conf.py``: gthread workers; DEBUG off through
``bench/settings.py``) on the database of DATABASE_URL, filled by ``generate_bench_data`` and,
when the official files are there, the national reference data and the ANCT lists, with the
cache of REDIS_URL shared by the bench and the workers. Logs each role in with a session
cookie and asks every page of issue 26 — each role's home, the préfecture's table, the
bénéficiaires list, a fiche, the plan right after a change of one of its fiches, the posts
lists, the map page and its data — in rounds, the pages taking turns so that the machine's
load weighs on all of them alike:

- « à froid » (cold): right after an invalidation as a real change makes it, a renewal of
  the cache versions (``tableaux.cache.renew_everything()``: every territory's, as if a
  change had touched each reader's own territory), the programme's figures left as beat
  leaves them (``refresh_programme`` run once before, as beat does after a deployment:
  served stale while a refresh is queued); for the plan, right after a change of one of its
  fiches (``save()``: its signals give the new versions the portal's forms would);
- « à chaud » (warm): the same page asked again at once;
- « cache vidé » (empty cache): once per page, right after ``cache.clear()``, what the first
  reader after a deployment pays before beat's first precompute (programme figures too).

Each median is printed as a ratio to the project's cheapest view (``/healthz``) measured in
the same rounds: absolute times move from run to run on a shared machine, ratios much less.
Requests say ``Accept-Encoding: gzip`` as browsers do: sizes are on the wire. The SQL query
count of each page, cold and warm, is measured in-process (Django's test client). Then
USERS users at once, just after an invalidation, each asking the pages of their role: p50,
p95, p99 and errors. The machine's load (``os.getloadavg``) is printed at the start and the
end. Asserts nothing: targets (issue 26) are ≤ 10× cold and warm, p95 ≤ 200 ms, 0 errors.
"""

import http.client
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
WARM_UP = 2
PORT = int(os.environ.get("BENCH_PORT", "9401"))
USERS = int(os.environ.get("BENCH_USERS", "50"))
USER_REQUESTS = int(os.environ.get("BENCH_USER_REQUESTS", "6"))  # each user, one after another
# Only the pages whose label holds one of these words (« | » between them), /healthz always:
# to measure one page while working on it. Empty: every page.
ONLY = [w for w in os.environ.get("BENCH_ONLY", "").split("|") if w]
TARGET = 10
HEALTHZ = "Vue la moins chère (/healthz)"


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def cast() -> tuple[dict[str, tuple[str, str]], dict[str, object], object]:
    """The pages to measure (label -> (role, URL)), the users who ask them (one per role,
    created once, idempotent) and the fiche the plan's « after a change » edits."""
    from actions.management.commands.generate_bench_data import bench_beneficiaires
    from bench.bench_dashboards import cast as users_for

    beneficiaires = bench_beneficiaires().order_by("pk")
    total = beneficiaires.count()
    if not total:
        sys.exit(
            "Pas de données d'essai dans cette base : lancez d'abord "
            "« manage.py generate_bench_data » (make bench-pages le fait)."
        )
    beneficiaire = beneficiaires[total // 2]  # in the middle of the table
    users = users_for(beneficiaire)
    fill_journal(beneficiaire, users["cdp"])
    fiche = beneficiaire.fiches.order_by("pk").first()
    departement = beneficiaire.departement_id
    pages = {
        HEALTHZ: ("", "/healthz"),
        # What every logged-in page pays before its own content (session, user, perimeter,
        # header and footer): a page of text, for a logged-in reader.
        "Mentions légales (connecté)": ("national", "/mentions-legales/"),
        "Accueil, élu": ("elu", "/"),
        "Accueil, chef de projet": ("cdp", "/"),
        "Accueil, préfecture": ("prefecture", "/"),
        "Accueil, national": ("national", "/"),
        "Accueil, partenaire": ("partenaire", "/"),
        "Tableau de la préfecture": ("prefecture", f"/?departement={departement}"),
        "Liste des bénéficiaires": ("national", "/beneficiaires/"),
        "Fiche action": ("cdp", f"/actions/fiches/{fiche.pk}/"),
        f"Plan d'action ({beneficiaire.fiches.count()} fiches)": (
            "cdp",
            f"/actions/beneficiaire/{beneficiaire.pk}/",
        ),
        "Postes, national": ("national", "/postes/"),
        "Postes, préfecture": ("prefecture", "/postes/"),
        "Carte (page)": ("national", "/carte/"),
        "Carte, communes (GeoJSON)": ("national", "/carte/donnees.geojson"),
        "Carte, fiches (JSON)": ("national", "/carte/fiches.json"),
    }
    if ONLY:
        pages = {
            label: page
            for label, page in pages.items()
            if label == HEALTHZ or any(word in label for word in ONLY)
        }
    return pages, users, fiche


def fill_journal(beneficiaire, auteur) -> None:
    """The bench data is written without audit trail: give the journal a page of entries whose
    foreign keys point at different objects (a progress note on each fiche of the plan)."""
    from actions.models import PointAvancement

    texte = "Point d'étape (mesure des pages)"
    for fiche in beneficiaire.fiches.exclude(points__texte=texte):
        PointAvancement.objects.create(fiche=fiche, texte=texte, auteur=auteur)


def change(fiche) -> None:
    """One fiche of the plan changed, as its form saves it (signals and all)."""
    from actions.models import FicheAction

    fiche = FicheAction.objects.get(pk=fiche.pk)
    fiche.description = f"Modifiée par la mesure des pages ({time.monotonic_ns()})"
    fiche.save()


def invalidate() -> None:
    """What a change does, in every territory at once: new versions of every scope (the
    programme's figures, kept across versions, are then served stale while refreshed)."""
    from tableaux.cache import renew_everything

    renew_everything()


def empty() -> None:
    """Every cached figure and fragment gone: right after a deployment, before beat's first
    precompute of the programme's figures."""
    from django.core.cache import cache

    cache.clear()


def precompute() -> None:
    """The programme's figures of every territory, as beat leaves them."""
    from tableaux.cache import refresh_programme

    refresh_programme()


def session_cookie(user) -> str:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def query_count(user, url: str, before=None) -> int:
    """The page's queries in-process: asked once (warm-up), then ``before()`` (an
    invalidation, a change: nothing by default, the warm count) and asked again."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    if user is not None:
        client.force_login(user)
    client.get(url)
    if before is not None:
        before()
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return len(queries)


def serve() -> subprocess.Popen:
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "gunicorn"),
            "pvd.wsgi",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{PORT}",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "bench.settings", "GUNICORN_ACCESS_LOG": ""},
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            return server
        except OSError:
            if server.poll() is not None:
                sys.exit(f"gunicorn s'est arrêté au démarrage (code {server.returncode}).")
            time.sleep(0.2)
    server.terminate()
    sys.exit(f"gunicorn ne répond pas sur le port {PORT}.")


def get(connection: http.client.HTTPConnection, url: str, cookie: str) -> tuple[float, int]:
    """One request: its time and the size of its body on the wire."""
    start = time.perf_counter()
    connection.request(
        "GET", url, headers={"Cookie": cookie, "Host": "127.0.0.1", "Accept-Encoding": "gzip"}
    )
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        sys.exit(f"{url} répond {response.status}, rien à mesurer.")
    return elapsed, len(body)


def crowd(pages: dict, cookies: dict) -> dict:
    """USERS users at once, each on their own connection, asking USER_REQUESTS pages of
    their role in turn (roles dealt round the table), started together just after an
    invalidation (every territory's versions renewed). Latencies of every request, and
    errors (no 200, or no answer)."""
    by_role: dict[str, list[str]] = {}
    for role, url in pages.values():
        if role:
            by_role.setdefault(role, []).append(url)
    roles = sorted(by_role)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(USERS + 1)

    def user(n: int) -> None:
        role = roles[n % len(roles)]
        urls = by_role[role]
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
        start.wait()
        for i in range(USER_REQUESTS):
            url = urls[(n + i) % len(urls)]
            t0 = time.perf_counter()
            try:
                headers = {"Cookie": cookies[role], "Host": "127.0.0.1", "Accept-Encoding": "gzip"}
                conn.request("GET", url, headers=headers)
                response = conn.getresponse()
                response.read()
                status = response.status
            except (OSError, http.client.HTTPException) as exc:
                status = type(exc).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                if status != 200:
                    errors.append(f"{url} : {status}")
        conn.close()

    threads = [threading.Thread(target=user, args=(n,)) for n in range(USERS)]
    for thread in threads:
        thread.start()
    invalidate()
    began = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    duration = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "duration": duration,
        "p50": pct(0.50),
        "p95": pct(0.95),
        "p99": pct(0.99),
        "max": latencies[-1] * 1000,
        "errors": errors,
    }


def main() -> None:
    os.environ.setdefault("PVD_MFA_ENFORCED", "false")  # session cookies, no second factor
    setup()
    from django.conf import settings
    from django.db import connection

    from actions.models import FicheAction
    from communes.models import Beneficiaire

    if not settings.CACHES["default"]["BACKEND"].startswith("pvd.cache"):
        sys.exit(
            "REDIS_URL manque : la mesure à froid vide le cache que partagent la mesure et "
            "les workers de gunicorn (un cache par processus ne le permet pas)."
        )
    print(f"Charge de la machine au départ (1, 5, 15 min) : {load()} ; {os.cpu_count()} cœurs")
    print(
        f"Base : {connection.vendor} {settings.DATABASES['default']['NAME']} ; "
        f"{Beneficiaire.objects.count()} bénéficiaires, {FicheAction.objects.count()} fiches ; "
        f"cache : {settings.CACHES['default']['LOCATION']}"
    )
    # As autovacuum keeps a production database: statistics for the planner, and the
    # visibility map for index-only scans (a database just copied or filled has neither).
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    pages, users, fiche = cast()
    cookies = {role: session_cookie(user) for role, user in users.items()}
    # The cheapest view is asked without a session, as a load balancer does: with one, it
    # would pay the session and the user too, the floor of every logged-in page.
    cookies[""] = ""
    plan_url = f"/actions/beneficiaire/{fiche.beneficiaire_id}/"

    def before_cold(url: str):
        return (lambda: change(fiche)) if url == plan_url else invalidate

    precompute()
    queries = {}
    for label, (role, url) in pages.items():
        user = users.get(role)
        queries[label] = (query_count(user, url, before_cold(url)), query_count(user, url))
    connection.close()  # gunicorn's workers open their own

    server = serve()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        cold: dict[str, list[float]] = {label: [] for label in pages}
        warm: dict[str, list[float]] = {label: [] for label in pages}
        sizes: dict[str, int] = {}
        for role, url in pages.values():
            for _ in range(WARM_UP):
                get(conn, url, cookies[role])
        for _ in range(RUNS):
            for label, (role, url) in pages.items():
                before_cold(url)()
                cold[label].append(get(conn, url, cookies[role])[0])
                elapsed, sizes[label] = get(conn, url, cookies[role])
                warm[label].append(elapsed)
        emptied = {}
        for label, (role, url) in pages.items():
            empty()
            emptied[label] = get(conn, url, cookies[role])[0]
        precompute()  # beat's first run after the deployment
        conn.close()
        crowded = crowd(pages, cookies) if USERS else None
        connection.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    cheapest = statistics.median(warm[HEALTHZ])
    print(
        f"{RUNS} tours (gunicorn, DEBUG désactivé) ; à froid : juste après le renouvellement "
        "des versions de tous les territoires (renew_everything, les chiffres du programme "
        "précalculés par le beat ; le plan : juste après la modification d'une de ses fiches) ; "
        "à chaud : aussitôt après ; cache vidé : une fois, juste après cache.clear() (premier "
        "lecteur après un déploiement, avant le premier précalcul du beat)."
    )
    header = (
        f"{'Page':<34} {'froid':>9} {'ratio':>7} {'chaud':>9} {'ratio':>7} "
        f"{'SQL froid':>9} {'chaud':>6} {'taille':>8} {'cache vidé':>11}"
    )
    print(header)
    over = []
    for label in pages:
        c, w = statistics.median(cold[label]), statistics.median(warm[label])
        rc, rw = c / cheapest, w / cheapest
        if max(rc, rw) > TARGET:
            over.append(label)
        print(
            f"{label:<34} {c * 1000:>6.1f} ms {rc:>6.1f}× {w * 1000:>6.1f} ms {rw:>6.1f}× "
            f"{queries[label][0]:>9} {queries[label][1]:>6} {sizes[label] / 1024:>5.0f} Kio "
            f"{emptied[label] / cheapest:>10.1f}×"
        )
    print(f"Au-delà de {TARGET}× /healthz : {', '.join(over) if over else 'aucune'}")
    if crowded is None:
        print(f"Charge de la machine à la fin (1, 5, 15 min) : {load()}")
        return
    print(
        f"{USERS} utilisateurs à la fois juste après renew_everything(), {USER_REQUESTS} pages "
        f"chacun : {crowded['requests']} requêtes en {crowded['duration']:.1f} s ; p50 "
        f"{crowded['p50']:.0f} ms, p95 {crowded['p95']:.0f} ms, p99 {crowded['p99']:.0f} ms, "
        f"max {crowded['max']:.0f} ms ; {len(crowded['errors'])} erreur"
        f"{'s' if len(crowded['errors']) > 1 else ''}"
    )
    for error in crowded["errors"][:5]:
        print(f"  {error}")
    print(f"Charge de la machine à la fin (1, 5, 15 min) : {load()}")


if __name__ == "__main__":
    main()
