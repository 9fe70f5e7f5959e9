"""The choropleth by département on the dashboards and the map page: real shapes, who sees
which département's figures, colours, links, the list alternative and its query cost."""

import re
from datetime import date

import pytest
from django.db import connection
from django.template.loader import render_to_string
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from carte import choroplethe, geo
from communes.models import Beneficiaire
from conventions.models import Convention

pytestmark = pytest.mark.django_db


def svg(html: str) -> str:
    """The choropleth's <svg> element."""
    match = re.search(r'<svg class="pvd-choroplethe__svg".*?</svg>', html, re.S)
    assert match, "no choropleth on the page"
    return match.group(0)


def linked(html: str) -> dict[str, str]:
    """Département code → link target, for each linked shape of the choropleth."""
    return dict(
        (code, href)
        for href, code in re.findall(
            r'<a href="([^"]+)"\s+class="pvd-choroplethe__departement '
            r'pvd-choroplethe__departement--(\w+)">',
            svg(html),
        )
    )


def titles(html: str) -> list[str]:
    return re.findall(r"<title>([^<]*)</title>", svg(html))


def sign_cadre(beneficiaire, statut=Convention.Statut.SIGNEE):
    Convention.objects.create(
        beneficiaire=beneficiaire, type=Convention.Type.CADRE, titre="Cadre", statut=statut
    )


def test_vendored_shapes_cover_metropolitan_and_overseas_departements():
    shapes = choroplethe.formes()
    assert {"01", "2A", "2B", "19", "23", "36", "95"} <= set(shapes)
    assert {"971", "972", "973", "974", "976"} <= set(shapes)
    assert len(shapes) == 96 + 5
    for shape in shapes.values():
        assert re.fullmatch(r"(M[-\d. ]+[lh][-\d. vhz]+z)+", shape.d), shape.code
    # The Indre lies west of the Corrèze's east edge and north of it.
    indre, correze = shapes["36"].bbox, shapes["19"].bbox
    assert indre[3] < correze[3] and indre[1] < correze[1]


def test_shapes_are_served_once_to_anyone_and_cached(client):
    response = client.get("/carte/departements.svg?v=1")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert response["Cache-Control"] == "public, max-age=86400"
    content = response.content.decode()
    assert content.count("<path id=") == 96 + 5
    assert '<path id="d36" d="M' in content and '<path id="d2A" d="M' in content


def test_prefecture_home_shows_only_its_departement(client_for, prefecture_36, le_blanc):
    sign_cadre(le_blanc)
    html = client_for(prefecture_36).get(reverse("portail:home")).content.decode()
    assert linked(html) == {"36": "/?departement=36#tableau-beneficiaires"}
    # Neighbours are drawn for context, hidden from assistive technologies, without figures.
    assert '<g class="pvd-choroplethe__voisins" aria-hidden="true">' in html
    assert titles(html) == ["Indre (36) : 1 convention-cadre signée pour 16 bénéficiaires (6 %)"]
    table = html.split("<caption>Conventions-cadres signées par département</caption>")[1]
    table = table.split("</table>")[0]
    assert "36 – Indre" in table and "Corrèze" not in table and "Creuse" not in table
    # No other territory's count, even as a total: the Corrèze's two beneficiaries.
    assert "pvd-choroplethe__departement--19" not in html
    # Its communes' points load from the GeoJSON of its perimeter, with a no-JS fallback.
    assert 'data-geojson-url="/carte/donnees.geojson"' in html
    assert "La carte des communes nécessite JavaScript" in html
    assert 'href="/carte/">Liste des communes de la carte' in html


def test_national_home_colours_every_departement_and_drills_down(client_for, national):
    beneficiaires = Beneficiaire.objects.filter(departement_id="19")
    for beneficiaire in beneficiaires:
        sign_cadre(beneficiaire)
    html = client_for(national).get(reverse("portail:home")).content.decode()
    assert linked(html) == {
        "19": "/tableaux/programme/departement/19/",
        "23": "/tableaux/programme/departement/23/",
        "36": "/tableaux/programme/departement/36/",
    }
    drawn = svg(html)
    assert 'class="pvd-choroplethe--fort" href="/carte/departements.svg?v=1#d19"' in drawn
    assert 'class="pvd-choroplethe--tres-faible"' in drawn.split("departement--36")[1][:300]
    # The Creuse has no beneficiary of its own (La Courtine belongs to Ussel's, in 19).
    assert 'class="pvd-choroplethe--vide"' in drawn.split("departement--23")[1][:300]
    assert "Creuse (23) : aucun bénéficiaire actif" in titles(html)
    # The whole of France, overseas boxes included, is drawn.
    assert 'viewBox="0 0 613 649"' in drawn
    assert drawn.count("<use") == 96 + 5
    assert '<text x="32" y="626">971</text>' in drawn  # not localised as « 32,0 »
    assert 'data-geojson-url="/carte/donnees.geojson"' in html


