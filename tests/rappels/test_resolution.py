"""Reminders resolve themselves: one test per rule, situation → reminder → resolution → gone
from the notification centre, the unread count and the next digest, and no e-mail."""

from datetime import date, time, timedelta
from decimal import Decimal

import pytest
from dateutil.relativedelta import relativedelta
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from actions.models import FicheAction
from conventions.models import Convention
from gouvernance.models import Decision, Reunion, Suite
from postes.models import CofinancementAnnee, Financeur, LigneCofinancement, Poste
from rappels import inbox
from rappels.models import Frequence, Rappel
from rappels.preferences import set_frequence
from rappels.regles import REGLES
from rappels.sweep import record, sweep
from tests.gouvernance.conftest import a_comite, a_reunion
from tests.postes.conftest import make_poste, occupe

from .conftest import TODAY, set_adhesion
from .test_indicateurs import a_fiche, an_indicateur, measure

pytestmark = pytest.mark.django_db


@pytest.fixture
def on(time_machine, django_capture_on_commit_callbacks):
    """Resolve as a request would on ``day``: the saves' commit callbacks run."""

    def at(day: date):
        time_machine.move_to(timezone.make_aware(timezone.datetime.combine(day, time(9))))
        return django_capture_on_commit_callbacks(execute=True)

    return at


def situation_recorded(regle: str, recipient, day: date = TODAY) -> Rappel:
    """The sweep records the reminder; the recipient's e-mails wait for the weekly digest."""
    for categorie in ("conventions", "plans", "postes", "gouvernance"):
        set_frequence(recipient, categorie, Frequence.HEBDOMADAIRE)
    record(day)
    rappel = Rappel.objects.get(regle=regle, destinataire=recipient)
    assert rappel.resolu_le is None
    assert inbox.unread_count(recipient) >= 1
    mail.outbox.clear()
    return rappel


def assert_gone(rappel: Rappel, client_for, day: date = TODAY) -> None:
    rappel.refresh_from_db()
    assert rappel.resolu_le is not None
    user = rappel.destinataire
    assert not Rappel.objects.for_user(user).non_lus().filter(regle=rappel.regle).exists()
    page = client_for(user).get(reverse("rappels:list")).content.decode()
    assert rappel.message.split(" : ")[1][:40] not in page
    # The next sweeps (the same day, the next week) carry it in no e-mail, nor reopen it.
    sweep(day)
    sweep(day + timedelta(days=7))
    rappel.refresh_from_db()
    assert rappel.resolu_le is not None and rappel.recapitulatif_id is None
    assert not any(rappel.message[:60] in m.body for m in mail.outbox)


def test_convention_cadre_signed(ussel_at_12_months, cdp_ussel, client_for, on):
    rappel = situation_recorded("convention_cadre", cdp_ussel)
    with on(TODAY):
        Convention.objects.create(
            beneficiaire=ussel_at_12_months,
            type=Convention.Type.CADRE,
            titre="Convention-cadre",
            statut=Convention.Statut.SIGNEE,
            date_signature=TODAY - timedelta(days=2),
        )
    assert_gone(rappel, client_for)


def test_convention_cadre_moved_adhesion_replaces_the_reminder(
    ussel_at_12_months, cdp_ussel, client_for, on
):
    """The adhésion was two months earlier: one reminder, at the new date, not two."""
    rappel = situation_recorded("convention_cadre", cdp_ussel)
    with on(TODAY):
        set_adhesion(ussel_at_12_months, TODAY - relativedelta(months=14))
        for membre in ussel_at_12_months.membres.all():
            membre.save()
    sweep(TODAY)
    rappel.refresh_from_db()
    assert rappel.resolu_le is not None
    ouverts = Rappel.objects.filter(regle="convention_cadre", destinataire=cdp_ussel).ouverts()
    assert [r.echeance for r in ouverts] == [TODAY - relativedelta(months=2)]
    assert inbox.unread_count(cdp_ussel) == 1


