"""One journey per role not walked elsewhere in tests/e2e: the visitor, national staff, the
élu and the read-only partner. (Préfecture: test_selection_journey and
test_prefecture_journey; chef de projet: test_action_plan_journey.)"""

import re

import pytest
from django.core import mail

from communes.models import Beneficiaire
from conventions.models import Convention
from pvd.models import User

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# « Importer / exporter » leads partners to the exports; its import form is not theirs.
EDIT_LINKS = re.compile(
    r"^(Modifier|Nouvelle|Nouveau|Ajouter|Supprimer|Proposer|Enregistrer|Importer(?! / exporter))"
)


def test_a_visitor_reads_the_legal_pages_and_asks_for_a_new_password(page, sans_role):
    page.goto("/communes/")
    page.wait_for_url("**/accounts/login/**")
    page.get_by_role("link", name="Accessibilité : non conforme").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Déclaration d’accessibilité"
    assert page.get_by_role("heading", name="Ce qui reste à vérifier à la main").is_visible()
    page.get_by_role("link", name="Mentions légales").first.click()
    assert page.get_by_role("heading", level=1).inner_text() == "Mentions légales"
    page.goto("/accounts/login/")
    page.get_by_role("link", name="Mot de passe oublié ?").click()
    page.get_by_label("Adresse électronique").fill("nouveau@test.pvd.fr")
    page.get_by_role("button", name=re.compile("initialiser")).click()
    page.wait_for_url("**/accounts/password/reset/done/")
    assert [message.to for message in mail.outbox] == [["nouveau@test.pvd.fr"]]


def test_national_staff_open_an_account_then_read_the_journal(login, national, csp_violations):
    page = login("anct@test.pvd.fr")
    page.get_by_role("link", name="Accès").first.click()
    page.get_by_role("link", name="Ajouter un utilisateur").click()
    page.get_by_label("Adresse électronique").fill("agent-36@test.pvd.fr")
    page.get_by_label("Prénom").fill("Agathe")
    page.get_by_label("Nom (Optionnel)", exact=True).fill("Dupré")
    page.get_by_role("button", name="Créer le compte").click()
    assert "Compte créé" in page.locator(".fr-alert").first.inner_text()
    assert User.objects.filter(email="agent-36@test.pvd.fr").exists()
    page.get_by_role("link", name="Journal").first.click()
    assert page.get_by_role("heading", level=1).inner_text() == "Journal"
    assert page.locator("table caption").count() == 1
    assert csp_violations == []


def test_the_elu_reads_the_plan_of_his_commune_without_editing_it(login, demo_data, elu_ussel):
    page = login("elu-ussel@test.pvd.fr")
    page.get_by_role("link", name="Plans d’action").first.click()
    page.get_by_role("link", name="Ussel – La Courtine").click()
    assert page.get_by_role("heading", level=1).inner_text().startswith("Plan d’action")
    assert page.get_by_role("link", name="Nouvelle fiche action").count() == 0
    page.get_by_role("link", name="Conventions").first.click()
    assert "Ussel" in page.locator("main").inner_text()


def test_the_partner_reads_everything_edits_nothing_and_is_refused_a_forced_url(
    login, demo_data, partenaire, ussel_la_courtine
):
    convention = Convention.objects.filter(beneficiaire=ussel_la_courtine).first()
    beneficiaire = Beneficiaire.objects.get(nom="Le Blanc")
    page = login("partenaire@test.pvd.fr")
    for url in (
        f"/conventions/{convention.pk}/",
        f"/actions/beneficiaire/{ussel_la_courtine.pk}/",
        f"/beneficiaires/{beneficiaire.pk}/",
    ):
        response = page.goto(url)
        assert response.status == 200, url
        actions = page.locator("main a, main button").all_inner_texts()
        assert [text for text in actions if EDIT_LINKS.match(text.strip())] == [], url
    response = page.goto(f"/conventions/{convention.pk}/modifier/")
    assert response.status == 403
    assert page.get_by_role("heading", level=1).inner_text() == "Accès refusé"
