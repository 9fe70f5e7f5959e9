"""Benchmark of the main pages as users feel them (``make bench-pages``).

Serves the project with gunicorn (``gunicorn.conf.py``: gthread workers; DEBUG off through
``bench/settings.py``) on the database of DATABASE_URL, filled by ``generate_bench_data`` and,
when the official files are there, the national reference data and the ANCT lists. Logs in
with a session cookie, then requests each page RUNS times, the pages taking turns so that the
machine's load weighs on all of them alike. Prints each page's median and its ratio to the
project's cheapest view (``/healthz``) measured in the same run: absolute times move from run
to run on a shared machine, ratios much less. The SQL query count of each page is measured
in-process (Django's test client), once per page. Asserts nothing.
"""

import http.client
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("BENCH_RUNS", "20"))
WARM_UP = 2
PORT = int(os.environ.get("BENCH_PORT", "9401"))


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    import django

    django.setup()


def cast() -> tuple[dict[str, str], dict[str, object]]:
    """The pages to measure and the users who request them (created once, idempotent)."""
    from actions.management.commands.generate_bench_data import bench_beneficiaires
    from pvd.models import Role, User

    beneficiaires = bench_beneficiaires().order_by("pk")
    total = beneficiaires.count()
    if not total:
        sys.exit(
            "Pas de données d'essai dans cette base : lancez d'abord "
            "« manage.py generate_bench_data » (make bench-pages le fait)."
        )
    beneficiaire = beneficiaires[total // 2]  # in the middle of the table
    national, _ = User.objects.get_or_create(email="bench-national@pvd.invalid")
    Role.objects.get_or_create(user=national, kind=Role.Kind.NATIONAL)
    cdp, _ = User.objects.get_or_create(email="bench-cdp@pvd.invalid")
    role, _ = Role.objects.get_or_create(user=cdp, kind=Role.Kind.CHEF_PROJET)
    role.beneficiaires.set([beneficiaire])
    fill_journal(beneficiaire, cdp)
    pages = {
        "Vue la moins chère (/healthz)": "/healthz",
        # What every logged-in page pays before its own content (session, user, perimeter,
        # header and footer): a page of text, for a logged-in reader.
        "Mentions légales (connecté)": "/mentions-legales/",
        f"Plan d'action ({beneficiaire.fiches.count()} fiches)": (
            f"/actions/beneficiaire/{beneficiaire.pk}/"
        ),
        "Synthèse nationale": "/beneficiaires/synthese/",
        "Journal": "/journal/",
        "Liste des bénéficiaires": "/beneficiaires/",
        "Accueil": "/",
    }
    return pages, {"national": national, "cdp": cdp}


def fill_journal(beneficiaire, auteur) -> None:
    """The bench data is written without audit trail: give the journal a page of entries whose
    foreign keys point at different objects (a progress note on each fiche of the plan)."""
    from actions.models import PointAvancement

    texte = "Point d'étape (mesure des pages)"
    for fiche in beneficiaire.fiches.exclude(points__texte=texte):
        PointAvancement.objects.create(fiche=fiche, texte=texte, auteur=auteur)


def session_cookie(user) -> str:
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def query_count(user, url: str) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    if user is not None:
        client.force_login(user)
    client.get(url)
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
    start = time.perf_counter()
    connection.request("GET", url, headers={"Cookie": cookie, "Host": "127.0.0.1"})
    response = connection.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    if response.status != 200:
        sys.exit(f"{url} répond {response.status}, rien à mesurer.")
    return elapsed, len(body)


def main() -> None:
    setup()
    from django.conf import settings
    from django.db import connection

    from actions.models import FicheAction
    from communes.models import Beneficiaire

    print(
        f"Base : {connection.vendor} {settings.DATABASES['default']['NAME']} ; "
        f"{Beneficiaire.objects.count()} bénéficiaires, {FicheAction.objects.count()} fiches"
    )
    pages, users = cast()
    # The chef de projet sees their plan; national staff every other page.
    who = {url: users["cdp"] if "/actions/" in url else users["national"] for url in pages.values()}
    cookies = {name: session_cookie(user) for name, user in users.items()}
    cookie_for = {
        url: cookies["cdp"] if user == users["cdp"] else cookies["national"]
        for url, user in who.items()
    }
    # The cheapest view is asked without a session, as a load balancer does: with one, it
    # would pay the session and the user too, the floor of every logged-in page.
    cookie_for["/healthz"] = ""
    queries = {url: query_count(who[url], url) for url in pages.values() if url != "/healthz"}
    queries["/healthz"] = query_count(None, "/healthz")
    connection.close()  # gunicorn's workers open their own

    server = serve()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        timings: dict[str, list[float]] = {url: [] for url in pages.values()}
        sizes: dict[str, int] = {}
        for url in pages.values():
            for _ in range(WARM_UP):
                get(conn, url, cookie_for[url])
        for _ in range(RUNS):
            for url in pages.values():
                elapsed, sizes[url] = get(conn, url, cookie_for[url])
                timings[url].append(elapsed)
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    cheapest = statistics.median(timings["/healthz"])
    print(f"{RUNS} requêtes HTTP par page (gunicorn, DEBUG désactivé), médianes :")
    print(f"{'Page':<36} {'médiane':>9} {'ratio':>7} {'requêtes SQL':>13} {'taille':>9}")
    for label, url in pages.items():
        median = statistics.median(timings[url])
        print(
            f"{label:<36} {median * 1000:>6.1f} ms {median / cheapest:>6.1f}× "
            f"{queries[url]:>13} {sizes[url] / 1024:>6.0f} Kio"
        )


if __name__ == "__main__":
    main()