def test_fin_de_convention_terminated(ussel_la_courtine, cdp_ussel, client_for, on):
    convention = Convention.objects.create(
        beneficiaire=ussel_la_courtine,
        type=Convention.Type.ADHESION,
        titre="Convention d'adhésion",
        statut=Convention.Statut.SIGNEE,
        date_signature=date(2021, 6, 1),
        date_entree_vigueur=date(2021, 6, 1),
        date_fin=TODAY + relativedelta(months=6),
    )
    rappel = situation_recorded("fin_de_convention", cdp_ussel)
    with on(TODAY):
        convention.resilier(on=TODAY, motif="Remplacée par la convention-cadre.")
    assert_gone(rappel, client_for)


def test_fiche_en_retard_achieved(ussel_la_courtine, cdp_ussel, client_for, on):
    fiche = a_fiche(ussel_la_courtine, date_fin_prevue=TODAY - timedelta(days=1))
    rappel = situation_recorded("fiche_en_retard", cdp_ussel)
    with on(TODAY):
        fiche.avancement = FicheAction.Avancement.ACHEVEE
        fiche.save()
    assert_gone(rappel, client_for)


def test_fiche_en_retard_moved_end_replaces_the_reminder(ussel_la_courtine, cdp_ussel, on):
    fiche = a_fiche(ussel_la_courtine, date_fin_prevue=TODAY - timedelta(days=1))
    rappel = situation_recorded("fiche_en_retard", cdp_ussel)
    with on(TODAY):
        fiche.date_fin_prevue = TODAY - timedelta(days=5)
        fiche.save()
    sweep(TODAY)
    rappel.refresh_from_db()
    assert rappel.resolu_le is not None
    ouverts = Rappel.objects.filter(regle="fiche_en_retard", destinataire=cdp_ussel).ouverts()
    assert [r.echeance for r in ouverts] == [TODAY - timedelta(days=4)]


def test_plan_sans_mise_a_jour_fiche_saved(ussel_la_courtine, cdp_ussel, client_for, on):
    fiche = a_fiche(ussel_la_courtine)
    long_ago = timezone.make_aware(timezone.datetime(2026, 8, 29, 12))
    FicheAction.objects.filter(pk=fiche.pk).update(updated_at=long_ago)
    rappel = situation_recorded("plan_sans_mise_a_jour", cdp_ussel)
    with on(TODAY):
        fiche.refresh_from_db()
        fiche.titre = "Fiche mise à jour"
        fiche.save()
    assert_gone(rappel, client_for)


def test_mesure_indicateur_measure_entered_on_the_page(
    ussel_la_courtine, cdp_ussel, client_for, on
):
    fiche = a_fiche(ussel_la_courtine)
    indicateur = an_indicateur(fiche)
    measure(indicateur, TODAY - relativedelta(months=3))
    rappel = situation_recorded("mesure_indicateur", cdp_ussel)
    with on(TODAY):
        response = client_for(cdp_ussel).post(
            reverse("actions:mesure-create", args=[fiche.pk]),
            {"mesure-indicateur": indicateur.pk, "mesure-date": TODAY, "mesure-valeur": "9"},
        )
    assert response.status_code == 302
    assert inbox.unread_count(cdp_ussel) == 0
    assert_gone(rappel, client_for)


def test_poste_vacant_filled(ussel_la_courtine, elu_ussel, client_for, on):
    poste = make_poste(
        ussel_la_courtine, etat=Poste.Etat.VACANT, vacant_depuis=TODAY - relativedelta(months=2)
    )
    rappel = situation_recorded("poste_vacant", elu_ussel)
    with on(TODAY):
        occupe(poste, TODAY)
        poste.change_etat(Poste.Etat.POURVU, by=None, date_effet=TODAY)
    assert_gone(rappel, client_for)


def test_fin_de_contrat_renewed(ussel_la_courtine, elu_ussel, client_for, on):
    poste = make_poste(ussel_la_courtine, etat=Poste.Etat.POURVU)
    occupation = occupe(poste, date(2023, 9, 1))
    occupation.date_fin_contrat = TODAY + timedelta(days=90)
    occupation.save()
    rappel = situation_recorded("fin_de_contrat", elu_ussel)
    with on(TODAY):
        occupation.date_fin_contrat = TODAY + relativedelta(years=3)
        occupation.save()
    assert_gone(rappel, client_for)


