"""The map's data for the readers who see everything (carte/precalcul.py): precomputed per
territory, the same as computed for the reader, served stale after a change until the
refresh it queues has run (never recomputed for a reader), beat recomputing only what is
stale."""

import gzip

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from actions.models import FicheAction
from carte import fiches, geo, precalcul
from carte.tasks import refresh_carte
from communes.models import Departement, Region
from tableaux import cache as dashboard_cache
from tests.carte import test_fiches
from tests.carte.test_choroplethe import sign_cadre
from tests.carte.test_fiches import DONNEES, decode

fiches_ussel = test_fiches.fiches_ussel  # the fixture, shared
fiche_le_blanc = test_fiches.fiche_le_blanc

pytestmark = pytest.mark.django_db

GEOJSON = "/carte/donnees.geojson"
TERRITOIRES = ["", "?region=75", "?region=24", "?departement=19", "?departement=23"]


@pytest.fixture(autouse=True)
def precomputed(production_caches, settings):
    """Caches as in production, the national readers' data kept as the programme's figures."""
    settings.PROGRAMME_CACHE_TIMEOUT = 600


def etat(client, nom: str, query: str = "") -> str:
    features = client.get(GEOJSON + query).json()["features"]
    return next(f for f in features if f["properties"]["nom"] == nom)["properties"]["etat"]


def plan_reads(queries) -> list[str]:
    """The queries that read the map's data (memberships, fiches): what a recompute does."""
    tables = ("communes_membrebeneficiaire", "actions_ficheaction")
    return [
        q["sql"]
        for q in queries
        if any(table in q["sql"] for table in tables) and "pvd_role" not in q["sql"]
    ]


def test_each_territory_is_what_the_reader_would_compute(
    client_for, national, fiches_ussel, fiche_le_blanc
):
    stored = precalcul.refresh_stale()
    places = precalcul.territoires()
    assert stored == {"communes": len(places), "fiches": len(places)}
    client = client_for(national)
    for level, code in places:
        query = f"?{level}={code}" if code else ""
        if level == "departement":
            filtre = geo.Filtre(departement=Departement.objects.get(code=code))
        elif level == "region":
            filtre = geo.Filtre(region=Region.objects.get(code=code))
        else:
            filtre = geo.Filtre()
        with CaptureQueriesContext(connection) as served:
            communes = client.get(GEOJSON + query, HTTP_ACCEPT_ENCODING="gzip")
            donnees = client.get(DONNEES + query)
        assert not plan_reads(served), query  # read from the cache
        assert gzip.decompress(communes.content) == geo.geojson_bytes(national, filtre), query
        alone = fiches.donnees(fiches.filtre_fiches(national, None, filtre))
        assert donnees.content == alone, query
    assert len(decode(client.get(DONNEES).json())) == 3
    assert len(decode(client.get(DONNEES + "?departement=19").json())) == 2
    assert decode(client.get(DONNEES + "?departement=23").json()) == {}


