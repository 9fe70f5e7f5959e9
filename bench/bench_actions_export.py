"""Benchmark of the national export of fiches action (``make bench-actions-export``).

Runs ``python manage.py generate_bench_data`` first, which writes the national bench data
(1,650 beneficiaries × 50 fiches × 3 financing lines) into the database of DATABASE_URL unless
they are already there. Then, logged in as national staff, measures the national CSV export
through its view, streamed to the end: median time, SQL query count, row count and the peak
of Python memory allocated while streaming (tracemalloc). Also times, once, the national
XLSX workbook as the Celery task builds it (both sheets), with its SQL queries and how many
of them record its progress (every few seconds, not every so many rows), and removes it.

Target: national CSV export of all fiches under 3 s.
"""

import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
TARGET_S = 3.0


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pvd.settings")
    import django

    django.setup()


def ensure_data() -> None:
    """The national bench data; the command does nothing when they are already there."""
    from django.core.management import call_command

    # A benchmark database: the generator may run although DEBUG is off here.
    call_command("generate_bench_data", yes_i_know=True)


def export_url() -> str:
    from django.urls import reverse

    return reverse("actions:export-national-csv")


def main() -> None:
    setup()
    from django.db import connection, reset_queries
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, setup_test_environment

    from actions.models import ExportPlan, FicheAction, LigneFinancement
    from communes.models import Beneficiaire
    from pvd.models import Role, User

    setup_test_environment()
    ensure_data()
    user, _ = User.objects.get_or_create(email="bench-national@pvd.invalid")
    Role.objects.get_or_create(user=user, kind=Role.Kind.NATIONAL)
    client = Client()
    client.force_login(user)
    print(
        f"{Beneficiaire.objects.count()} bénéficiaires, {FicheAction.objects.count()} fiches, "
        f"{LigneFinancement.objects.count()} lignes de financement"
    )
    url = export_url()
    rows = 0

    def export() -> None:
        nonlocal rows
        response = client.get(url)
        assert response.status_code == 200, response.status_code
        rows = sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1

    timings, counts = [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            export()
        timings.append(time.perf_counter() - start)
        counts.append(len(queries))  # counted before anything resets the log
        reset_queries()
    median = statistics.median(timings)
    print(
        f"Export CSV national : médiane {median * 1000:.0f} ms "
        f"(min {min(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms), "
        f"{max(counts)} requêtes SQL, {rows} lignes "
        f"— objectif < {TARGET_S:.0f} s : {'atteint' if median < TARGET_S else 'MANQUÉ'}"
    )

    tracemalloc.start()
    export()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"Export CSV national : pic de mémoire Python {peak / 2**20:.1f} Mio")

    from actions.exports import build_export

    job = ExportPlan.objects.create(perimetre=ExportPlan.Perimetre.NATIONAL, requested_by=user)
    start = time.perf_counter()
    with CaptureQueriesContext(connection) as queries:
        build_export(job.pk)
    elapsed = time.perf_counter() - start
    progress = sum(
        1 for q in queries if q["sql"].startswith("UPDATE") and '"lignes_faites" = ' in q["sql"]
    )
    job.refresh_from_db()
    size = job.fichier.size if job.fichier else 0
    print(
        f"Classeur XLSX national (tâche) : {elapsed:.1f} s, {job.lignes_total} lignes, "
        f"{size / 2**20:.1f} Mio, statut {job.statut}, {len(queries)} requêtes SQL dont "
        f"{progress} d'avancement ; charge de la machine {os.getloadavg()[0]:.1f}"
    )
    if job.fichier:
        job.fichier.delete(save=False)
    job.delete()


if __name__ == "__main__":
    main()
