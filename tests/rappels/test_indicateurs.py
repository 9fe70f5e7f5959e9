"""The indicator rule: a measure is due one period after the last one, for the chefs de projet."""

from datetime import date, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from actions.models import FicheAction, Indicateur, Mesure, ensure_axes, mesure_base
from pvd.models import Role
from rappels.models import Rappel
from rappels.regles import mesure_indicateur
from rappels.sweep import record, sweep
from tests.actions.test_plan import text
from tests.factories import user_with_role

from .conftest import TODAY

pytestmark = pytest.mark.django_db


def a_fiche(beneficiaire, reference="1.1", **fields) -> FicheAction:
    ensure_axes(beneficiaire)
    return FicheAction.objects.create(
        beneficiaire=beneficiaire,
        axe=beneficiaire.axes.get(numero=1),
        reference=reference,
        titre=f"Fiche {reference}",
        **fields,
    )


LONG_AGO = TODAY - relativedelta(years=2)


def an_indicateur(fiche, frequence="trimestrielle", cree_le=LONG_AGO):
    indicateur = Indicateur.objects.create(
        fiche=fiche,
        type="resultat",
        libelle="Vacance commerciale",
        unite="%",
        frequence=frequence,
    )
    created = timezone.make_aware(timezone.datetime.combine(cree_le, timezone.datetime.min.time()))
    Indicateur.objects.filter(pk=indicateur.pk).update(created_at=created)
    indicateur.refresh_from_db()
    return indicateur


def measure(indicateur, day: date) -> None:
    Mesure.objects.create(indicateur=indicateur, date=day, valeur=12)


def rows(indicateur, recipient=None):
    found = Rappel.objects.filter(regle="mesure_indicateur", objet=f"indicateur:{indicateur.pk}")
    return found.filter(destinataire=recipient) if recipient else found


@pytest.fixture
def cdp_le_blanc(le_blanc):
    user = user_with_role("cdp-le-blanc@test.pvd.fr", Role.Kind.CHEF_PROJET)
    user.roles.get().beneficiaires.set([le_blanc])
    return user


def test_the_base_is_the_last_measure_else_the_later_of_start_and_creation():
    assert mesure_base(date(2026, 5, 2), date(2026, 9, 1), date(2026, 1, 1)) == date(2026, 5, 2)
    assert mesure_base(None, date(2026, 9, 1), date(2026, 1, 1)) == date(2026, 9, 1)
    assert mesure_base(None, date(2025, 9, 1), date(2026, 1, 1)) == date(2026, 1, 1)
    assert mesure_base(None, None, date(2026, 1, 1)) == date(2026, 1, 1)


def test_a_measure_is_due_one_period_after_the_last_one(ussel_la_courtine, cdp_ussel):
    indicateur = an_indicateur(a_fiche(ussel_la_courtine))
    measure(indicateur, TODAY - relativedelta(months=3))
    measure(indicateur, TODAY - relativedelta(months=9))  # an older one does not count

    (due,) = mesure_indicateur(TODAY)
    assert (due.objet, due.echeance, due.audiences) == (
        f"indicateur:{indicateur.pk}",
        TODAY,
        ("chef_projet",),
    )
    assert due.message == (
        f"{ussel_la_courtine.nom} : une mesure trimestrielle de l'indicateur "
        "« Vacance commerciale » (fiche 1.1) est attendue depuis le 30 novembre 2026."
    )
    assert due.lien == reverse("actions:indicateurs", args=[indicateur.fiche_id])
    # The day before, nothing was due yet.
    assert not list(mesure_indicateur(TODAY - timedelta(days=1)))


@pytest.mark.parametrize(
    "frequence,months", [("mensuelle", 1), ("semestrielle", 6), ("annuelle", 12)]
)
def test_each_frequency_gives_its_period(ussel_la_courtine, cdp_ussel, frequence, months):
    indicateur = an_indicateur(a_fiche(ussel_la_courtine), frequence)
    measure(indicateur, TODAY - relativedelta(months=months))
    assert [d.echeance for d in mesure_indicateur(TODAY)] == [TODAY]
    assert not list(mesure_indicateur(TODAY - timedelta(days=1)))


