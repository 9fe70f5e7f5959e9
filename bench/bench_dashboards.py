"""Benchmark of the dashboards and the élu's report (``make bench-dashboards``).

On the national bench data (``manage.py generate_bench_data``, as ``make bench-plan``),
serves the project with gunicorn and DEBUG off through the harness of bench/bench_pages.py
(server, session cookies, query counts), and requests each role's home — élu, chef de
projet, préfecture, national staff, partner — RUNS times, the pages taking turns, against the
project's cheapest view (/healthz) in the same run: absolute times on a shared machine move
from run to run, ratios much less. The dashboards' figures are cached (tableaux/cache.py):
after the warm-up the homes are served from the cache, as in production between two
changes; the cost of recomputing them (cache empty, in-process) is printed too. Then renders
the bilan PDF of a 50-fiche plan PDF_RUNS times.

Targets (issue 12): national dashboard ≤ 20× the cheapest view; élu and préfecture
dashboards ≤ 15×; ≤ 12 SQL queries for a dashboard's own figures; the bilan of a 50-fiche
plan ≤ 3 s. The chef de projet's and the partner's homes are reported without a target.
"""

import http.client
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pages import PORT, get, query_count, serve, session_cookie  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
WARM_UP, COLD_RUNS, PDF_RUNS = 2, 5, 5
TARGETS = {"national": 20, "prefecture": 15, "elu": 15}
TARGET_PDF_S = 3.0
LABELS = {
    "elu": "Élu",
    "cdp": "Chef de projet",
    "prefecture": "Préfecture",
    "national": "National",
    "partenaire": "Partenaire",
}


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    # The bench logs in with a session cookie, without a second factor: the MFA rule (national
    # staff, préfectures) would send every page to the MFA form. gunicorn inherits it.
    os.environ.setdefault("PVD_MFA_ENFORCED", "false")
    import django

    django.setup()


def cast(beneficiaire) -> dict:
    """The bench's users, one per role (created once, idempotent), and a few reminders for
    the élu and the chef de projet, as the daily sweep would have left them."""
    from django.utils import timezone

    from pvd.models import Role, User
    from rappels.models import Categorie, Rappel

    def user(email, kind, organisation="", **perimeter):
        account, _ = User.objects.get_or_create(email=email)
        role, _ = Role.objects.get_or_create(
            user=account, kind=kind, defaults={"organisation": organisation}
        )
        for name, values in perimeter.items():
            getattr(role, name).set(values)
        return account

    users = {
        "elu": user(
            "bench-elu@pvd.invalid",
            Role.Kind.ELU,
            communes=list(beneficiaire.communes.values_list("code", flat=True)[:1]),
        ),
        "cdp": user("bench-cdp@pvd.invalid", Role.Kind.CHEF_PROJET, beneficiaires=[beneficiaire]),
        "prefecture": user(
            "bench-prefecture@pvd.invalid",
            Role.Kind.PREFECTURE,
            departements=[beneficiaire.departement_id],
        ),
        "national": user("bench-national@pvd.invalid", Role.Kind.NATIONAL),
        "partenaire": user(
            "bench-partenaire@pvd.invalid", Role.Kind.PARTENAIRE, "Banque des Territoires"
        ),
    }
    today = timezone.localdate()
    for who in ("elu", "cdp"):
        for i in range(8):
            Rappel.objects.get_or_create(
                regle="bench",
                objet=f"fiche:{i}",
                echeance=today,
                destinataire=users[who],
                defaults={
                    "categorie": Categorie.PLANS,
                    "beneficiaire": beneficiaire,
                    "message": f"{beneficiaire.nom} : rappel d'essai n° {i}",
                    "lien": f"/actions/beneficiaire/{beneficiaire.pk}/",
                },
            )
    return users


def cold_ms(user) -> float:
    """The home's median in-process with the dashboards' cache emptied before each request:
    what the first reader after a change waits."""
    from django.core.cache import cache
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    timings = []
    for _ in range(COLD_RUNS):
        cache.clear()
        start = time.perf_counter()
        client.get("/")
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


