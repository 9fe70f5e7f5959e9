"""Benchmark of the dashboards and the élu's report (``make bench-dashboards``).

On the national bench data (``manage.py generate_bench_data``, as ``make bench-plan``),
serves the project with gunicorn and DEBUG off through the harness of bench/bench_pages.py
(server, session cookies, query counts), and requests each role's home — élu, chef de
projet, préfecture (its table, plain and sorted), national staff, partner — RUNS times, the
pages taking turns, against the project's cheapest view (/healthz) in the same run: absolute
times on a shared machine move from run to run, ratios much less. Each home is measured
three ways (tableaux/cache.py keeps a version per territory):

- warm: served from the cache, as between two changes;
- cold, another territory: right after a change to a fiche of a beneficiary in another
  région (saved through the ORM here, with its signals): the home should stay warm;
- cold, own territory: right after a change to a fiche of the home's own beneficiary (for
  the national and partner homes, a change anywhere: their figures are served stale while
  a refresh is queued).

It also times beat's precompute of every territory's programme figures
(``refresh_programme``: France, every région, every département, every partner's part), the
homes recomputed in-process with the whole cache emptied (the first reader after a
deployment, nothing ever computed), and the bilan PDF of a 50-fiche plan PDF_RUNS times.
Prints the machine's load at the start and the end.

Targets (issue 26): every home ≤ 10× the cheapest view, warm and cold; (issue 12) the bilan
of a 50-fiche plan ≤ 3 s.
"""

import http.client
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pages import PORT, get, serve, session_cookie  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
WARM_UP, COLD_RUNS, PDF_RUNS = 2, 3, 5
TARGET = 10  # × /healthz, every home, warm and cold
TARGET_PDF_S = 3.0
LABELS = {
    "elu": "Élu",
    "cdp": "Chef de projet",
    "prefecture": "Préfecture",
    "prefecture_table": "Préfecture, tableau trié",
    "national": "National",
    "partenaire": "Partenaire",
}
MODES = {"chaud": "chaud", "autre": "froid, autre territoire", "sien": "froid, son territoire"}


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
    # The partner follows the catalogue's Banque des Territoires: its own part is shown.
    from actions.models import Financeur

    role = Role.objects.get(user=users["partenaire"], kind=Role.Kind.PARTENAIRE)
    role.financeurs.set(Financeur.objects.filter(nom="Banque des Territoires"))
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


def cold_ms(user, url: str) -> float:
    """The home's median in-process with the whole cache emptied before each request: what
    the first reader after a deployment waits (no figure ever computed)."""
    from django.core.cache import cache
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    timings = []
    for _ in range(COLD_RUNS):
        cache.clear()
        start = time.perf_counter()
        client.get(url)
        timings.append(time.perf_counter() - start)
    return statistics.median(timings) * 1000


def touch(fiche) -> None:
    """A change to a fiche through the ORM, as the plan's form saves it: its signals renew
    its territory's versions."""
    fiche.titre = fiche.titre[:-2] if fiche.titre.endswith(" ·") else f"{fiche.titre} ·"
    fiche.save()


