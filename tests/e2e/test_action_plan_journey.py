import re

import pytest

from actions.models import FicheAction, Financeur, LigneFinancement, ensure_axes
from communes.models import Beneficiaire

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def demo_chef_de_projet(cdp_ussel):
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    user = cdp_ussel
    ensure_axes(ussel)
    existing = FicheAction.objects.create(
        beneficiaire=ussel,
        axe=ussel.axes.get(nom="Habitat"),
        reference="1.1",
        titre="OPAH-RU multisite",
        cout_total=100000,
    )
    LigneFinancement.objects.create(
        fiche=existing, financeur=Financeur.objects.get(nom="Anah"), montant=50000
    )
    return user


def euros(text: str) -> int:
    return int(re.sub(r"[^\d]", "", text))


def axis_totals(page, name: str) -> tuple[int, int]:
    axis = page.get_by_role("region", name=name)
    return (
        euros(axis.locator("[data-total=cout]").inner_text()),
        euros(axis.locator("[data-total=finance]").inner_text()),
    )


def test_chef_de_projet_adds_a_financed_fiche_and_sees_the_axis_totals(
    login, demo_chef_de_projet, csp_violations
):
    page = login("cdp-ussel@test.pvd.fr")
    page.get_by_role("link", name="Plans d’action").first.click()
    page.get_by_role("link", name="Ussel – La Courtine").click()
    heading = page.get_by_role("heading", level=1).inner_text()
    assert heading == "Plan d’action — Ussel – La Courtine"
    cout, finance = axis_totals(page, "1. Habitat")
    assert (cout, finance) == (100000, 50000)

    page.get_by_role("link", name="Nouvelle fiche action").click()
    page.get_by_label("Axe", exact=True).select_option(label="1. Habitat")
    page.get_by_label("Référence").fill("1.2")
    page.get_by_label("Titre", exact=True).fill("Réhabilitation de l'îlot de la rue Pasteur")
    page.get_by_label("Coût total").fill("300000")
    for row, (financeur, montant) in enumerate((("DSIL", "120000"), ("Région", "60000")), 1):
        ligne = page.locator("fieldset", has=page.get_by_text(f"Nouveau financement {row}"))
        ligne.get_by_label("Financeur").select_option(label=financeur)
        ligne.get_by_label("Montant").fill(montant)
    page.get_by_role("button", name="Enregistrer la fiche").click()

    assert (
        "1.2 – Réhabilitation de l'îlot de la rue Pasteur"
        in page.get_by_role("heading", level=1).inner_text()
    )
    financing = page.locator(".fr-alert", has_text="reste à financer").inner_text()
    assert "reste à financer : 120 000 €" in " ".join(financing.replace("\xa0", " ").split())
    page.get_by_role("navigation", name="vous êtes ici :").get_by_role(
        "link", name="Ussel – La Courtine"
    ).click()
    assert axis_totals(page, "1. Habitat") == (cout + 300000, finance + 180000)
    fiche = FicheAction.objects.get(reference="1.2")
    assert fiche.updated_by == demo_chef_de_projet
    assert sorted(fiche.financements.values_list("financeur__nom", flat=True)) == [
        "DSIL",
        "Région",
    ]
    # htmx, the DSFR script and the timeline ran under the Content-Security-Policy.
    assert csp_violations == []