def main() -> None:
    setup()
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from actions.management.commands.generate_bench_data import bench_beneficiaires
    from actions.models import FicheAction, LigneFinancement
    from tableaux.bilan import render_bilan

    print(
        f"Base : {settings.DATABASES['default']['NAME']} ; "
        f"cache : {settings.CACHES['default']['BACKEND']}"
    )
    beneficiaires = bench_beneficiaires().order_by("pk")
    total = beneficiaires.count()
    if not total:
        sys.exit("Pas de données d'essai : lancez « manage.py generate_bench_data ».")
    beneficiaire = beneficiaires[total // 2]
    print(
        f"{total} bénéficiaires, {FicheAction.objects.count()} fiches, "
        f"{LigneFinancement.objects.count()} lignes de financement ; plan mesuré : "
        f"{beneficiaire.nom} ({beneficiaire.fiches.count()} fiches)"
    )
    users = cast(beneficiaire)
    cookies = {who: session_cookie(user) for who, user in users.items()}
    cookies["healthz"] = ""
    queries = {who: query_count(user, "/") for who, user in users.items()}
    cold = {who: cold_ms(user) for who, user in users.items()}
    connection.close()  # gunicorn's workers open their own

    urls = {"healthz": "/healthz", **{who: "/" for who in users}}
    server = serve()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        timings: dict[str, list[float]] = {who: [] for who in urls}
        sizes: dict[str, int] = {}
        for who, url in urls.items():
            for _ in range(WARM_UP):
                get(conn, url, cookies[who])
        for _ in range(RUNS):
            for who, url in urls.items():
                elapsed, sizes[who] = get(conn, url, cookies[who])
                timings[who].append(elapsed)
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    cheapest = statistics.median(timings["healthz"])
    print(f"{RUNS} requêtes HTTP par page (gunicorn, DEBUG désactivé), médianes :")
    print(
        f"{'Page':<34} {'médiane':>9} {'ratio':>7} {'objectif':>16} {'requêtes SQL':>13} "
        f"{'cache vide':>11} {'taille':>8}"
    )
    print(f"{'Vue la moins chère (/healthz)':<34} {cheapest * 1000:>6.1f} ms {1:>6.0f}×")
    failed = False
    for who in users:
        median = statistics.median(timings[who])
        ratio = median / cheapest
        target = TARGETS.get(who)
        verdict = ""
        if target:
            ok = ratio <= target
            failed |= not ok
            verdict = f"≤ {target}× {'atteint' if ok else 'DÉPASSÉ'}"
        print(
            f"{'Accueil, ' + LABELS[who]:<34} {median * 1000:>6.1f} ms {ratio:>6.1f}× "
            f"{verdict:>16} {queries[who]:>13} {cold[who]:>8.0f} ms {sizes[who] / 1024:>5.0f} Kio"
        )
    print(
        "(requêtes SQL : la page entière, cache des tableaux plein ; cache vide : médiane "
        "dans le processus, chiffres recalculés à chaque requête)"
    )

    connection.connect()
    today = timezone.localdate()
    render_bilan(beneficiaire, today)  # warm: imports, fonts
    pdf_timings = []
    for _ in range(PDF_RUNS):
        start = time.perf_counter()
        content = render_bilan(beneficiaire, today)
        pdf_timings.append(time.perf_counter() - start)
    median = statistics.median(pdf_timings)
    ok = median <= TARGET_PDF_S
    failed |= not ok
    print(
        f"Bilan PDF ({beneficiaire.fiches.count()} fiches) : médiane {median:.2f} s "
        f"(max {max(pdf_timings):.2f} s, {len(content) / 1024:.0f} Kio) ; objectif ≤ "
        f"{TARGET_PDF_S} s : {'atteint' if ok else 'DÉPASSÉ'}"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