def test_fin_de_cofinancement_next_year_notified(ussel_la_courtine, elu_ussel, client_for, on):
    day = date(2026, 10, 10)
    poste = make_poste(ussel_la_courtine, etat=Poste.Etat.POURVU)

    def notified(annee: int) -> None:
        year = CofinancementAnnee.objects.create(poste=poste, annee=annee, cout_charge=50000)
        LigneCofinancement.objects.create(
            annee=year, financeur=Financeur.ANCT, montant_notifie=Decimal("20000")
        )

    notified(2026)
    rappel = situation_recorded("fin_de_cofinancement", elu_ussel, day)
    with on(day):
        notified(2027)
    assert_gone(rappel, client_for, day)


def test_instance_en_retard_meeting_held(ussel_la_courtine, cdp_ussel, client_for, on):
    comite = a_comite(ussel_la_courtine)
    a_reunion(comite, TODAY - relativedelta(months=12), statut=Reunion.Statut.TENUE)
    rappel = situation_recorded("instance_en_retard", cdp_ussel)
    assert "une réunion était attendue le 30 novembre 2026" in rappel.message
    reunion = a_reunion(comite, TODAY - timedelta(days=1))
    with on(TODAY):
        client_for(cdp_ussel).post(
            reverse("gouvernance:statut", args=[reunion.pk]), {"statut": "tenue"}
        )
    assert_gone(rappel, client_for)


def test_releve_non_publie_published(ussel_la_courtine, cdp_ussel, client_for, on):
    comite = a_comite(ussel_la_courtine)
    reunion = a_reunion(comite, TODAY - timedelta(days=15), statut=Reunion.Statut.TENUE)
    rappel = situation_recorded("releve_non_publie", cdp_ussel)
    with on(TODAY):
        client_for(cdp_ussel).post(reverse("gouvernance:releve-publier", args=[reunion.pk]))
    assert reunion.releves.get().statut == "pret"
    assert_gone(rappel, client_for)


def test_suite_a_donner_marked_done(ussel_la_courtine, cdp_ussel, elu_ussel, client_for, on):
    comite = a_comite(ussel_la_courtine)
    reunion = a_reunion(comite, TODAY - timedelta(days=60), statut=Reunion.Statut.TENUE)
    decision = Decision.objects.create(reunion=reunion, type="autre", texte="Relancer")
    suite = Suite.objects.create(
        decision=decision, intitule="Relancer la DDT", responsable=elu_ussel, echeance=TODAY
    )
    # The person responsible (an élu, outside the rule's audiences) and the chef de projet.
    rappel = situation_recorded("suite_a_donner", elu_ussel)
    assert Rappel.objects.filter(regle="suite_a_donner", destinataire=cdp_ussel).exists()
    with on(TODAY):
        client_for(elu_ussel).post(reverse("gouvernance:suite-faite", args=[suite.pk]))
    assert_gone(rappel, client_for)


RESOLUTION_TESTS = {
    "convention_cadre": test_convention_cadre_signed,
    "fin_de_convention": test_fin_de_convention_terminated,
    "fiche_en_retard": test_fiche_en_retard_achieved,
    "plan_sans_mise_a_jour": test_plan_sans_mise_a_jour_fiche_saved,
    "mesure_indicateur": test_mesure_indicateur_measure_entered_on_the_page,
    "poste_vacant": test_poste_vacant_filled,
    "fin_de_contrat": test_fin_de_contrat_renewed,
    "fin_de_cofinancement": test_fin_de_cofinancement_next_year_notified,
    "instance_en_retard": test_instance_en_retard_meeting_held,
    "releve_non_publie": test_releve_non_publie_published,
    "suite_a_donner": test_suite_a_donner_marked_done,
}


def test_every_rule_states_when_it_is_over_and_has_its_test():
    assert set(RESOLUTION_TESTS) == {regle.__name__ for regle in REGLES}
    assert all("Over once" in regle.__doc__ for regle in REGLES)


def test_a_transaction_of_many_saves_resolves_once_after_its_commit(
    ussel_la_courtine, monkeypatch, django_capture_on_commit_callbacks
):
    calls = []
    monkeypatch.setattr(
        "rappels.sweep.resolve", lambda day, beneficiaires: calls.append(beneficiaires)
    )
    with django_capture_on_commit_callbacks(execute=True):
        for reference in ("1.1", "1.2", "1.3"):
            a_fiche(ussel_la_courtine, reference)
        assert calls == []  # nothing before the commit
    assert calls == [{ussel_la_courtine.pk}]
