"""The map's data is kept in the cache under the dashboards' version: a change to what it
reads (carte/fiches.py and carte/choroplethe.py ``READS``) shows at once, with a new ETag."""

import pytest

from actions.models import FicheAction
from tests.carte import test_fiches
from tests.carte.test_fiches import DONNEES, decode
from tests.conftest import count_queries

fiches_ussel = test_fiches.fiches_ussel  # the fixture, shared

pytestmark = pytest.mark.django_db

GEOJSON = "/carte/donnees.geojson"


@pytest.fixture(autouse=True)
def fragment_cache(production_caches):
    """Page fragments cached as in production (tests/conftest.py)."""


def test_served_from_the_cache_until_a_fiche_changes(client_for, national, fiches_ussel):
    halle, logements = fiches_ussel
    client = client_for(national)
    first = client.get(DONNEES)
    cached = count_queries(lambda: client.get(DONNEES))
    assert cached < count_queries(lambda: client.get(DONNEES + "?axe=4"))  # a miss: computed
    assert decode(first.json())[halle.pk][0] == "Engagée"

    halle.maturite = FicheAction.Maturite.LIVREE
    halle.save()
    second = client.get(DONNEES)
    assert second["ETag"] != first["ETag"]
    assert decode(second.json())[halle.pk][0] == "Livrée"
    assert client.get(DONNEES, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200


def test_a_fiche_placed_at_another_commune_moves_on_the_map(client_for, national, fiches_ussel):
    halle, logements = fiches_ussel
    client = client_for(national)
    assert decode(client.get(DONNEES).json())[logements.pk][1] == ["La Courtine", "Ussel"]
    logements.communes.set(["19275"])  # the many-to-many link alone
    assert decode(client.get(DONNEES).json())[logements.pk][1] == ["Ussel"]


def test_communes_data_follows_a_signed_convention(client_for, prefecture_19, ussel_la_courtine):
    from tests.carte.test_choroplethe import sign_cadre

    client = client_for(prefecture_19)

    def etat_ussel():
        features = client.get(GEOJSON).json()["features"]
        return next(f for f in features if f["properties"]["nom"] == "Ussel")["properties"]["etat"]

    assert etat_ussel() == "aucune"
    sign_cadre(ussel_la_courtine)
    assert etat_ussel() == "signee"


def test_one_entry_per_filter_not_per_query_string(client_for, national, fiches_ussel):
    client = client_for(national)
    etag = client.get(DONNEES)["ETag"]
    assert client.get(DONNEES + "?inconnu=1")["ETag"] == etag
    assert client.get(DONNEES + "?maturite=finie")["ETag"] == etag  # in error: left out
    assert client.get(DONNEES + "?maturite=idee")["ETag"] != etag
    assert client.get(GEOJSON + "?inconnu=1")["ETag"] == client.get(GEOJSON)["ETag"]