def test_region_page_zooms_on_its_departements(client_for, national):
    html = client_for(national).get(reverse("tableaux:region", args=["75"])).content.decode()
    assert set(linked(html)) == {"19", "23"}
    assert 'data-geojson-url="/carte/donnees.geojson?region=75"' in html
    assert 'href="/carte/?region=75">Liste des communes' in html
    viewbox = re.search(r'viewBox="([^"]+)"', svg(html)).group(1)
    x, y, w, h = (float(v) for v in viewbox.split())
    assert w < 200 and h < 200  # not the whole country
    departement = client_for(national).get(reverse("tableaux:departement", args=["36"]))
    assert set(linked(departement.content.decode())) == {"36"}


def test_partner_reads_the_national_map(client_for, partenaire):
    html = client_for(partenaire).get(reverse("portail:home")).content.decode()
    assert set(linked(html)) == {"19", "23", "36"}


def test_elu_home_has_no_departement_map(client_for, elu_ussel):
    html = client_for(elu_ussel).get(reverse("portail:home")).content.decode()
    assert "pvd-choroplethe" not in html


def test_map_page_draws_the_choropleth_of_its_filter(client_for, prefecture_19):
    client = client_for(prefecture_19)
    html = client.get("/carte/").content.decode()
    assert linked(html) == {"19": "/?departement=19#tableau-beneficiaires"}
    assert titles(html) == ["Corrèze (19) : 0 convention-cadre signée pour 2 bénéficiaires (0 %)"]
    assert client.get("/carte/?departement=36").status_code == 404


def test_only_signed_conventions_count(client_for, national, le_blanc):
    sign_cadre(le_blanc, Convention.Statut.EN_SIGNATURE)
    rows = choroplethe.lignes(national, choroplethe.Departement.objects.all())
    assert {r["code"]: (r["beneficiaires"], r["signees"]) for r in rows} == {
        "19": (2, 0),
        "23": (0, 0),
        "36": (16, 0),
    }
    Beneficiaire.objects.filter(pk=le_blanc.pk).update(statut=Beneficiaire.Statut.RETIRE)
    sign_cadre(le_blanc)
    rows = choroplethe.lignes(national, choroplethe.Departement.objects.all())
    assert rows[2]["beneficiaires"] == 15 and rows[2]["signees"] == 0


@pytest.mark.parametrize("who", ["prefecture_36", "national"])
def test_the_choropleth_costs_one_query_and_none_once_cached(
    request, who, settings, production_caches
):
    user = request.getfixturevalue(who)
    user.perimeter  # noqa: B018 - read once, as the middleware does
    settings.PROGRAMME_CACHE_TIMEOUT = 600
    niveau = "france" if who == "national" else "perimetre"
    counts = []
    for _ in range(2):
        with CaptureQueriesContext(connection) as context:
            html = render_to_string(
                "carte/includes/choroplethe_cache.html",
                {"choroplethe": choroplethe.a_cacher(user, niveau, None, date(2026, 1, 5))},
            )
        counts.append(len(context))
    # National readers share one drawing; a préfecture's is kept for its perimeter.
    assert counts == [1, 0]
    assert "pvd-choroplethe__departement--36" in html


def test_a_prefecture_map_is_kept_for_its_perimeter_until_the_data_changes(
    production_caches, prefecture_36, prefecture_19, le_blanc
):

    def draw(user):
        user.perimeter  # noqa: B018 - read once, as the middleware does
        with CaptureQueriesContext(connection) as context:
            html = render_to_string(
                "carte/includes/choroplethe_cache.html",
                {"choroplethe": choroplethe.a_cacher(user, "perimetre", None, date(2026, 1, 5))},
            )
        return len(context), html

    assert draw(prefecture_36)[0] == 1
    assert draw(prefecture_36)[0] == 0
    # Another préfecture never gets the Indre's drawing.
    queries, html = draw(prefecture_19)
    assert queries == 1
    assert 'href="/?departement=19' in html and 'href="/?departement=36' not in html
    # A change to a beneficiary (through the portal: a signal) draws it anew.
    le_blanc.save()
    assert draw(prefecture_36)[0] == 1


def test_elu_map_page_counts_only_what_the_elu_reads(client_for, elu_ussel):
    html = client_for(elu_ussel).get("/carte/").content.decode()
    # Ussel's beneficiary only, not Bort-les-Orgues – Neuvic, the Corrèze's other one.
    assert linked(html) == {"19": "/carte/?departement=19"}
    assert titles(html) == ["Corrèze (19) : 0 convention-cadre signée pour 1 bénéficiaire (0 %)"]


def test_a_terminated_cadre_counts_as_signed_nowhere_on_the_map(
    client_for, prefecture_36, le_blanc
):
    """The choropleth counts the conventions-cadres in force, as the points say them."""
    sign_cadre(le_blanc, Convention.Statut.RESILIEE)
    html = client_for(prefecture_36).get(reverse("portail:home")).content.decode()
    assert titles(html) == ["Indre (36) : 0 convention-cadre signée pour 16 bénéficiaires (0 %)"]
    geojson = client_for(prefecture_36).get(reverse("carte:geojson")).json()
    (point,) = [
        f["properties"]
        for f in geojson["features"]
        if f["properties"]["couche"] == "commune" and f["properties"]["nom"] == "Le Blanc"
    ]
    assert geo.ETATS[point["etat"]] == "Convention-cadre échue ou résiliée"
