from datetime import date

import pytest
from django.core import mail

from communes.models import Beneficiaire
from postes.models import CofinancementAnnee, Occupation, Poste
from postes.regles import seed_regles
from pvd.models import Role
from tests.factories import user_with_role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def poste_bort(territoires):
    from postes.models import RegleCofinancement

    seed_regles(RegleCofinancement)
    user_with_role("prefecture-19@test.pvd.fr", Role.Kind.PREFECTURE, departements=["19"])
    poste = Poste.objects.create(
        intitule="Chef de projet PVD Bort-les-Orgues – Neuvic",
        employeur_siren="200066744",
        employeur_nom="CC Haute-Corrèze Communauté",
        date_creation=date(2021, 3, 15),
        etat=Poste.Etat.POURVU,
    )
    poste.beneficiaires.set([Beneficiaire.objects.get(nom="Bort-les-Orgues – Neuvic")])
    Occupation.objects.create(
        poste=poste,
        prenom="Julien",
        nom="Mercier",
        email="julien.mercier@example.fr",
        date_debut=date(2021, 6, 1),
    )
    return poste


def words(text: str) -> str:
    return " ".join(text.replace("\xa0", " ").split())


def test_prefecture_records_departure_recruitment_and_capped_cofinancing(login, poste_bort):
    page = login("prefecture-19@test.pvd.fr")
    page.get_by_role("link", name="Chefs de projet").first.click()
    page.get_by_role("link", name="Chef de projet PVD Bort-les-Orgues – Neuvic").click()

    page.get_by_role("link", name="Enregistrer un départ").click()
    page.get_by_label("Date de départ").fill("2025-03-31")
    page.get_by_label("Motif du départ").fill("Fin de contrat")
    page.get_by_role("button", name="Enregistrer").click()
    assert "le poste est vacant" in words(page.locator(".fr-alert").first.inner_text())

    page.get_by_role("link", name="Étape du recrutement").click()
    page.get_by_label("Nouvel état").select_option(label="En recrutement")
    page.locator("input[name=date]").fill("2025-04-10")
    page.get_by_label("Date de publication de l'offre").fill("2025-04-10")
    page.get_by_label("Lien vers l'offre publiée").fill("https://choisirleservicepublic.gouv.fr/1")
    page.get_by_role("button", name="Enregistrer").click()

    page.get_by_role("link", name="Enregistrer une prise de poste").click()
    page.get_by_label("Prénom").fill("Léa")
    page.get_by_label("Nom", exact=True).fill("Durand")
    page.get_by_label("Adresse électronique").fill("lea.durand@example.fr")
    page.get_by_label("Date de prise de poste").fill("2025-07-01")
    page.get_by_role("button", name="Enregistrer").click()
    assert "invitation au portail a été envoyée" in page.locator(".fr-alert").first.inner_text()
    [invitation] = mail.outbox
    assert invitation.to == ["lea.durand@example.fr"]
    assert "Bort-les-Orgues – Neuvic" in invitation.body

    page.get_by_role("link", name="Ajouter une année de cofinancement").click()
    page.get_by_label("Année", exact=True).fill("2025")
    page.get_by_label("Coût chargé annuel éligible").fill("60000")
    page.get_by_label("Numéro du dossier démarches-simplifiées").fill("DS-2025-0042")
    anct = page.locator("fieldset", has=page.locator("legend", has_text="ANCT"))
    anct.get_by_label("Demandé").fill("30000")
    anct.get_by_label("Notifié").fill("30000")
    anct.get_by_label("Date de notification").fill("2025-05-20")
    bdt = page.locator("fieldset", has=page.locator("legend", has_text="Banque des Territoires"))
    bdt.get_by_label("Demandé").fill("15000")
    bdt.get_by_label("Notifié").fill("15000")
    bdt.get_by_label("Date de notification").fill("2025-05-20")
    page.get_by_role("button", name="Enregistrer").click()

    refusal = words(page.get_by_role("alert").inner_text())
    assert "Le total notifié pour 2025 (45 000 €) dépasse le plafond de 33 750 €" in refusal
    assert "mois non pourvus, non éligibles : avril, mai, juin" in refusal
    assert not CofinancementAnnee.objects.exists()

    anct.get_by_label("Notifié").fill("18750")
    page.get_by_role("button", name="Enregistrer").click()
    assert "Cofinancement 2025 enregistré" in page.locator(".fr-alert").first.inner_text()
    assert "Plafond de l’année : 33 750 €" in words(page.locator("body").inner_text())
    assert "Léa Durand" in page.locator("body").inner_text()
