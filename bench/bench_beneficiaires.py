"""Benchmark of the national beneficiaries pages (``make bench-beneficiaires``).

Loads the official files of REFERENCE_DATA_DIR into the database of DATABASE_URL (the
territories, then ANCT's lists of 2021 and of the 2023 COG: 1,653 communes), then measures,
logged in as national staff: the beneficiaries list page (first page, 50 rows) and the
national CSV export, streamed to the end. Prints the median time, the SQL query count and,
for the export, the peak of Python memory allocated while streaming.
"""

import os
import statistics
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7


def setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pvd.settings")
    import django

    django.setup()


def load_reference_data() -> None:
    from django.conf import settings
    from django.core.management import call_command

    from communes.models import IdentifiantPVD

    data = Path(settings.REFERENCE_DATA_DIR)
    quiet = open(os.devnull, "w")
    call_command(
        "import_territoires",
        cog=str(data / "insee_cog_communes_2024-01-01.csv"),
        siren=str(data / "communes_epci_dep_reg_siren.csv"),
        populations=str(data / "populations_communes.csv"),
        stdout=quiet,
    )
    if not IdentifiantPVD.objects.filter(date_liste="2023-01-01").exists():
        call_command(
            "import_pvd", str(data / "anct_pvd_communes_2021-01-22_redacted.csv"), stdout=quiet
        )
        call_command("import_pvd", str(data / "anct_ngeo_programmes_cog2023.csv"), stdout=quiet)


def measure(label: str, request) -> None:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext

    timings, counts = [], []
    for _ in range(RUNS):
        start = time.perf_counter()
        with CaptureQueriesContext(connection) as queries:
            request()
        timings.append(time.perf_counter() - start)
        counts.append(len(queries))
        reset_queries()
    print(
        f"{label} : médiane {statistics.median(timings) * 1000:.0f} ms "
        f"(min {min(timings) * 1000:.0f} ms, max {max(timings) * 1000:.0f} ms), "
        f"{max(counts)} requêtes SQL"
    )


def main() -> None:
    setup()
    from django.test import Client
    from django.test.utils import setup_test_environment

    from communes.models import Beneficiaire, MembreBeneficiaire
    from pvd.models import Role, User

    setup_test_environment()
    load_reference_data()
    user, _ = User.objects.get_or_create(email="bench-national@pvd.invalid")
    Role.objects.get_or_create(user=user, kind=Role.Kind.NATIONAL)
    client = Client()
    client.force_login(user)
    print(
        f"{Beneficiaire.objects.count()} bénéficiaires, "
        f"{MembreBeneficiaire.objects.filter(actif=True).count()} communes dans le programme"
    )

    def list_page():
        response = client.get("/beneficiaires/")
        assert response.status_code == 200, response.status_code

    rows = 0

    def export():
        nonlocal rows
        response = client.get("/beneficiaires/", {"export": "csv", "colonnes": list_columns()})
        rows = sum(chunk.count(b"\n") for chunk in response.streaming_content) - 1

    measure("Liste nationale des bénéficiaires (page 1)", list_page)
    measure("Export CSV national", export)
    tracemalloc.start()
    export()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"Export CSV national : {rows} lignes, pic de mémoire Python {peak / 2**20:.1f} Mio")


def list_columns() -> list[str]:
    from communes.exports import COLUMNS

    return list(COLUMNS)


if __name__ == "__main__":
    main()
