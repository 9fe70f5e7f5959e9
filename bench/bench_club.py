"""Benchmark of the Club's search (``make bench-club``), as users feel it.

The harness of bench_pages.py (gunicorn, DEBUG off, session cookie, pages taking turns) on the
national bench data (``generate_bench_data``: 82,500 fiches): the search page for a chef de
projet, as a ratio to the cheapest view (``/healthz``) measured in the same run; the SQL
query count of each page at the bench's size; the size of the search indexes. Asserts nothing.
"""

import http.client
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_pages import PORT as PAGES_PORT  # noqa: E402
from bench.bench_pages import (  # noqa: E402
    RUNS,
    WARM_UP,
    get,
    query_count,
    serve,
    session_cookie,
    setup,
)

PORT = PAGES_PORT + 7
INDEXES = [
    "actions_fiche_recherche_gin",
    "actions_fiche_titre_trgm",
    "communes_beneficiaire_nom_trgm",
]


def main() -> None:
    setup()
    from django.db import connection

    import bench.bench_pages as harness
    from actions.management.commands.generate_bench_data import bench_beneficiaires
    from actions.models import FicheAction
    from pvd.models import Role, User

    harness.PORT = PORT
    beneficiaires = bench_beneficiaires().order_by("pk")
    if not beneficiaires.exists():
        sys.exit("Pas de données d'essai : lancez « manage.py generate_bench_data ».")
    cdp, _ = User.objects.get_or_create(email="bench-cdp-club@pvd.invalid")
    role, _ = Role.objects.get_or_create(user=cdp, kind=Role.Kind.CHEF_PROJET)
    role.beneficiaires.set([beneficiaires[beneficiaires.count() // 2]])
    departement = beneficiaires.first().departement_id
    pages = {
        "Vue la moins chère (/healthz)": "/healthz",
        "Club, sans recherche": "/club/",
        "Club, « renovation halles »": "/club/?q=renovation+halles",
        "Club, « réhabilitation friche »": "/club/?q=r%C3%A9habilitation+friche",
        "Club, recherche + 3 facettes": (
            f"/club/?q=halles&departement={departement}&maturite=engagee&livree=non"
        ),
        "Club, page 50": "/club/?q=renovation&page=50",
        "Club, faute de frappe « rehabiliation »": "/club/?q=rehabiliation",
    }
    with connection.cursor() as cursor:
        sizes = {}
        for index in INDEXES:
            cursor.execute("SELECT pg_size_pretty(pg_relation_size(%s::regclass))", [index])
            sizes[index] = cursor.fetchone()[0]
    print(
        f"{FicheAction.objects.count()} fiches ; index : "
        + ", ".join(f"{name} {size}" for name, size in sizes.items())
    )
    queries = {url: query_count(cdp, url) for url in pages.values() if url != "/healthz"}
    queries["/healthz"] = query_count(None, "/healthz")
    cookie = session_cookie(cdp)
    connection.close()

    server = serve()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
        timings: dict[str, list[float]] = {url: [] for url in pages.values()}
        for url in pages.values():
            for _ in range(WARM_UP):
                get(conn, url, "" if url == "/healthz" else cookie)
        for _ in range(RUNS):
            for url in pages.values():
                elapsed, _size = get(conn, url, "" if url == "/healthz" else cookie)
                timings[url].append(elapsed)
        conn.close()
    finally:
        server.terminate()
        server.wait(timeout=30)

    cheapest = statistics.median(timings["/healthz"])
    print(f"{RUNS} requêtes HTTP par page (gunicorn, DEBUG désactivé), médianes :")
    print(f"{'Page':<42} {'médiane':>9} {'ratio':>7} {'requêtes SQL':>13}")
    for label, url in pages.items():
        median = statistics.median(timings[url])
        print(f"{label:<42} {median * 1000:>6.1f} ms {median / cheapest:>6.1f}× {queries[url]:>13}")


if __name__ == "__main__":
    main()
