import pytest

from pvd.models import Role
from tests.factories import user_with_role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_prefecture(territoires):
    return user_with_role("prefecture-36@test.pvd.fr", Role.Kind.PREFECTURE, departements=["36"])


def test_prefecture_opens_a_beneficiary_from_the_map(login, demo_prefecture, csp_violations):
    page = login("prefecture-36@test.pvd.fr")
    page.get_by_role("link", name="Carte", exact=True).first.click()
    page.wait_for_url("**/carte/")
    carte = page.locator("#pvd-carte")
    page.wait_for_selector("#pvd-carte[data-state=ready]")
    # No tile URL in tests: a plain background, and no image requested from elsewhere.
    assert page.locator("#pvd-carte .leaflet-tile").count() == 0
    assert page.locator("#pvd-carte .pvd-carte__departement").count() == 1
    # The list under the map says the same, and holds only the Indre.
    table = page.get_by_role("table", name="Départements de la carte").inner_text()
    assert "Indre (36)" in table and "Corrèze" not in table

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
