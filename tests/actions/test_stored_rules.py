"""Issue 20: a fiche's financing against its cost, the same rule on the web and in the Excel
import (refused: never financed beyond its cost), checked on the stored lines; stored dates
outside the bounds do not break the plan page."""

from datetime import date

import pytest
from django.urls import reverse

from actions.models import FicheAction, LigneFinancement, ensure_axes
from tests.actions.test_excel import upload, workbook_bytes
from tests.actions.test_fiches import create_url, form_data, new_fiche_data, update_url
from tests.actions.test_plan import fiche, text

pytestmark = pytest.mark.django_db


@pytest.fixture
def axes_ussel(ussel_la_courtine):
    ensure_axes(ussel_la_courtine)
    return ussel_la_courtine


@pytest.fixture
def fiche_ussel(axes_ussel):
    """100 000 €, DSIL 40 000 € and Région 20 000 €."""
    return fiche(
        axes_ussel, 4, "4.1", 100000, [("DSIL", 40000, "notifie"), ("Région", 20000, "prevu")]
    )


def test_a_new_fiche_financed_beyond_its_cost_is_refused(client_for, cdp_ussel, axes_ussel):
    data = new_fiche_data(
        axes_ussel, [("DSIL", "200000", "sollicite"), ("Région", "150000", "prevu")]
    )
    response = client_for(cdp_ussel).post(create_url(axes_ussel), data)
    assert response.status_code == 200
    assert "Le plan de financement (350 000 €) dépasse le coût total (300 000 €)" in text(response)
    assert not FicheAction.objects.exists()
    assert not LigneFinancement.objects.exists()


def test_lines_left_out_of_the_form_count_against_the_cost(client_for, cdp_ussel, fiche_ussel):
    """The fiche costs 100 000 € with 60 000 € of stored lines: posting the fiche without them
    (INITIAL_FORMS=0) and a new 50 000 € line adds up to 110 000 € once stored."""
    client = client_for(cdp_ussel)
    data = form_data(client.get(update_url(fiche_ussel)))
    data = {k: v for k, v in data.items() if not k.startswith("financements-")}
    data |= {
        "financements-TOTAL_FORMS": "1",
        "financements-INITIAL_FORMS": "0",
        "financements-MIN_NUM_FORMS": "0",
        "financements-MAX_NUM_FORMS": "1000",
        "financements-0-financeur": LigneFinancement.objects.first().financeur_id,
        "financements-0-montant": "50000",
        "financements-0-statut": "prevu",
    }
    response = client.post(update_url(fiche_ussel), data)
    assert response.status_code == 200
    assert "Le plan de financement (110 000 €) dépasse le coût total (100 000 €)" in text(response)
    assert fiche_ussel.financements.count() == 2
    fiche_ussel.refresh_from_db()
    assert fiche_ussel.version == 1


def test_the_import_refuses_the_same_fiche(client_for, cdp_ussel, axes_ussel):
    fiches = [{"Référence": "1.1", "Titre": "Halle", "Axe": 1, "Coût total HT": 300000}]
    financements = [
        {"Référence de la fiche": "1.1", "Financeur": "DSIL", "Montant": 200000},
        {"Référence de la fiche": "1.1", "Financeur": "Région", "Montant": 150000},
    ]
    content = workbook_bytes(axes_ussel, fiches, financements)
    page = text(upload(client_for(cdp_ussel), axes_ussel, content))
    assert "le plan de financement (350 000 €) dépasse le coût (300 000 €)" in page
    assert not FicheAction.objects.exists()


@pytest.mark.parametrize("who", ["cdp_ussel", "elu_ussel", "national"])
def test_a_fiche_stored_ending_in_9999_does_not_break_the_plan(
    request, client_for, fiche_ussel, who
):
    """Stored before the bounds: the plan page and the fiche page still answer."""
    FicheAction.objects.filter(pk=fiche_ussel.pk).update(
        date_debut_prevue=date(1900, 1, 1), date_fin_prevue=date(9999, 12, 31)
    )
    client = client_for(request.getfixturevalue(who))
    plan = client.get(reverse("actions:plan", args=[fiche_ussel.beneficiaire_id]))
    assert plan.status_code == 200
    assert "31/12/9999" in text(plan)
    assert client.get(reverse("actions:fiche", args=[fiche_ussel.pk])).status_code == 200


def test_a_fiche_ending_in_9999_is_refused_by_the_form(client_for, cdp_ussel, axes_ussel):
    data = new_fiche_data(axes_ussel, date_fin_prevue="9999-12-31")
    page = text(client_for(cdp_ussel).post(create_url(axes_ussel), data))
    assert "Indiquez une date entre 1950 et 2100" in page
    assert not FicheAction.objects.exists()


# Issue 20, item 3: one object per create form ------------------------------------------------


def jeton(client, url: str, form: str = "form") -> str:
    return str(client.get(url).context[form].initial["jeton_envoi"])


def test_a_double_click_on_a_progress_note_saves_one(client_for, cdp_ussel, fiche_ussel):
    from actions.models import PointAvancement

    client = client_for(cdp_ussel)
    url = reverse("actions:point-create", args=[fiche_ussel.pk])
    data = {
        "date": "2025-03-01",
        "texte": "Consultation lancée.",
        "jeton_envoi": jeton(client, url),
    }
    assert client.post(url, data).status_code == 302
    assert "Ce formulaire avait déjà été envoyé" in text(client.post(url, data))
    assert PointAvancement.objects.filter(fiche=fiche_ussel).count() == 1


def test_a_double_click_on_a_measure_saves_one(client_for, cdp_ussel, fiche_ussel):
    from actions.models import Indicateur, Mesure

    indicateur = Indicateur.objects.create(
        fiche=fiche_ussel, type="realisation", libelle="Logements", unite="logements"
    )
    client = client_for(cdp_ussel)
    page = reverse("actions:indicateurs", args=[fiche_ussel.pk])
    url = reverse("actions:mesure-create", args=[fiche_ussel.pk])
    data = {
        "mesure-indicateur": indicateur.pk,
        "mesure-date": "2025-03-01",
        "mesure-valeur": "12",
        "mesure-jeton_envoi": jeton(client, page, "mesure_form"),
    }
    assert client.post(url, data).status_code == 302
    assert "Ce formulaire avait déjà été envoyé" in text(client.post(url, data))
    assert Mesure.objects.filter(indicateur=indicateur).count() == 1


def test_a_double_click_on_a_new_fiche_saves_one(client_for, cdp_ussel, axes_ussel):
    client = client_for(cdp_ussel)
    url = create_url(axes_ussel)
    data = new_fiche_data(axes_ussel, jeton_envoi=jeton(client, url))
    assert client.post(url, data).status_code == 302
    assert "Ce formulaire avait déjà été envoyé" in text(client.post(url, data))
    assert FicheAction.objects.count() == 1