def test_without_measure_the_period_runs_from_the_start_of_the_action(ussel_la_courtine):
    start = TODAY - relativedelta(months=6)
    fiche = a_fiche(ussel_la_courtine, date_debut_prevue=TODAY - relativedelta(years=1))
    fiche.date_debut_reelle = start  # the real start wins over the planned one
    fiche.save()
    an_indicateur(fiche, "semestrielle", cree_le=TODAY - relativedelta(years=2))
    assert [d.echeance for d in mesure_indicateur(TODAY)] == [TODAY]


def test_without_measure_nor_start_the_period_runs_from_the_creation(ussel_la_courtine):
    an_indicateur(a_fiche(ussel_la_courtine), "mensuelle", cree_le=TODAY - relativedelta(months=1))
    assert [d.echeance for d in mesure_indicateur(TODAY)] == [TODAY]
    # Created today on an action started long ago: nothing is asked at once.
    Indicateur.objects.update(created_at=timezone.now())
    assert not list(mesure_indicateur(TODAY))


def test_without_frequency_or_on_an_abandoned_fiche_nothing_is_due(ussel_la_courtine):
    fiche = a_fiche(ussel_la_courtine)
    sans = an_indicateur(fiche, frequence="")
    measure(sans, TODAY - relativedelta(years=1))
    abandonnee = a_fiche(ussel_la_courtine, "1.2", maturite=FicheAction.Maturite.ABANDONNEE)
    measure(an_indicateur(abandonnee), TODAY - relativedelta(months=3))
    assert not list(mesure_indicateur(TODAY))


def test_only_the_chefs_de_projet_of_the_beneficiary_receive_it(
    ussel_la_courtine, le_blanc, cdp_ussel, cdp_le_blanc, elu_ussel, elu_epci, prefecture_19
):
    indicateur = an_indicateur(a_fiche(ussel_la_courtine))
    measure(indicateur, TODAY - relativedelta(months=3))

    sweep(TODAY)

    assert [r.destinataire for r in rows(indicateur)] == [cdp_ussel]
    # Le Blanc's own indicator goes to its chef de projet, not to Ussel's.
    other = an_indicateur(a_fiche(le_blanc))
    measure(other, TODAY - relativedelta(months=3))
    sweep(TODAY)
    assert [r.destinataire for r in rows(other)] == [cdp_le_blanc]


def test_a_new_measure_moves_the_next_due_date_and_stops_the_current_one(
    ussel_la_courtine, cdp_ussel
):
    indicateur = an_indicateur(a_fiche(ussel_la_courtine))
    measure(indicateur, TODAY - relativedelta(months=3))
    sweep(TODAY)
    assert rows(indicateur, cdp_ussel).count() == 1

    measure(indicateur, TODAY + timedelta(days=5))
    for day in (10, 40, 70):  # no longer due: the next measure is expected in three months
        sweep(TODAY + timedelta(days=day))
    assert [r.echeance for r in rows(indicateur, cdp_ussel)] == [TODAY]

    sweep(TODAY + timedelta(days=5) + relativedelta(months=3))
    assert sorted(r.echeance for r in rows(indicateur, cdp_ussel)) == [
        TODAY,
        TODAY + timedelta(days=5) + relativedelta(months=3),
    ]


def test_an_unanswered_reminder_comes_back_each_period_and_is_never_resent(
    ussel_la_courtine, cdp_ussel
):
    indicateur = an_indicateur(a_fiche(ussel_la_courtine), "mensuelle")
    measure(indicateur, TODAY - relativedelta(months=1))
    for day in range(0, 40):
        sweep(TODAY + timedelta(days=day))

    assert [r.echeance for r in rows(indicateur, cdp_ussel).order_by("echeance")] == [
        TODAY,
        TODAY + relativedelta(months=1),
    ]
    # The chef de projet reads fiches in a daily digest: each due date is in one digest.
    digests = [m.body for m in mail.outbox if m.to == [cdp_ussel.email]]
    assert sum("Vacance commerciale" in body for body in digests) == 2


