"""pvd/db.py: prepared queries' slots and the compiled queries a process keeps."""

import threading

import pytest
from django.db import connection
from django.db.models import IntegerField
from django.test.utils import CaptureQueriesContext

from actions.models import FicheAction
from pvd.db import Gardees, Parametre, Preparee, Valeur, avec_valeurs, ensemble
from pvd.models import User


def test_gardees_builds_once_and_drops_the_least_recently_used():
    built = []

    def build(value):
        return lambda: built.append(value) or value

    kept = Gardees(2)
    assert kept.get("a", build("A")) == "A"
    assert kept.get("a", build("other")) == "A"
    kept.get("b", build("B"))
    kept.get("a", build("other"))  # « a » used again: « b » is now the oldest
    kept.get("c", build("C"))
    assert len(kept) == 2
    assert kept.get("a", build("other")) == "A"
    assert kept.get("b", build("B again")) == "B again"
    assert built == ["A", "B", "C", "B again"]


def test_gardees_is_shared_by_threads():
    kept = Gardees(10)
    results = []

    def run():
        results.extend(kept.get(n % 5, lambda n=n: n % 5) for n in range(200))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 800 and len(kept) == 5


@pytest.mark.django_db
def test_an_emplacement_compiles_to_a_slot_filled_at_each_run():
    fiches = FicheAction.objects.filter(titre=Parametre("titre"), cout_total__gt=0)
    sql, params = fiches.values_list("pk").query.sql_with_params()
    assert sql.count("%s") == len(params) == 2
    [slot] = [p for p in params if isinstance(p, Valeur)]
    assert slot.nom == "titre"
    filled = avec_valeurs(params, {"titre": "Halle"})
    assert filled == [("Halle" if p is slot else p) for p in params]


REQUETES = {
    "nommes": Preparee(
        lambda _: (
            User.objects.filter(email__startswith=Parametre("debut"))
            .order_by("email")
            .values_list("email", "is_active")
        )
    ),
    "compte": Preparee(
        lambda _: (
            User.objects.filter(pk__gte=Parametre("depuis", IntegerField()))
            .order_by()
            .values_list("pk")
        )
    ),
}


@pytest.mark.django_db
def test_queries_sent_together_give_their_own_rows_logged_and_prepared():
    for email in ("ensemble-b@pvd.invalid", "ensemble-a@pvd.invalid", "autre@pvd.invalid"):
        User.objects.create(email=email)
    valeurs = {"debut": "ensemble-", "depuis": 0}
    alone = {nom: requete.lignes(**valeurs) for nom, requete in REQUETES.items()}
    assert [email for email, _ in alone["nommes"]] == [
        "ensemble-a@pvd.invalid",
        "ensemble-b@pvd.invalid",
    ]
    for _ in range(6):  # prepared by PostgreSQL from the fifth run on
        with CaptureQueriesContext(connection) as queries:
            ensemble_ = ensemble(*((requete, None, valeurs) for requete in REQUETES.values()))
            assert dict(zip(REQUETES, ensemble_, strict=True)) == alone
        # Logged and counted as any query, with their SQL, prepared or not.
        assert [q["sql"].startswith("SELECT") for q in queries.captured_queries] == [True, True]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [statement for (statement,) in cursor.fetchall()]
        assert sum('"pvd_user"' in statement for statement in prepared) == 2


@pytest.mark.django_db
def test_queries_bound_by_the_server_in_the_block_are_prepared_and_logged():
    from pvd.db import liees_par_le_serveur

    User.objects.create(email="liee@pvd.invalid")

    def read():
        return list(User.objects.filter(email__startswith="liee@").values_list("email", flat=True))

    for _ in range(6):  # prepared by PostgreSQL from the fifth run on
        with liees_par_le_serveur(), CaptureQueriesContext(connection) as queries:
            assert read() == ["liee@pvd.invalid"]
        assert len(queries) == 1 and queries[0]["sql"].startswith("SELECT")
    assert read() == ["liee@pvd.invalid"]  # client-bound again after the block
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [statement for (statement,) in cursor.fetchall()]
        assert sum("liee@" not in s and '"pvd_user"' in s for s in prepared) == 1
        from psycopg import ClientCursor

        assert isinstance(connection.connection.cursor(), ClientCursor)
