from datetime import date

import pytest

from communes.models import Beneficiaire, Departement
from pvd.models import Role
from tests.factories import CommuneFactory, EPCIFactory, user_with_role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_prefecture(territoires):
    CommuneFactory(
        code="36088",
        nom="Issoudun",
        departement=Departement.objects.get(code="36"),
        epci=EPCIFactory(siren="200071223", nom="CC du Pays d'Issoudun"),
        population=11500,
    )
    return user_with_role("prefecture-36@test.pvd.fr", Role.Kind.PREFECTURE, departements=["36"])


def test_prefecture_selects_a_commune_and_makes_it_laureat(login, demo_prefecture):
    page = login("prefecture-36@test.pvd.fr")
    page.get_by_role("link", name="Sélection").first.click()
    assert "Sélection des communes" in page.get_by_role("heading", level=1).inner_text()
    page.get_by_label("Sélectionner Issoudun").check()
    page.get_by_role("button", name="Proposer les communes cochées").first.click()
    assert page.get_by_label("Codes INSEE des communes").input_value() == "36088"
    page.get_by_role("button", name="Proposer").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Issoudun")
    assert "Bénéficiaire « Issoudun » proposé" in page.content()

    page.get_by_label("Décision", exact=True).select_option("laureat")
    page.get_by_label("Date de la décision").fill(date.today().isoformat())
    page.get_by_role("textbox", name="Référence de la décision").fill(
        "Arrêté préfectoral n° 2026-101"
    )
    page.get_by_role("button", name="Enregistrer la décision").click()
    assert "Décision enregistrée : Lauréat" in page.content()
    assert Beneficiaire.objects.get(nom="Issoudun").statut == Beneficiaire.Statut.LAUREAT