def in_process_queries(user, url: str, change=None) -> int:
    """The home's SQL queries in-process, warm or right after ``change``."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    client.get(url)
    client.get(url)
    if change:
        change()
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return len(queries)


def load() -> str:
    return " ".join(f"{n:.2f}" for n in os.getloadavg())


def main() -> None:
    setup()
    from django.conf import settings
    from django.db import connection
    from django.utils import timezone

    from actions.management.commands.generate_bench_data import bench_beneficiaires
    from actions.models import FicheAction, LigneFinancement
    from communes.models import Beneficiaire
    from tableaux import cache as dashboard_cache
    from tableaux.bilan import render_bilan

    print(
        f"Base : {settings.DATABASES['default']['NAME']} ; "
        f"cache : {settings.CACHES['default']['BACKEND']} ; "
        f"{os.cpu_count()} cœurs ; charge au départ : {load()}"
    )
    beneficiaires = bench_beneficiaires().order_by("pk")
    total = beneficiaires.count()
    if not total:
        sys.exit("Pas de données d'essai : lancez « manage.py generate_bench_data ».")
    beneficiaire = beneficiaires[total // 2]
    # Another région when one has a plan (the demo's), else another département.
    avec_plan = Beneficiaire.objects.filter(fiches__isnull=False).order_by("pk")
    ailleurs = (
        avec_plan.exclude(departement__region=beneficiaire.departement.region_id).first()
        or avec_plan.exclude(departement=beneficiaire.departement_id).first()
    )
    print(
        f"{total} bénéficiaires, {FicheAction.objects.count()} fiches, "
        f"{LigneFinancement.objects.count()} lignes de financement ; plan mesuré : "
        f"{beneficiaire.nom} ({beneficiaire.fiches.count()} fiches, département "
        f"{beneficiaire.departement_id}) ; changement ailleurs : {ailleurs.nom} (département "
        f"{ailleurs.departement_id})"
    )
    users = cast(beneficiaire)
    users["prefecture_table"] = users["prefecture"]
    urls = {who: "/" for who in users}
    urls["prefecture_table"] = "/?tri=-retards"
    own = beneficiaire.fiches.order_by("pk").first()
    other = ailleurs.fiches.order_by("pk").first()
    changes = {"chaud": None, "autre": lambda: touch(other), "sien": lambda: touch(own)}
    cookies = {who: session_cookie(user) for who, user in users.items()}
    cookies["healthz"] = ""

    emptied = {who: cold_ms(user, urls[who]) for who, user in users.items()}
    start = time.perf_counter()
    stored = dashboard_cache.refresh_programme() or {}
    precompute = time.perf_counter() - start
    print(
        f"Précalcul de tous les chiffres du programme (beat) : {precompute:.1f} s pour "
        + ", ".join(f"{level} {n}" for level, n in stored.items())
    )
    queries = {
        mode: {who: in_process_queries(user, urls[who], change) for who, user in users.items()}
        for mode, change in changes.items()
    }
    connection.close()  # gunicorn's workers open their own

    pages = {"healthz": "/healthz", **urls}
    timings: dict[str, dict[str, list[float]]] = {}
    sizes: dict[str, int] = {}
    server = serve()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        for who, url in pages.items():
            for _ in range(WARM_UP):
                get(conn, url, cookies[who])
        for mode, change in changes.items():
            timings[mode] = {who: [] for who in pages}
            for _ in range(RUNS):
                for who, url in pages.items():
                    if change and who != "healthz":
                        change()
                    elapsed, sizes[who] = get(conn, url, cookies[who])
                    timings[mode][who].append(elapsed)
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    print(f"{RUNS} requêtes HTTP par page et par mode (gunicorn, DEBUG désactivé), médianes :")
    print(f"{'Page':<34} {'mode':<24} {'médiane':>9} {'ratio':>7} {'≤ 10×':>8} {'SQL':>5}")
    failed = False
    for mode, label in MODES.items():
        cheapest = statistics.median(timings[mode]["healthz"])
        print(f"{'Vue la moins chère (/healthz)':<34} {label:<24} {cheapest * 1000:>6.1f} ms")
        for who in users:
            median = statistics.median(timings[mode][who])
            ratio = median / cheapest
            ok = ratio <= TARGET
            failed |= not ok
            print(
                f"{'Accueil, ' + LABELS[who]:<34} {label:<24} {median * 1000:>6.1f} ms "
                f"{ratio:>6.1f}× {'atteint' if ok else 'DÉPASSÉ':>8} {queries[mode][who]:>5}"
            )
    print(
        "(SQL : requêtes de la page entière dans le processus, au même moment ; le changement "
        "lui-même n'est pas compté)"
    )
    print("Cache entièrement vidé (premier lecteur après un déploiement), dans le processus :")
    for who in users:
        print(f"  Accueil, {LABELS[who]:<26} {emptied[who]:>8.0f} ms ({sizes[who] / 1024:.0f} Kio)")
    print(f"Charge à la fin : {load()}")

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
