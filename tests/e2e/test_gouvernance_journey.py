"""Issue 23's journey: the chef de projet of Ussel schedules a comité de projet, convokes it
(an e-mail with a valid invitation reaches a real SMTP server), records attendance and a
decision that raises a fiche's notified amount, publishes the relevé (the PDF downloads);
the fiche's line shows the decision; the follow-up's reminder resolves when marked done; the
préfecture of the Indre sees its CLCT due."""

import re
from datetime import time
from decimal import Decimal

import icalendar
import pytest
from dateutil.relativedelta import relativedelta
from django.utils import timezone

from actions.models import LigneFinancement
from communes.models import Beneficiaire
from gouvernance.models import Instance, Membre, Reunion
from pvd.models import Role
from rappels.models import Rappel
from rappels.sweep import record
from tests.actions.test_plan_readmodel import make_fiche
from tests.factories import user_with_role

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SMTP_PORT = 9912


@pytest.fixture
def smtp(settings):
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    received = []

    class Keep(Message):
        def handle_message(self, message):
            received.append(message)

    controller = Controller(Keep(), hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", SMTP_PORT
    settings.EMAIL_USE_TLS, settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = False, "", ""
    yield received
    controller.stop()


@pytest.fixture
def gouvernance(cdp_ussel, elu_ussel):
    ussel = Beneficiaire.objects.get(nom="Ussel – La Courtine")
    comite = Instance.objects.create(
        type=Instance.Type.COMITE_PROJET, nom="Comité de projet d'Ussel", beneficiaire=ussel
    )
    Membre.objects.create(
        instance=comite, organisation="Commune d'Ussel", personne="Le maire", user=elu_ussel
    )
    Membre.objects.create(
        instance=comite,
        organisation="Sous-préfecture d'Ussel",
        email="sous-prefet@correze.example.fr",
    )
    fiche = make_fiche(ussel, "1.1", cout=Decimal("100000"), lignes=[("DETR", "20000")])
    clct = Instance.objects.create(
        type=Instance.Type.CLCT,
        nom="CLCT de l'Indre",
        departement_id="36",
        reunions_par_an=2,
    )
    Reunion.objects.create(
        instance=clct,
        date=timezone.localdate() - relativedelta(months=7),
        heure_debut=time(9),
        heure_fin=time(12),
        lieu="Châteauroux",
        statut=Reunion.Statut.TENUE,
    )
    user_with_role("prefecture-36@test.pvd.fr", Role.Kind.PREFECTURE, departements=["36"])
    return comite, fiche.financements.get()


def test_a_comite_de_projet_from_convocation_to_relevé(
    login, gouvernance, smtp, cdp_ussel, csp_violations
):
    comite, ligne = gouvernance
    today = timezone.localdate()
    page = login("cdp-ussel@test.pvd.fr")
    page.get_by_role("link", name="Instances").first.click()
    page.get_by_role("link", name="Comité de projet d'Ussel").click()
    page.get_by_role("link", name="Programmer une réunion").click()
    page.get_by_label("Date").fill(today.isoformat())
    page.get_by_label("Heure de début").fill("14:00")
    page.get_by_label("Heure de fin").fill("16:00")
    page.get_by_label("Lieu").fill("Mairie d'Ussel, salle du conseil")
    page.get_by_role("button", name="Programmer").click()
    page.get_by_text("Réunion programmée").wait_for()

    # The convocation, through a real SMTP server, with an invitation a calendar reads.
    page.get_by_role("button", name="Envoyer la convocation").click()
    page.get_by_text("Convocation envoyée : 2 courriels").wait_for()
    assert sorted(m["To"] for m in smtp) == [
        "elu-ussel@test.pvd.fr",
        "sous-prefet@correze.example.fr",
    ]
    (part,) = [p for p in smtp[0].walk() if p.get_content_type() == "text/calendar"]
    (event,) = icalendar.Calendar.from_ical(part.get_payload(decode=True)).walk("VEVENT")
    assert str(event["LOCATION"]) == "Mairie d'Ussel, salle du conseil"
    assert event.decoded("DTSTART").date() == today

    page.get_by_role("link", name="Présences").click()
    maire, sous_prefet = comite.membres.order_by("pk")
    page.locator(f"#id_statut_{maire.pk}").select_option("present")
    page.locator(f"#id_statut_{sous_prefet.pk}").select_option("represente")
    page.get_by_label("Sous-préfecture d'Ussel : représenté par").fill("Le secrétaire général")
    page.get_by_role("button", name="Enregistrer les présences").click()
    page.get_by_text("Présences enregistrées.").wait_for()
    presences = page.get_by_role("region", name="Présences").inner_text()
    assert re.search(r"Sous-préfecture d'Ussel : représenté\s+par Le secrétaire général", presences)

    page.get_by_label("Statut de la réunion").select_option("tenue")
    page.get_by_role("button", name="Changer le statut").click()
    page.get_by_text("Réunion : tenue.").wait_for()

    page.get_by_role("link", name="Ajouter une décision").click()
    page.get_by_label("Type").select_option("financement")
    page.get_by_label("Décision").fill("Le comité porte la DETR de la fiche 1.1 à 35 000 €.")
    page.get_by_label("Ligne de financement décidée").select_option(label="1.1 – DETR")
    page.get_by_label("Montant notifié (€)").fill("35000")
    page.get_by_label("Suite à donner").fill("Notifier la commune")
    page.get_by_label("Responsable de la suite").select_option(str(cdp_ussel.pk))
    page.get_by_label("Échéance").fill(today.isoformat())
    page.get_by_role("button", name="Enregistrer la décision").click()
    page.get_by_text("Décision enregistrée.").wait_for()
    ligne.refresh_from_db()
    assert (ligne.montant, ligne.statut) == (Decimal("35000"), LigneFinancement.Statut.NOTIFIE)

    page.get_by_role("button", name="Publier le relevé de décisions").click()
    page.get_by_text("Relevé de décisions publié.").wait_for()
    with page.expect_download() as download:
        page.get_by_role("link", name=re.compile("^Relevé de décisions publié le")).click()
    with open(download.value.path(), "rb") as pdf:
        assert pdf.read(4) == b"%PDF"

    # The fiche's financing line says where its amount comes from.
    page.get_by_role("link", name="1.1", exact=True).first.click()
    page.get_by_text(f"Décidé en comité de projet du {today:%d/%m/%Y}").wait_for()
    financement = page.get_by_role("region", name="Plan de financement", exact=True).inner_text()
    assert re.search(r"DETR.*35\s000", financement)

    # The follow-up's reminder, then marked done: resolved.
    record(today)
    rappel = Rappel.objects.get(regle="suite_a_donner", destinataire=cdp_ussel)
    page.go_back()
    page.reload()
    page.get_by_role("button", name="Marquer comme faite").click()
    page.get_by_text("Suite marquée comme faite.").wait_for()
    rappel.refresh_from_db()
    assert rappel.resolu_le is not None

    page.get_by_role("button", name="Se déconnecter").click()
    page = login("prefecture-36@test.pvd.fr")
    section = page.get_by_role("region", name="Gouvernance")
    assert "1 instance en retard de réunion" in section.inner_text()
    assert "CLCT de l'Indre" in section.inner_text()
    assert csp_violations == []


def test_the_prefecture_sets_up_an_instance_reschedules_and_edits_it(
    login, gouvernance, csp_violations
):
    """No admin: the préfecture of the Indre sets up a comité de pilotage départemental on
    the portal, adds a member, schedules a meeting, moves it, edits its agenda."""
    today = timezone.localdate()
    page = login("prefecture-36@test.pvd.fr")
    page.get_by_role("link", name="Instances").first.click()
    page.get_by_role("link", name="Créer une instance").click()
    page.get_by_label("Type", exact=True).select_option(label="Comité de pilotage départemental")
    page.get_by_label("Département (Optionnel)").select_option(label="Indre (36)")
    page.get_by_label("Secrétariat").fill("Préfecture de l'Indre, bureau du développement")
    page.get_by_role("button", name="Créer l'instance").click()
    page.get_by_text("Instance créée").wait_for()
    page.get_by_role("heading", name="Comité de pilotage départemental – Indre (36)").wait_for()
    instance = Instance.objects.get(type=Instance.Type.COPIL_DEPARTEMENTAL)
    assert instance.departement_id == "36"

    page.get_by_role("link", name="Ajouter un membre").click()
    page.get_by_label("Organisation").fill("Conseil départemental de l'Indre")
    page.get_by_role("button", name="Ajouter").click()
    page.get_by_text("Membre ajouté.").wait_for()

    page.get_by_role("link", name="Programmer une réunion").click()
    page.get_by_label("Date").fill((today + relativedelta(days=10)).isoformat())
    page.get_by_label("Heure de début").fill("09:30")
    page.get_by_label("Heure de fin").fill("12:00")
    page.get_by_label("Lieu").fill("Préfecture, Châteauroux")
    page.get_by_role("button", name="Programmer").click()
    page.get_by_text("Réunion programmée").wait_for()

    # Moved, by video: the new date and link are stored.
    page.get_by_role("link", name="Modifier la date, le lieu ou le lien").click()
    page.get_by_label("Date").fill((today + relativedelta(days=17)).isoformat())
    page.get_by_label("Lien de visioconférence").fill("https://webconf.example.fr/copil-36")
    page.get_by_role("button", name="Enregistrer").click()
    page.get_by_text("Réunion modifiée").wait_for()
    reunion = instance.reunions.get()
    assert reunion.date == today + relativedelta(days=17)
    assert reunion.lien_visio == "https://webconf.example.fr/copil-36"

    # Two agenda points, the second moved up.
    for intitule in ("Point d'étape des conventions", "Calendrier des comités de projet"):
        page.get_by_role("link", name="Ajouter un point").click()
        page.get_by_label("Intitulé").fill(intitule)
        page.get_by_role("button", name="Ajouter le point").click()
    page.get_by_role("button", name="Monter le point 2").click()
    agenda = page.get_by_role("region", name="Ordre du jour").inner_text()
    assert agenda.index("Calendrier") < agenda.index("Point d'étape")
    assert csp_violations == []
