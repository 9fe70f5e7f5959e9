"""History with its real dates: a proposal and its decisions take the day they happened, kept
apart from who recorded them and when; an event cannot be dated in the future."""

import html
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from communes.models import Beneficiaire, Departement
from tests.factories import CommuneFactory, EPCIFactory

from .test_beneficiaires import CREATE, decide

pytestmark = pytest.mark.django_db

DEC_7 = date(2026, 12, 7)


@pytest.fixture
def issoudun(territoires):
    return CommuneFactory(
        code="36088",
        nom="Issoudun",
        departement=Departement.objects.get(code="36"),
        epci=EPCIFactory(siren="200071223", nom="CC du Pays d'Issoudun"),
        population=11500,
    )


@pytest.fixture
def on_dec_7(time_machine):
    time_machine.move_to(datetime(2026, 12, 7, 10, 0, tzinfo=ZoneInfo("Europe/Paris")))
    return DEC_7


def propose(client, **data):
    return client.post(CREATE, {"commune_codes": "36088", **data})


def test_a_decision_dated_after_a_past_proposal_entered_today_is_accepted(
    client_for, prefecture_36, issoudun, on_dec_7
):
    client = client_for(prefecture_36)
    assert propose(client, date_proposition="2026-12-01").status_code == 302
    candidat = Beneficiaire.objects.get(nom="Issoudun")
    proposal = candidat.decisions.get()
    assert proposal.date_decision == date(2026, 12, 1)
    assert proposal.created_at.date() == DEC_7 and proposal.decided_by == prefecture_36

    response = decide(
        client, candidat, nouveau_statut="laureat", date_decision="2026-12-05", reference="Arrêté"
    )

    assert response.status_code == 302
    candidat.refresh_from_db()
    assert candidat.statut == Beneficiaire.Statut.LAUREAT
    dates = [d.date_decision for d in candidat.decisions.order_by("date_decision")]
    assert dates == [date(2026, 12, 1), date(2026, 12, 5)]
    page = client.get(reverse("communes:beneficiaire-detail", args=[candidat.pk])).content
    assert "05/12/2026" in page.decode() and "Enregistrée par" in page.decode()


def test_a_proposal_without_a_date_is_dated_today(client_for, prefecture_36, issoudun, on_dec_7):
    propose(client_for(prefecture_36))
    assert Beneficiaire.objects.get(nom="Issoudun").decisions.get().date_decision == DEC_7


def test_a_proposal_in_the_future_is_refused_and_nothing_is_created(
    client_for, prefecture_36, issoudun, on_dec_7
):
    response = propose(client_for(prefecture_36), date_proposition="2026-12-10")
    assert response.status_code == 200
    assert "Cette date est dans le futur" in html.unescape(response.content.decode())
    assert not Beneficiaire.objects.filter(nom="Issoudun").exists()


@pytest.mark.parametrize(
    "day, message",
    [
        ("2026-11-30", "ne peut pas précéder la précédente, du 01/12/2026"),
        ("2026-12-10", "dans le futur"),
    ],
)
def test_a_decision_before_the_proposal_or_in_the_future_is_refused(
    client_for, prefecture_36, issoudun, on_dec_7, day, message
):
    client = client_for(prefecture_36)
    propose(client, date_proposition="2026-12-01")
    candidat = Beneficiaire.objects.get(nom="Issoudun")
    response = decide(
        client, candidat, nouveau_statut="laureat", date_decision=day, reference="Arrêté"
    )
    assert response.status_code == 200
    assert message in html.unescape(response.content.decode())
    candidat.refresh_from_db()
    assert candidat.statut == Beneficiaire.Statut.CANDIDAT
    assert candidat.decisions.count() == 1


def test_the_model_checks_the_stored_history_too(client_for, prefecture_36, issoudun, on_dec_7):
    propose(client_for(prefecture_36), date_proposition="2026-12-01")
    candidat = Beneficiaire.objects.get(nom="Issoudun")
    for day in (date(2026, 11, 1), date(2026, 12, 8)):
        with pytest.raises(ValidationError):
            candidat.change_statut("laureat", by=None, date_decision=day, reference="Arrêté")
    candidat.refresh_from_db()
    assert candidat.statut == Beneficiaire.Statut.CANDIDAT
    assert candidat.decisions.count() == 1
