"""Benchmark of the national territories import (``make bench-import``).

Empties the territory tables of the database of DATABASE_URL, then imports the three
national files of REFERENCE_DATA_DIR twice: the first run creates every row, the second
must change nothing. Each run happens in a fresh child process, so that its peak resident
memory (ru_maxrss) is its own; the wall time is that of the import itself (read, check,
write), without Python and Django start-up.

The yardstick is PostgreSQL's own COPY of the same rows: once both imports have run, the
rows they wrote are read back (``COPY … TO``), the four tables emptied and vacuumed, then the
rows loaded back with ``COPY … FROM`` into the same tables (same keys, indexes and foreign
keys, checked at the commit), timed up to the commit; the median of three loads. The tables
end as the imports left them. Each import is
reported as a ratio to it (objective: the first import ≤ 3× COPY).

The tables are emptied with plain DELETEs: if other data point at the territories
(bénéficiaires, roles…), the database refuses and the benchmark stops without deleting
anything. Use a database of its own, e.g.::

    createdb -h 127.0.0.1 -U postgres pvd_bench
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pvd_bench DEBUG=true \\
        .venv/bin/python manage.py migrate
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pvd_bench DEBUG=true \\
        .venv/bin/python bench/bench_import.py
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FILES = {
    "cog": "insee_cog_communes_2024-01-01.csv",
    "siren": "communes_epci_dep_reg_siren.csv",
    "populations": "populations_communes.csv",
}
TABLES = ("Commune", "EPCI", "Departement", "Region")  # children first


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pvd.settings")
    import django

    django.setup()


def peak_rss_mib() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def flush() -> None:
    from django.db import IntegrityError, connection, transaction

    from communes import models

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            for name in TABLES:
                table = connection.ops.quote_name(getattr(models, name)._meta.db_table)
                cursor.execute(f"DELETE FROM {table}")
    except IntegrityError as exc:
        sys.exit(
            "Des données pointent vers les territoires de cette base : le banc d'essai "
            f"ne les efface pas. Utilisez une base dédiée (DATABASE_URL).\n{exc}"
        )


COPY_RUNS = 3
TARGET_RATIO = 3.0


def copy_seconds() -> float:
    """Median time of a COPY of the territory tables' current rows back into them, emptied."""
    from django.db import connection

    from communes import models

    tables = [getattr(models, name)._meta.db_table for name in reversed(TABLES)]  # parents first
    with connection.cursor() as cursor:
        dumps = {}
        for table in tables:
            with cursor.cursor.copy(f"COPY {table} TO STDOUT") as copy:
                dumps[table] = b"".join(bytes(chunk) for chunk in copy)
    timings = []
    for _ in range(COPY_RUNS):
        flush()
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")  # as the import found them: empty, vacuumed
            started = time.perf_counter()
            cursor.execute("BEGIN")
            for table in tables:
                with cursor.cursor.copy(f"COPY {table} FROM STDIN") as copy:
                    copy.write(dumps[table])
            cursor.execute("COMMIT")  # the deferred foreign-key checks run here
            timings.append(time.perf_counter() - started)
    return sorted(timings)[len(timings) // 2]


def run_once() -> None:
    """Child process: one import, then its figures as JSON on the last line of stdout."""
    setup_django()
    from django.conf import settings

    from communes.importers.territoires import import_territoires

    directory = Path(settings.REFERENCE_DATA_DIR)
    baseline = peak_rss_mib()
    started = time.perf_counter()
    report = import_territoires(**{key: directory / name for key, name in FILES.items()})
    wall = time.perf_counter() - started
    figures = {
        "wall_s": round(wall, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "rss_after_setup_mib": round(baseline, 1),
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "skipped": report.skipped_total,
    }
    print(json.dumps(figures))


def main() -> None:
    setup_django()
    from django.conf import settings
    from django.db import connection

    directory = Path(settings.REFERENCE_DATA_DIR)
    missing = [name for name in FILES.values() if not (directory / name).is_file()]
    if missing:
        sys.exit(f"Fichiers de référence absents de {directory} : {', '.join(missing)}")

    database = settings.DATABASES["default"]
    print(f"Base : {connection.vendor} {database['NAME']}")
    print(f"Fichiers : {directory}")
    flush()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connection.close()

    results = []
    for label in ("1er import (création)", "2e import (rien ne change)"):
        child = subprocess.run(
            [sys.executable, __file__, "--once"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode:
            sys.exit(f"{label} : échec\n{child.stdout}{child.stderr}")
        figures = json.loads(child.stdout.strip().splitlines()[-1])
        results.append(figures)
        print(
            f"{label} : {figures['wall_s']:.2f} s, mémoire maximale (RSS) "
            f"{figures['peak_rss_mib']:.0f} Mio (dont {figures['rss_after_setup_mib']:.0f} Mio "
            f"après le démarrage de Django) ; créés {figures['created']}, mis à jour "
            f"{figures['updated']}, inchangés {figures['unchanged']}, "
            f"ignorés {figures['skipped']}"
        )

    copy = copy_seconds()
    print(f"COPY des mêmes lignes (médiane de {COPY_RUNS}) : {copy:.2f} s")
    for label, figures in zip(("1er import", "2e import"), results, strict=True):
        ratio = figures["wall_s"] / copy
        print(f"{label} : {ratio:.1f}× le COPY")
    verdict = "atteint" if results[0]["wall_s"] / copy <= TARGET_RATIO else "DÉPASSÉ"
    print(f"Objectif : 1er import ≤ {TARGET_RATIO:.0f}× le COPY : {verdict}")

    first, second = results
    if second["created"] or second["updated"] or not first["created"]:
        sys.exit("Anomalie : le second import aurait dû ne rien créer ni modifier.")


if __name__ == "__main__":
    if "--once" in sys.argv[1:]:
        run_once()
    else:
        main()
