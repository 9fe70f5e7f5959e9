"""The map: who sees which communes, filters, the list under the map, query counts."""

import re

import pytest
from django.test import override_settings

from communes.models import Beneficiaire, Commune, MembreBeneficiaire
from conventions.models import Convention
from tests.conftest import count_queries
from tests.factories import CommuneFactory, DepartementFactory

GEOJSON = "/carte/donnees.geojson"

pytestmark = pytest.mark.django_db

INDRE = {"36001", "36005", "36006", "36018", "36031", "36034", "36045", "36046", "36063"}


def features(client, url=GEOJSON, couche="commune"):
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/geo+json"
    data = response.json()
    assert data["type"] == "FeatureCollection"
    return [f for f in data["features"] if f["properties"]["couche"] == couche]


def codes(client, url=GEOJSON):
    return {f["properties"]["code"] for f in features(client, url)}


def test_prefecture_sees_only_its_departement(client_for, prefecture_36):
    client = client_for(prefecture_36)
    seen = codes(client)
    assert INDRE <= seen
    assert all(code.startswith("36") for code in seen)
    assert len(seen) == 16
    departements = features(client, couche="departement")
    assert [d["properties"]["code"] for d in departements] == ["36"]
    indre = departements[0]["properties"]
    assert (indre["nom"], indre["communes"], indre["beneficiaires"]) == ("Indre", 16, 16)


def test_point_carries_its_beneficiary_and_coordinates(client_for, prefecture_36, le_blanc):
    client = client_for(prefecture_36)
    point = next(f for f in features(client) if f["properties"]["code"] == "36018")
    commune = Commune.objects.get(code="36018")
    assert point["geometry"] == {
        "type": "Point",
        # To 4 decimals (about 10 m): enough for a commune's point, shorter on the wire.
        "coordinates": [round(commune.longitude, 4), round(commune.latitude, 4)],
    }
    assert point["properties"]["beneficiaire"] == "Le Blanc"
    assert point["properties"]["url"] == f"/beneficiaires/{le_blanc.pk}/"
    assert point["properties"]["etat"] == "aucune"


def test_other_territories_never_appear(client_for, prefecture_19, elu_ussel, sans_role):
    seen = codes(client_for(prefecture_19))
    # La Courtine (Creuse) belongs to Ussel's beneficiary but not to the Corrèze.
    assert seen == {"19028", "19148", "19275"}
    assert codes(client_for(elu_ussel)) == {"19275"}
    client = client_for(sans_role)
    response = client.get(GEOJSON)
    assert response.status_code == 200
    assert response.json()["features"] == []


@pytest.mark.parametrize("query", ["departement=19", "region=75", "departement=<b>", "region=99"])
def test_filter_outside_perimeter_is_404(client_for, prefecture_36, query):
    client = client_for(prefecture_36)
    assert client.get(f"{GEOJSON}?{query}").status_code == 404
    assert client.get(f"/carte/?{query}").status_code == 404


def test_national_filters_by_departement_and_region(client_for, national):
    client = client_for(national)
    assert {c[:2] for c in codes(client)} == {"19", "23", "36"}
    assert {c[:2] for c in codes(client, f"{GEOJSON}?departement=19")} == {"19"}
    assert {c[:2] for c in codes(client, f"{GEOJSON}?region=75")} == {"19", "23"}
    assert {c[:2] for c in codes(client, f"{GEOJSON}?region=24")} == {"36"}


def test_convention_state_and_departement_share(client_for, national, ussel_la_courtine):
    Convention.objects.create(
        beneficiaire=ussel_la_courtine,
        type=Convention.Type.CADRE,
        titre="Convention-cadre",
        statut=Convention.Statut.SIGNEE,
    )
    client = client_for(national)
    etats = {f["properties"]["code"]: f["properties"]["etat"] for f in features(client)}
    assert etats["19275"] == etats["23067"] == "signee"
    assert etats["19028"] == "aucune"
    correze = next(
        f["properties"]
        for f in features(client, couche="departement")
        if f["properties"]["code"] == "19"
    )
    assert (correze["beneficiaires"], correze["signees"], correze["part"]) == (2, 1, 50)
    assert correze["classe"] == "moyen"


def test_commune_without_coordinates_or_left_is_not_on_the_map(client_for, national):
    Commune.objects.filter(code="36001").update(latitude=None, longitude=None)
    MembreBeneficiaire.objects.filter(commune_id="36005").update(actif=False)
    seen = codes(client_for(national))
    assert "36001" not in seen and "36005" not in seen and "36006" in seen


def test_page_has_map_settings_and_accessible_list(client_for, prefecture_36, le_blanc):
    response = client_for(prefecture_36).get("/carte/?departement=36")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-geojson-url="/carte/donnees.geojson?departement=36"' in html
    assert 'data-tile-url=""' in html
    assert "<caption>Communes de la carte</caption>" in html
    assert f'<a href="/beneficiaires/{le_blanc.pk}/">Le Blanc</a>' in html
    assert "Ussel" not in html
    assert "vendor/leaflet/leaflet" in html and "js/carte.js" in html
    # CSP: no inline script or style attribute on the page.
    assert not re.search(r"\sstyle=", html)
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html.replace("json_script", ""))
    assert 'href="/carte/"' in html  # navigation link


@override_settings(MAP_TILE_URL="https://tiles.example.fr/{z}/{x}/{y}.png")
def test_tile_url_is_a_setting(client_for, national):
    html = client_for(national).get("/carte/").content.decode()
    assert 'data-tile-url="https://tiles.example.fr/{z}/{x}/{y}.png"' in html


def test_hostile_names_are_escaped(client_for, national, le_blanc):
    Beneficiaire.objects.filter(pk=le_blanc.pk).update(nom='<img src=x onerror="alert(1)">')
    client = client_for(national)
    html = client.get("/carte/?departement=36").content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x" in html
    point = next(f for f in features(client) if f["properties"]["code"] == "36018")
    assert point["properties"]["beneficiaire"] == '<img src=x onerror="alert(1)">'


def _grow(n: int) -> None:
    """n more PVD communes with coordinates, in a new département, each its own beneficiary."""
    departement = DepartementFactory(code="87", nom="Haute-Vienne", region_id="75")
    for i in range(n):
        commune = CommuneFactory(
            code=f"87{i:03d}", departement=departement, latitude=45.8 + i / 1000, longitude=1.2
        )
        beneficiaire = Beneficiaire.objects.create(
            nom=f"Bénéficiaire {i}",
            departement=departement,
            statut=Beneficiaire.Statut.LAUREAT,
        )
        MembreBeneficiaire.objects.create(beneficiaire=beneficiaire, commune=commune)
        Convention.objects.create(
            beneficiaire=beneficiaire,
            type=Convention.Type.CADRE,
            titre="Convention-cadre",
            statut=Convention.Statut.SIGNEE if i % 2 else Convention.Statut.BROUILLON,
        )


@pytest.mark.parametrize("url", [GEOJSON, "/carte/"])
def test_query_count_does_not_grow_with_data(client_for, national, url):
    client = client_for(national)
    client.get(url)  # warm caches (session, perimeter)
    small = count_queries(lambda: client.get(url))
    _grow(30)
    # A new département: the selects' kept lists (club/filters.py) are read again, once.
    client.get(url)
    large = count_queries(lambda: client.get(url))
    assert len(features(client)) == 20 + 30
    assert small == large
    # The page: 6, plus the fiches' list (carte/fiches.py), plus the two lists' capped
    # counts (a national map counts its communes and fiches, and reads them only when short
    # enough to show); the selects' options kept by the process.
    assert large <= 10