def test_a_signed_convention_shows_after_the_refresh_it_queues(
    client_for, national, ussel_la_courtine, django_capture_on_commit_callbacks
):
    client = client_for(national)
    for query in TERRITOIRES:
        client.get(GEOJSON + query)  # computed for the first reader, once
    first = client.get(GEOJSON)
    assert etat(client, "La Courtine", "?departement=23") == "aucune"

    sign_cadre(ussel_la_courtine)
    with django_capture_on_commit_callbacks() as queued:
        with CaptureQueriesContext(connection) as served:
            stale = client.get(GEOJSON)
            # La Courtine lies in the Creuse, its beneficiary in the Corrèze: stale too.
            assert etat(client, "La Courtine", "?departement=23") == "aucune"
        assert etat(client, "Ussel") == "aucune"
    # The readers did not wait for a recompute: the last data served, a refresh queued once.
    assert not plan_reads(served)
    assert stale["ETag"] == first["ETag"]
    refreshes = [c for c in queued if "refresh_donnees" in repr(c)]
    assert len(refreshes) == 1
    refreshes[0]()

    assert etat(client, "Ussel") == "signee"
    assert etat(client, "La Courtine", "?departement=23") == "signee"
    assert client.get(GEOJSON)["ETag"] != first["ETag"]
    assert client.get(GEOJSON, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


def test_a_changed_fiche_shows_after_the_refresh_of_its_territories(
    client_for, national, fiches_ussel, fiche_le_blanc, django_capture_on_commit_callbacks
):
    halle, _ = fiches_ussel
    precalcul.refresh_stale()
    client = client_for(national)
    etag = client.get(DONNEES)["ETag"]
    assert client.get(DONNEES, HTTP_IF_NONE_MATCH=etag).status_code == 304

    halle.maturite = FicheAction.Maturite.LIVREE
    halle.save()
    with django_capture_on_commit_callbacks() as queued:
        with CaptureQueriesContext(connection) as served:
            assert decode(client.get(DONNEES).json())[halle.pk][0] == "Engagée"
            client.get(DONNEES + "?departement=36")  # Le Blanc's: fresh, nothing queued
    assert not plan_reads(served)
    assert [c for c in queued if "refresh_donnees" in repr(c)]
    assert len(queued) == 1

    # Beat recomputes the stale territories only: the Corrèze, its région and France.
    assert precalcul.refresh_stale() == {"communes": 0, "fiches": 3}
    assert decode(client.get(DONNEES).json())[halle.pk][0] == "Livrée"
    assert client.get(DONNEES, HTTP_IF_NONE_MATCH=etag).status_code == 200
    assert precalcul.refresh_stale() == {"communes": 0, "fiches": 0}


def test_after_renew_everything_no_reader_waits_for_a_recompute(
    client_for, national, fiches_ussel, django_capture_on_commit_callbacks
):
    precalcul.refresh_stale()
    client = client_for(national)
    for url in ("/carte/", GEOJSON, DONNEES):
        client.get(url)
    dashboard_cache.renew_everything()
    with django_capture_on_commit_callbacks() as queued:
        with CaptureQueriesContext(connection) as page:
            assert client.get("/carte/").status_code == 200
        with CaptureQueriesContext(connection) as served:
            client.get(GEOJSON)
            client.get(DONNEES)
    assert not plan_reads(served)
    # The page counts nothing: the list of the (few, here) communes and fiches only.
    assert not [sql for sql in plan_reads(page) if "COUNT(" in sql]
    assert len([c for c in queued if "refresh_donnees" in repr(c)]) == 2  # communes, fiches
    refresh_carte()  # beat: everything stale is recomputed
    assert precalcul.refresh_stale() == {"communes": 0, "fiches": 0}


def test_the_page_reads_its_counts_with_the_precomputed_data(client_for, national, fiches_ussel):
    client = client_for(national)

    def counts(queries) -> list[str]:
        return [sql for sql in plan_reads(queries) if "COUNT(" in sql]

    with CaptureQueriesContext(connection) as missing:
        client.get("/carte/")  # nothing computed yet: computed for this reader, once
    with CaptureQueriesContext(connection) as kept:
        content = " ".join(client.get("/carte/").content.decode().split())
    assert counts(kept) == []
    assert len(plan_reads(kept)) < len(plan_reads(missing))
    assert f"{len(geo.points(national))} communes placées sur la carte" in content
    assert "Logements vacants" in content  # 2 fiches: listed
    # A filter of the fiches: counted, as for any reader.
    with CaptureQueriesContext(connection) as filtered:
        client.get("/carte/?axe=4")
    assert counts(filtered)


def test_a_filtered_fiches_request_is_computed_for_its_reader(client_for, national, fiches_ussel):
    halle, logements = fiches_ussel
    precalcul.refresh_stale()
    client = client_for(national)
    assert set(decode(client.get(DONNEES + "?axe=4").json())) == {halle.pk}
    assert set(decode(client.get(DONNEES).json())) == {halle.pk, logements.pk}


def test_off_without_the_programme_cache(client_for, national, settings, fiches_ussel):
    settings.PROGRAMME_CACHE_TIMEOUT = 0
    assert precalcul.refresh_stale() == {}
    client = client_for(national)
    assert set(decode(client.get(DONNEES).json())) == {p.pk for p in fiches_ussel}
