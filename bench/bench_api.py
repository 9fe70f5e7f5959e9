"""Benchmark of the API's 1,000-row pages (``make bench-api``).

On the national bench data (``manage.py generate_bench_data``: 1,650 beneficiaries, their
communes, fiches and financing lines), serves the project with gunicorn and DEBUG off through
the harness of bench/bench_pages.py, and requests RUNS times, taking turns: the cheapest view
(/healthz), a 1,000-row page of the public PVD communes, and 1,000-row pages of the partners'
fiches (with their financing) and beneficiaries read with a national API key. Prints each
median and its ratio to /healthz measured in the same run (absolute times on a shared machine
move from run to run, ratios much less), and each page's SQL query count (in-process).
Asserts nothing. The tables are vacuumed first, as autovacuum would have done
(``BENCH_VACUUM=0`` to measure them as generated).
"""

import http.client
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_pages import PORT, serve  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "20"))
WARM_UP = 2


def setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    # The bench asks many pages a minute without a key: the throttle would answer 429.
    os.environ["PVD_API_THROTTLE_ANONYME"] = "100000/minute"
    os.environ["PVD_API_THROTTLE_CLE"] = "100000/minute"
    import django

    django.setup()


def vacuum() -> None:
    """VACUUM (ANALYZE) the tables the pages read. A production server runs autovacuum, which
    keeps the visibility map that lets a page's COUNT(*) read an index alone; on freshly
    generated bench data (and a server started with autovacuum off) it would read the whole
    161 MB fiches table instead, which no user would ever wait for."""
    from django.db import connection

    tables = ["actions_ficheaction", "actions_lignefinancement", "actions_axe"]
    tables += ["communes_beneficiaire", "communes_membrebeneficiaire", "communes_commune"]
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(f"VACUUM (ANALYZE) {table}")


def national_key() -> str:
    from api.models import CleApi
    from pvd.models import Role, User

    national, _ = User.objects.get_or_create(email="bench-national@pvd.invalid")
    Role.objects.get_or_create(user=national, kind=Role.Kind.NATIONAL)
    CleApi.objects.filter(organisation="Banc de mesure").delete()
    _, texte = CleApi.emettre(organisation="Banc de mesure", user=national, by=None)
    return texte


def query_count(url: str, key: str) -> int:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    headers = {"Authorization": f"Bearer {key}"} if key else {}
    client = Client(HTTP_HOST="127.0.0.1", headers=headers)
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200, (url, response.status_code)
    return len(queries)


def get(connection: http.client.HTTPConnection, url: str, key: str) -> tuple[float, int]:
    headers = {"Host": "127.0.0.1"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    start = time.perf_counter()
    connection.request("GET", url, headers=headers)
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
    from communes.models import MembreBeneficiaire

    print(
        f"Base : {settings.DATABASES['default']['NAME']} ; "
        f"{MembreBeneficiaire.objects.filter(actif=True).count()} communes membres, "
        f"{FicheAction.objects.count()} fiches"
    )
    if os.environ.get("BENCH_VACUUM", "1") != "0":
        vacuum()
    key = national_key()
    pages = {
        "Vue la moins chère (/healthz)": ("/healthz", ""),
        "Communes PVD, 1 000 lignes (public)": ("/api/v1/communes-pvd/?taille=1000", ""),
        "Bénéficiaires, 1 000 lignes (clé)": ("/api/v1/beneficiaires/?taille=1000", key),
        "Fiches et financements, 1 000 lignes (clé)": ("/api/v1/fiches/?taille=1000", key),
    }
    queries = {url: query_count(url, k) for url, k in pages.values() if url != "/healthz"}
    queries["/healthz"] = query_count("/healthz", "")
    connection.close()  # gunicorn's workers open their own

    server = serve()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        timings: dict[str, list[float]] = {url: [] for url, _ in pages.values()}
        sizes: dict[str, int] = {}
        for url, k in pages.values():
            for _ in range(WARM_UP):
                get(conn, url, k)
        for _ in range(RUNS):
            for url, k in pages.values():
                elapsed, sizes[url] = get(conn, url, k)
                timings[url].append(elapsed)
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    cheapest = statistics.median(timings["/healthz"])
    print(f"{RUNS} requêtes HTTP par page (gunicorn, DEBUG désactivé), médianes :")
    print(f"{'Page':<44} {'médiane':>9} {'ratio':>7} {'requêtes SQL':>13} {'taille':>9}")
    for label, (url, _) in pages.items():
        median = statistics.median(timings[url])
        print(
            f"{label:<44} {median * 1000:>6.1f} ms {median / cheapest:>6.1f}× "
            f"{queries[url]:>13} {sizes[url] / 1024:>6.0f} Kio"
        )


if __name__ == "__main__":
    main()
