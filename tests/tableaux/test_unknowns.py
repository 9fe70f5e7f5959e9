"""A figure says what it cannot count: fiches without a planned end beside « en retard »."""

import html
import re
from datetime import date

import pytest
from django.urls import reverse
from django.utils import timezone

from actions.models import FicheAction
from communes.models import Beneficiaire
from conventions.models import Convention
from postes.models import Poste
from tableaux import lecture
from tableaux.bilan import render_bilan
from tests.actions.test_plan_readmodel import make_fiche
from tests.postes.conftest import make_poste, occupe
from tests.tableaux.test_bilan import pdf_text

pytestmark = pytest.mark.django_db

M = FicheAction.Maturite


@pytest.fixture
def fiches(ussel_la_courtine):
    make_fiche(ussel_la_courtine, "1.1", date_fin_prevue=date(2020, 1, 1))  # late
    make_fiche(ussel_la_courtine, "1.2")  # no planned end: lateness unknown
    make_fiche(ussel_la_courtine, "1.3", maturite=M.LIVREE)  # delivered: nothing to say
    make_fiche(ussel_la_courtine, "1.4", maturite=M.ENGAGEE)  # no planned end either
    return ussel_la_courtine


def test_national_and_departement_pages_count_fiches_without_planned_end(
    client_for, national, fiches
):
    client = client_for(national)
    for url in (reverse("portail:home"), reverse("tableaux:departement", args=["19"])):
        page = html.unescape(client.get(url).content.decode())
        assert "dont 1 en retard et 2 sans date de fin prévue (retard incalculable)" in page


def test_the_beneficiary_page_says_how_many_cannot_be_judged(client_for, cdp_ussel, fiches):
    page = html.unescape(
        client_for(cdp_ussel).get(reverse("tableaux:ville", args=[fiches.pk])).content.decode()
    )
    assert "Fiches en retard (1)" in page
    assert (
        "Et 2 fiches en cours sans date de fin prévue : leur retard ne peut pas être calculé."
        in page
    )


def test_a_convention_cadre_signed_on_an_unknown_day_is_counted_apart(
    client_for, national, ussel_la_courtine
):
    Convention.objects.create(
        beneficiaire=ussel_la_courtine,
        type=Convention.Type.CADRE,
        titre="Convention-cadre",
        statut=Convention.Statut.SIGNEE,
        source=Convention.Source.IMPORT_ORT,
    )
    page = html.unescape(client_for(national).get(reverse("portail:home")).content.decode())
    assert re.search(
        r"conventions?-cadres? signées? \(dont 1 sans date de signature connue\)", page
    )


def test_the_bilan_says_what_it_cannot_compute(fiches):
    text = pdf_text(render_bilan(fiches, timezone.localdate()))
    assert "Date d’adhésion inconnue : l’échéance de la convention-cadre" in text
    assert "Et 2 fiches en cours sans date de fin prévue" in text


def test_posts_without_the_dates_reminders_need_are_counted_apart(
    client_for, national, ussel_la_courtine, le_blanc
):
    make_poste(le_blanc, etat=Poste.Etat.VACANT)  # vacant since an unknown day
    poste = make_poste(ussel_la_courtine, etat=Poste.Etat.POURVU)
    occupe(poste, date(2021, 9, 1), fin=date(2023, 8, 31), prenom="Ancien")
    occupe(poste, date(2023, 9, 1))  # a contrat de projet with no planned end
    page = html.unescape(client_for(national).get(reverse("portail:home")).content.decode())
    assert re.search(r"\d postes? vacants? \(dont 1 sans date de vacance connue\)", page)
    assert "et 1 à durée déterminée sans date de fin connue" in page
    figures = lecture.chiffres(Beneficiaire.objects.all(), timezone.localdate())
    assert (figures.postes_pourvus, figures.postes_vacants) == (1, 1)  # each post once
