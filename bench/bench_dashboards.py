"""Benchmark of the dashboards and the élu's report (``make bench-dashboards``).

On the national bench data (``manage.py generate_bench_data``, as ``make bench-plan``),
measures each role's home, DEBUG off, against the cheapest view (/healthz) in the same run
(absolute times on a shared machine move from run to run, the ratio much less), then
renders the bilan PDF of a 50-fiche plan 5 times.

Targets: national dashboard ≤ 20× the cheapest view; élu and préfecture dashboards ≤ 15×;
the bilan of a 50-fiche plan ≤ 3 s.
"""

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WARM_UP, RUNS, PDF_RUNS = 2, 9, 5
TARGETS = {"national": 20, "prefecture": 15, "elu": 15}
TARGET_PDF_S = 3.0


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    # The bench logs in with force_login, without a second factor: the MFA rule (national
    # staff, préfectures) would send every page to the MFA form.
    os.environ.setdefault("PVD_MFA_ENFORCED", "false")
    import django

    django.setup()


def measure(label: str, client, url: str) -> float:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(WARM_UP):
        response = client.get(url)
        if response.status_code != 200:
            sys.exit(f"{label} : {url} répond {response.status_code}, rien à mesurer.")
    timings, counts = [], []
    for _ in range(RUNS):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url)
            timings.append(time.perf_counter() - start)
        counts.append(len(queries))
    median = statistics.median(timings) * 1000
    print(f"{label} : médiane {median:.0f} ms, {min(counts)}–{max(counts)} requêtes SQL")
    return median


def main() -> None:
    setup()
    from django.db import connection
    from django.test import Client
    from django.utils import timezone

    from actions.management.commands.generate_bench_data import bench_beneficiaires
    from actions.models import FicheAction, LigneFinancement
    from pvd.models import Role, User
    from tableaux.bilan import render_bilan

    print(f"Base : {connection.settings_dict['NAME']}")
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

    def user(email, kind, **perimeter):
        account, _ = User.objects.get_or_create(email=email)
        role, _ = Role.objects.get_or_create(user=account, kind=kind)
        for name, values in perimeter.items():
            getattr(role, name).set(values)
        return account

    users = {
        "national": user("bench-national@pvd.invalid", Role.Kind.NATIONAL),
        "prefecture": user(
            "bench-prefecture@pvd.invalid",
            Role.Kind.PREFECTURE,
            departements=[beneficiaire.departement_id],
        ),
        "elu": user(
            "bench-elu@pvd.invalid",
            Role.Kind.ELU,
            communes=list(beneficiaire.communes.values_list("code", flat=True)[:1]),
        ),
    }
    cheapest = measure("Vue la moins chère (/healthz)", Client(HTTP_HOST="127.0.0.1"), "/healthz")
    failed = False
    for who, account in users.items():
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(account)
        median = measure(f"Accueil, tableau de bord {who}", client, "/")
        ratio = median / cheapest
        ok = ratio <= TARGETS[who]
        failed |= not ok
        print(
            f"  soit {ratio:.1f}× la vue la moins chère ; objectif ≤ {TARGETS[who]}× : "
            f"{'atteint' if ok else 'DÉPASSÉ'}"
        )

    today = timezone.localdate()
    render_bilan(beneficiaire, today)  # warm: imports, fonts
    timings = []
    for _ in range(PDF_RUNS):
        start = time.perf_counter()
        content = render_bilan(beneficiaire, today)
        timings.append(time.perf_counter() - start)
    median = statistics.median(timings)
    ok = median <= TARGET_PDF_S
    failed |= not ok
    print(
        f"Bilan PDF ({beneficiaire.fiches.count()} fiches) : médiane {median:.2f} s "
        f"(max {max(timings):.2f} s, {len(content) / 1024:.0f} Kio) ; objectif ≤ "
        f"{TARGET_PDF_S} s : {'atteint' if ok else 'DÉPASSÉ'}"
    )
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
