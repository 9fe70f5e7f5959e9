"""The Club: search other towns' fiches, narrow by a facet, open one, write to its chef de
projet; the message arrives at a real SMTP server."""

from decimal import Decimal
from email.header import decode_header, make_header

import pytest
from django.test import override_settings

from actions.models import FicheAction, Financeur, LigneFinancement, ensure_axes
from communes.models import Beneficiaire
from pvd.models import Role
from tests.factories import user_with_role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SMTP_PORT = 9921


@pytest.fixture
def plans(cdp_ussel):
    le_blanc = Beneficiaire.objects.get(nom="Le Blanc")
    ensure_axes(le_blanc)
    cdp = user_with_role("cdp-le-blanc@test.pvd.fr", Role.Kind.CHEF_PROJET)
    cdp.first_name, cdp.last_name = "Julien", "Brenne"
    cdp.save()
    cdp.roles.get().beneficiaires.set([le_blanc])
    fiche = FicheAction.objects.create(
        beneficiaire=le_blanc,
        axe=le_blanc.axes.get(numero=4),
        reference="4.5",
        titre="Rénovation des façades de la Grande Rue",
        description="Aide au ravalement des façades commerçantes de la ville haute.",
        maturite=FicheAction.Maturite.LIVREE,
    )
    LigneFinancement.objects.create(
        fiche=fiche, financeur=Financeur.objects.get(nom="Région"), montant=Decimal("1000")
    )
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    ensure_axes(ussel)
    FicheAction.objects.create(
        beneficiaire=ussel,
        axe=ussel.axes.get(numero=4),
        reference="4.3",
        titre="Rénovation des façades de la place du Marché",
    )
    return cdp


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    controller = Controller(Keep(), hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    try:
        with override_settings(
            EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
            EMAIL_HOST="127.0.0.1",
            EMAIL_PORT=SMTP_PORT,
            EMAIL_USE_TLS=False,
            EMAIL_USE_SSL=False,
            EMAIL_HOST_USER="",
            EMAIL_HOST_PASSWORD="",
        ):
            yield received
    finally:
        controller.stop()


def test_chef_de_projet_finds_another_town_and_writes_to_its_chef_de_projet(
    login, plans, smtp_server, csp_violations
):
    page = login("cdp-ussel@test.pvd.fr")
    page.get_by_role("link", name="Club PVD").first.click()
    page.get_by_label("Rechercher dans les plans d’action").fill("renovation facades")
    page.get_by_role("button", name="Rechercher").click()
    results = page.locator(".pvd-club-results > li")
    assert results.count() == 2

    page.get_by_label("Département").select_option(value="36")
    page.get_by_role("button", name="Rechercher").click()
    assert results.count() == 1
    assert results.first.locator("mark").count() >= 1

    page.get_by_role("link", name="Rénovation des façades de la Grande Rue").click()
    assert page.get_by_role("heading", level=1).inner_text() == (
        "Rénovation des façades de la Grande Rue"
    )
    assert "cdp-le-blanc@test.pvd.fr" not in page.content()
    page.get_by_role("link", name="Contacter Julien Brenne").click()
    page.get_by_label("Message").fill("Bonjour, comment avez-vous monté l’aide aux façades ?")
    page.get_by_role("button", name="Envoyer le message").click()
    assert "Votre message a été envoyé à Julien Brenne" in page.content()

    (message,) = smtp_server
    assert message["To"] == "cdp-le-blanc@test.pvd.fr"
    assert message["Reply-To"] == "cdp-ussel@test.pvd.fr"
    subject = str(make_header(decode_header(message["Subject"])))
    assert subject == "[Club PVD] Votre fiche « Rénovation des façades de la Grande Rue »"
    body = message.get_payload(decode=True).decode()
    assert "Ussel – La Courtine" in body and "comment avez-vous monté" in body
    assert csp_violations == []
