"""Benchmark of one beneficiary's plan d'action page at national scale (``make bench-plan``).

Runs on the database of DATABASE_URL, filled by ``manage.py generate_bench_data`` (the make
target does it once: 1,650 beneficiaries with 50 fiches action, 3 financing lines and an
indicator each). Requests ``/actions/beneficiaire/<pk>/`` of one of them, logged in as its
chef de projet, then as national staff: two warm-up requests, then RUNS measured ones.
Prints the median time and the SQL query count of each request, and their ratio to the
cheapest view (/healthz) measured in the same run; then the same page right after a change
of the plan (its cached body rendered again). Asserts nothing.

Target on the reference machine: median under 50 ms.
"""

import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 30
WARM_UP = 2
TARGET_MS = 50


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pvd.settings")
    import django

    django.setup()


def plan_url(pk: int) -> str:
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("actions:plan", args=[pk])
    except NoReverseMatch:
        sys.exit(
            "La page du plan d'action (URL actions:plan, /actions/beneficiaire/<pk>/) "
            "n'existe pas encore : rien à mesurer."
        )


def measure(label: str, client, url: str, before=None) -> float:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(WARM_UP):
        response = client.get(url)
        if response.status_code != 200:
            sys.exit(f"{label} : {url} répond {response.status_code}, rien à mesurer.")
    timings, counts = [], []
    for _ in range(RUNS):
        if before:
            before()
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            response = client.get(url)
            timings.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
        counts.append(len(queries))
    median = statistics.median(timings) * 1000
    print(
        f"{label} : médiane {median:.0f} ms (min {min(timings) * 1000:.0f} ms, "
        f"max {max(timings) * 1000:.0f} ms, {RUNS} requêtes HTTP), "
        f"{min(counts)}–{max(counts)} requêtes SQL par page, "
        f"{len(response.content) / 1024:.0f} Kio ; objectif < {TARGET_MS} ms : "
        f"{'atteint' if median < TARGET_MS else 'DÉPASSÉ'}"
    )
    return median


def main() -> None:
    setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from actions.management.commands.generate_bench_data import bench_beneficiaires
    from actions.models import FicheAction, LigneFinancement
    from actions.plan_cache import new_plan_version
    from pvd.models import Role, User

    print(f"Base : {connection.vendor} {settings.DATABASES['default']['NAME']}")
    beneficiaires = bench_beneficiaires().order_by("pk")
    total = beneficiaires.count()
    if not total:
        sys.exit(
            "Pas de données d'essai dans cette base : lancez d'abord "
            "« manage.py generate_bench_data » (make bench-plan le fait)."
        )
    # One in the middle of the table, not the first rows written.
    beneficiaire = beneficiaires[total // 2]
    url = plan_url(beneficiaire.pk)
    print(
        f"{total} bénéficiaires, {FicheAction.objects.count()} fiches action, "
        f"{LigneFinancement.objects.count()} lignes de financement ; plan mesuré : "
        f"{beneficiaire.nom} ({beneficiaire.fiches.count()} fiches), {url}"
    )

    cdp, _ = User.objects.get_or_create(email="bench-cdp@pvd.invalid")
    role, _ = Role.objects.get_or_create(user=cdp, kind=Role.Kind.CHEF_PROJET)
    role.beneficiaires.set([beneficiaire])
    national, _ = User.objects.get_or_create(email="bench-national@pvd.invalid")
    Role.objects.get_or_create(user=national, kind=Role.Kind.NATIONAL)

    # The cheapest view, measured in the same run: absolute times on a shared machine move
    # from run to run, the ratio much less.
    cheapest = measure("Vue la moins chère (/healthz)", Client(HTTP_HOST="127.0.0.1"), "/healthz")
    for label, user in (("Chef de projet", cdp), ("Équipe nationale", national)):
        # No setup_test_environment(): its template instrumentation copies the context of
        # every rendered template, which would weigh on a page made of many includes.
        client = Client(HTTP_HOST="127.0.0.1")
        client.force_login(user)
        median = measure(f"Plan d'action, {label.lower()}", client, url)
        print(f"  soit {median / cheapest:.0f}× la vue la moins chère")
    # The page right after each change of the plan: its cached body is rendered again.
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(cdp)
    median = measure(
        "Plan d'action juste modifié, chef de projet",
        client,
        url,
        before=lambda: new_plan_version(beneficiaire.pk),
    )
    print(f"  soit {median / cheapest:.0f}× la vue la moins chère")


if __name__ == "__main__":
    main()
