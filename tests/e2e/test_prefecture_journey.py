import pytest

from pvd.models import Role
from tests.factories import user_with_role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_prefecture(territoires):
    return user_with_role("prefecture-36@test.pvd.fr", Role.Kind.PREFECTURE, departements=["36"])


def test_prefecture_searches_communes_of_its_departement(login, demo_prefecture, csp_violations):
    page = login("prefecture-36@test.pvd.fr")
    assert page.get_by_role("heading", level=1).is_visible()
    page.get_by_role("link", name="Communes").first.click()
    page.get_by_label("Nom ou code INSEE").fill("sur")
    page.get_by_role("button", name="Rechercher").click()
    table = page.locator("table")
    assert "Argenton-sur-Creuse" in table.inner_text()
    assert "Châtillon-sur-Indre" in table.inner_text()
    # Corrèze communes are outside the perimeter, even when searched for by name.
    page.get_by_label("Nom ou code INSEE").fill("Ussel")
    page.get_by_role("button", name="Rechercher").click()
    assert "Aucune commune" in page.content()
    page.get_by_label("Nom ou code INSEE").fill("")
    page.get_by_role("button", name="Rechercher").click()
    text = page.locator("table").inner_text()
    assert "Le Blanc" in text and "Valençay" in text
    assert "Bort-les-Orgues" not in text and "La Courtine" not in text
    page.get_by_role("link", name="Le Blanc").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Le Blanc"
    assert "CC Brenne - Val de Creuse" in page.content()
    assert csp_violations == []
