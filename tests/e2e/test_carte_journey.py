import pytest

from pvd.models import Role
from tests.e2e.sweep import AXE_JS, BLOCKING_IMPACTS, run_axe
from tests.factories import user_with_role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_prefecture(territoires):
    return user_with_role("prefecture-36@test.pvd.fr", Role.Kind.PREFECTURE, departements=["36"])


@pytest.fixture
def demo_national(territoires):
    return user_with_role("anct@test.pvd.fr", Role.Kind.NATIONAL)


@pytest.fixture
def with_axe(page):
    """axe-core in every page the test opens (as the accessibility sweep loads it)."""
    if not AXE_JS.exists():
        pytest.skip("axe-core is missing: npm ci (or make test)")
    page.context.add_init_script(path=str(AXE_JS))


def serious_violations(page) -> list[dict]:
    return [v for v in run_axe(page) if v["impact"] in BLOCKING_IMPACTS]


def test_prefecture_opens_a_beneficiary_from_the_map(
    with_axe, login, demo_prefecture, csp_violations
):
    page = login("prefecture-36@test.pvd.fr")
    # The dashboard embeds the département's map: its shape, and its communes' points.
    carte = page.locator("#pvd-carte")
    page.wait_for_selector("#pvd-carte[data-state=ready]")
    # No tile URL in tests: a plain background, and no image requested from elsewhere.
    assert page.locator("#pvd-carte .leaflet-tile").count() == 0
    assert page.locator(".pvd-choroplethe__departement--36").count() == 1
    assert page.locator("[class*=pvd-choroplethe__departement--19]").count() == 0
    # The list under the map says the same, and holds only the Indre.
    page.get_by_text("Les chiffres de la carte des départements (tableau)").click()
    table = page.get_by_role("table", name="Conventions-cadres signées par département")
    assert "36 – Indre" in table.inner_text() and "Corrèze" not in table.inner_text()
    assert serious_violations(page) == []

    # Zoom in through the clusters until Le Blanc's point is drawn, then click it.
    point = page.locator(".pvd-carte__commune--36018")
    for _ in range(6):
        if point.count():
            break
        carte.locator(".marker-cluster").first.click()
        page.wait_for_timeout(400)  # Leaflet's zoom animation
    assert point.count() == 1
    assert page.locator("[class*=pvd-carte__commune--19]").count() == 0
    point.click(force=True)
    page.wait_for_url("**/beneficiaires/*/")
    assert page.get_by_role("heading", level=1).inner_text() == "Le Blanc"
    assert csp_violations == []


def test_national_drills_down_from_the_choropleth_by_keyboard(
    with_axe, login, demo_national, csp_violations
):
    page = login("anct@test.pvd.fr")
    indre = page.get_by_role("link", name="Indre (36) : 0 convention-cadre signée")
    assert indre.count() == 1
    page.wait_for_selector("#pvd-carte[data-state=ready]")
    assert serious_violations(page) == []
    indre.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/tableaux/programme/departement/36/")
    # The département's page zooms on it, with its neighbours drawn but not linked.
    assert page.locator(".pvd-choroplethe__departement").count() == 1
    assert page.locator(".pvd-choroplethe__voisins use").count() > 3
    page.wait_for_selector("#pvd-carte[data-state=ready]")
    assert csp_violations == []


def test_chef_de_projet_filters_the_fiches_on_the_map_and_opens_one(
    with_axe, login, demo_data, cdp_ussel, csp_violations
):
    page = login("cdp-ussel@test.pvd.fr")
    page.goto("/carte/")
    page.get_by_label("Maturité").select_option(label="Engagée")
    page.get_by_role("button", name="Afficher").click()
    page.wait_for_url("**/carte/?*maturite=engagee*")
    page.wait_for_selector("#pvd-carte[data-state=ready]")
    # The list under the map holds the same fiches as the map's layer.
    rows = page.get_by_role("region", name="Fiches action de la carte").locator("tbody tr")
    assert rows.count() > 0
    assert page.locator("#pvd-carte").get_attribute("data-fiches") == str(rows.count())
    assert set(rows.locator("td:nth-child(4)").all_inner_texts()) == {"Engagée"}
    # Leaflet speaks French; clusters are grey, not a state's colour.
    titles = page.locator(".leaflet-control-zoom a").evaluate_all("(a) => a.map((e) => e.title)")
    assert titles == ["Zoom avant", "Zoom arrière"]
    groupe = page.locator(".pvd-carte__groupe").first
    assert groupe.evaluate("(e) => getComputedStyle(e).backgroundColor") == "rgb(58, 58, 58)"
    assert serious_violations(page) == []
    # Through the clusters to a fiche, whose popup gives its title, status, cost and link.
    fiche = page.locator(".leaflet-marker-icon.pvd-carte__fiche")
    for _ in range(8):
        if fiche.count():
            break
        page.locator(".pvd-carte__groupe--fiches").first.click()
        page.wait_for_timeout(400)  # Leaflet's zoom animation
    fiche.first.click(force=True)
    popup = page.locator(".leaflet-popup-content")
    popup.get_by_text("Maturité : Engagée").wait_for()
    assert "Coût : " in popup.inner_text()
    popup.get_by_role("link").click()
    page.wait_for_url("**/actions/fiches/*/")
    assert csp_violations == []
