"""Benchmark of the Club's search (``make bench-club``), as users feel it.

The harness of bench_pages.py (gunicorn, DEBUG off, session cookie, pages taking turns) on the
national bench data (``generate_bench_data``: 82,500 fiches): the search page for a chef de
projet, as a ratio to the cheapest view (``/healthz``) measured in the same run: no search,
broad words (12,000 matches: the page ranks and counts the first 1,000), a town's name (about
fifty), a typo (the lexicon's nearest word), two words no fiche holds together, facets, page
50; the SQL query count of each page at the bench's size; the size of the search index and of
the lexicon. Vacuums the fiches first, as autovacuum would in service. Asserts nothing.
"""

import http.client
import statistics
import sys
from pathlib import Path
from urllib.parse import quote_plus

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
VACUUM = ["actions_ficheaction", "actions_club_mot"]
SIZES = {
    "index GIN de la recherche": "pg_relation_size('actions_fiche_recherche_gin')",
    "lexique (table et index)": "pg_total_relation_size('actions_club_mot')",
}


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
    ville = quote_plus(beneficiaires.last().nom)
    pages = {
        "Vue la moins chère (/healthz)": "/healthz",
        "Mentions légales (plancher d'une page connectée)": "/mentions-legales/",
        "Club, sans recherche": "/club/",
        "Club, mot large « rénovation »": "/club/?q=r%C3%A9novation",
        "Club, mot large « commerce »": "/club/?q=commerce",
        "Club, deux mots « renovation halles »": "/club/?q=renovation+halles",
        "Club, nom d'une ville (une cinquantaine)": f"/club/?q={ville}",
        "Club, faute de frappe « rehabiliation »": "/club/?q=rehabiliation",
        "Club, « réhabilitation friche » (jamais ensemble)": "/club/?q=r%C3%A9habilitation+friche",
        "Club, recherche + 3 facettes": (
            f"/club/?q=halles&departement={departement}&maturite=engagee&livree=non"
        ),
        "Club, « renovation » page 50": "/club/?q=renovation&page=50",
    }
    with connection.cursor() as cursor:
        # What autovacuum does to a database in service (it is off on the bench cluster):
        # the bulk insert's dead versions and the GIN index's pending list gone.
        for table in VACUUM:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
        sizes = {}
        for label, size in SIZES.items():
            cursor.execute(f"SELECT pg_size_pretty({size})")
            sizes[label] = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM actions_club_mot")
        mots = cursor.fetchone()[0]
    print(
        f"{FicheAction.objects.count()} fiches ; "
        + ", ".join(f"{name} {size}" for name, size in sizes.items())
        + f" ({mots} mots)"
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
    print(f"{'Page':<50} {'médiane':>9} {'ratio':>7} {'requêtes SQL':>13}")
    for label, url in pages.items():
        median = statistics.median(timings[url])
        print(f"{label:<50} {median * 1000:>6.1f} ms {median / cheapest:>6.1f}× {queries[url]:>13}")


if __name__ == "__main__":
    main()