def test_the_rule_is_one_query_however_many_indicators(ussel_la_courtine, cdp_ussel):
    def add(count: int, start: int) -> None:
        for i in range(count):
            indicateur = an_indicateur(a_fiche(ussel_la_courtine, f"9.{start + i}"))
            measure(indicateur, TODAY - relativedelta(months=3))

    add(2, 0)
    with CaptureQueriesContext(connection) as small:
        assert len(list(mesure_indicateur(TODAY))) == 2
        _, recorded_small = record(TODAY)
    add(20, 100)
    with CaptureQueriesContext(connection) as large:
        assert len(list(mesure_indicateur(TODAY))) == 22
        _, recorded_large = record(TODAY)

    assert len(small) == len(large)
    assert (recorded_small, recorded_large) == (2, 20)


# The frequency on the portal's pages --------------------------------------------------------------


def indicateur_post(indicateur, frequence: str) -> dict:
    return {
        "indicateurs-TOTAL_FORMS": "1",
        "indicateurs-INITIAL_FORMS": "1",
        "indicateurs-MIN_NUM_FORMS": "0",
        "indicateurs-MAX_NUM_FORMS": "1000",
        "indicateurs-0-id": indicateur.pk,
        "indicateurs-0-fiche": indicateur.fiche_id,
        "indicateurs-0-type": indicateur.type,
        "indicateurs-0-libelle": indicateur.libelle,
        "indicateurs-0-unite": indicateur.unite,
        "indicateurs-0-frequence": frequence,
    }


def test_the_chef_de_projet_sets_the_frequency_and_the_fiche_shows_the_next_measure(
    client_for, ussel_la_courtine, cdp_ussel, today
):
    indicateur = an_indicateur(a_fiche(ussel_la_courtine), frequence="")
    measure(indicateur, today - relativedelta(months=1))
    client = client_for(cdp_ussel)
    url = reverse("actions:indicateurs", args=[indicateur.fiche_id])

    assert client.post(url, indicateur_post(indicateur, "trimestrielle")).status_code == 302

    indicateur.refresh_from_db()
    assert indicateur.frequence == "trimestrielle"
    expected = (today + relativedelta(months=2)).strftime("%d/%m/%Y")
    page = text(client.get(reverse("actions:fiche", args=[indicateur.fiche_id])))
    assert f"Trimestrielle prochaine mesure attendue le {expected}" in page
    assert f"Mesure trimestrielle : la prochaine est attendue le {expected}." in text(
        client.get(url)
    )


def test_an_unknown_frequency_is_refused_in_french_and_changes_nothing(
    client_for, ussel_la_courtine, cdp_ussel
):
    indicateur = an_indicateur(a_fiche(ussel_la_courtine), frequence="annuelle")
    response = client_for(cdp_ussel).post(
        reverse("actions:indicateurs", args=[indicateur.fiche_id]),
        indicateur_post(indicateur, "hebdomadaire"),
    )
    assert response.status_code == 200
    assert "Sélectionnez un choix valide" in text(response)
    indicateur.refresh_from_db()
    assert indicateur.frequence == "annuelle"


def test_an_elu_cannot_change_the_frequency_and_another_territory_gets_404(
    client_for, ussel_la_courtine, le_blanc, elu_ussel, cdp_le_blanc
):
    indicateur = an_indicateur(a_fiche(ussel_la_courtine), frequence="annuelle")
    url = reverse("actions:indicateurs", args=[indicateur.fiche_id])
    data = indicateur_post(indicateur, "mensuelle")
    assert client_for(elu_ussel).post(url, data).status_code == 403
    assert client_for(cdp_le_blanc).post(url, data).status_code == 404
    indicateur.refresh_from_db()
    assert indicateur.frequence == "annuelle"


def test_a_very_long_name_and_label_are_shortened_not_fatal_to_the_sweep(
    ussel_la_courtine, cdp_ussel
):
    ussel_la_courtine.nom = "Commune nouvelle " * 14  # 238 characters
    ussel_la_courtine.save()
    indicateur = an_indicateur(a_fiche(ussel_la_courtine))
    Indicateur.objects.filter(pk=indicateur.pk).update(libelle="Surface " * 37)
    measure(indicateur, TODAY - relativedelta(months=3))

    sweep(TODAY)

    (row,) = rows(indicateur, cdp_ussel)
    assert len(row.message) == 300 and row.message.endswith("…")
