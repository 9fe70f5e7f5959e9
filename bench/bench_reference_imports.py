"""Benchmark of the official files' importers, in the order a new deployment runs them
(``make bench-reference-imports``): territories, the two ANCT lists, the national ORT
tracking, the communes' coordinates. Each step's wall time is printed; the tests check what
the imports do, never how long they take (a shared machine's load moves timings).

Runs on a database of its own, empty of beneficiaries (it refuses otherwise), e.g.::

    make bench-reference-imports
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STEPS = [
    (
        "Territoires (COG, SIREN, populations)",
        "import_territoires",
        [],
        {
            "cog": "insee_cog_communes_2024-01-01.csv",
            "siren": "communes_epci_dep_reg_siren.csv",
            "populations": "populations_communes.csv",
        },
    ),
    (
        "Liste ANCT du 22 janvier 2021",
        "import_pvd",
        ["anct_pvd_communes_2021-01-22_redacted.csv"],
        {},
    ),
    ("Table ANCT sur le COG 2023", "import_pvd", ["anct_ngeo_programmes_cog2023.csv"], {}),
    ("Suivi national des ORT", "import_ort", ["ort_conventions_suivi_national.csv"], {}),
    ("Coordonnées des communes", "import_coordonnees", ["communes_coordonnees.csv"], {}),
]


def main() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pvd.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from communes.models import Beneficiaire

    directory = Path(settings.REFERENCE_DATA_DIR)
    if Beneficiaire.objects.exists():
        sys.exit("Cette base a déjà des bénéficiaires : utilisez une base neuve (DATABASE_URL).")
    print(f"Fichiers : {directory}")
    total = 0.0
    for label, command, files, options in STEPS:
        arguments = [str(directory / name) for name in files]
        paths = {key: str(directory / name) for key, name in options.items()}
        started = time.perf_counter()
        call_command(command, *arguments, stdout=io.StringIO(), **paths)
        wall = time.perf_counter() - started
        total += wall
        print(f"{label} : {wall:.1f} s")
    print(f"Total : {total:.1f} s")


if __name__ == "__main__":
    main()
