"""The sweep at two data sizes: every rule has work for each beneficiary, 2 then 8 of them.

The rules, the recording and the resolution run a fixed number of queries per rule, whatever
the number of objects; the sending adds exactly one query per e-mail or digest that goes out
(its « sent » mark, written right after it goes: the at-least-once guarantee with at most one
duplicate per killed worker, tests/rappels/test_processes.py), and nothing else per person.
"""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from actions.models import SANS_MISE_A_JOUR, FicheAction
from communes.models import Beneficiaire
from conventions.models import HORIZON_FIN_CONVENTION, Convention
from gouvernance.models import DELAI_RELEVE, Decision, Instance, Reunion, Suite
from postes.models import (
    ALERTE_VACANCE,
    HORIZON_FIN_CONTRAT,
    CofinancementAnnee,
    Financeur,
    LigneCofinancement,
    Poste,
)
from pvd.models import Role
from rappels import sweep as sweep_module
from rappels.models import Rappel, Recapitulatif
from rappels.regles import OUVERTES, REGLES, due_today
from tests.factories import user_with_role
from tests.gouvernance.conftest import a_reunion
from tests.postes.conftest import make_poste, occupe

from .conftest import set_adhesion
from .test_indicateurs import a_fiche, an_indicateur, measure

pytestmark = pytest.mark.django_db

# A day on which every rule can be due (the co-financing one only falls in the autumn).
DAY = date(2026, 10, 10)


def every_situation(beneficiaire: Beneficiaire) -> None:
    """One due item of each rule for this beneficiary on DAY, and a chef de projet."""
    cdp = user_with_role(f"cdp-{beneficiaire.pk}@test.pvd.fr", Role.Kind.CHEF_PROJET)
    cdp.roles.get().beneficiaires.set([beneficiaire])
    Convention.objects.filter(beneficiaire=beneficiaire).delete()
    set_adhesion(beneficiaire, DAY - timedelta(days=365))  # convention_cadre (12 months)
    Convention.objects.create(
        beneficiaire=beneficiaire,
        type=Convention.Type.ADHESION,
        titre="Convention d'adhésion",
        statut=Convention.Statut.SIGNEE,
        date_signature=date(2021, 6, 1),
        date_entree_vigueur=date(2021, 6, 1),
        date_fin=DAY + HORIZON_FIN_CONVENTION,
    )
    a_fiche(beneficiaire, "1.1", date_fin_prevue=DAY - timedelta(days=1))
    indicateur = an_indicateur(a_fiche(beneficiaire, "1.2"))
    measure(indicateur, DAY - timedelta(days=92))
    old = timezone.make_aware(
        timezone.datetime.combine(DAY - SANS_MISE_A_JOUR, timezone.datetime.min.time())
    )
    FicheAction.objects.filter(beneficiaire=beneficiaire).update(updated_at=old)
    make_poste(beneficiaire, etat=Poste.Etat.VACANT, vacant_depuis=DAY - ALERTE_VACANCE)
    occupation = occupe(make_poste(beneficiaire, etat=Poste.Etat.POURVU), date(2023, 9, 1))
    occupation.date_fin_contrat = DAY + HORIZON_FIN_CONTRAT
    occupation.save()
    annee = CofinancementAnnee.objects.create(
        poste=make_poste(beneficiaire, etat=Poste.Etat.POURVU), annee=DAY.year, cout_charge=50000
    )
    LigneCofinancement.objects.create(
        annee=annee, financeur=Financeur.ANCT, montant_notifie=Decimal("20000")
    )
    # One comité de projet per beneficiary (a constraint; the territories may have theirs):
    # the two instances of this test are of other types.
    late = Instance.objects.create(
        type=Instance.Type.AUTRE, nom="Comité des partenaires", beneficiaire=beneficiaire
    )
    a_reunion(late, DAY - timedelta(days=366), statut=Reunion.Statut.TENUE)
    other = Instance.objects.create(
        type=Instance.Type.COMITE_TECHNIQUE, nom="Comité technique", beneficiaire=beneficiaire
    )
    a_reunion(other, DAY - DELAI_RELEVE, statut=Reunion.Statut.TENUE)
    held = a_reunion(other, DAY - timedelta(days=60), statut=Reunion.Statut.TENUE)
    decision = Decision.objects.create(reunion=held, type="autre", texte="Relancer")
    Suite.objects.create(decision=decision, intitule="Relancer", responsable=cdp, echeance=DAY)


def measured_sweep():
    """The sweep of DAY from an empty reminders table: its queries for the rules, recording
    and resolution, then for the sending; its report."""
    Rappel.objects.all().delete()
    Recapitulatif.objects.all().delete()
    mail.outbox = []
    report = sweep_module.Report()
    with CaptureQueriesContext(connection) as rules:
        situations = list(due_today(DAY, OUVERTES))
        report.due, report.recorded = sweep_module.record(DAY, situations=situations)
        report.resolved = sweep_module.resolve(DAY, situations=situations)
    with CaptureQueriesContext(connection) as sending:
        report.emails = sweep_module.send_immediate(DAY)
        report.digests = sweep_module.send_digests(DAY)
    return len(rules), len(sending), report


def test_the_sweep_runs_the_same_queries_for_2_and_8_beneficiaries(territoires, monkeypatch):
    # Writes by batches would grow with the data: with a batch of one row, any would show.
    monkeypatch.setattr(sweep_module, "BATCH", 1)
    beneficiaires = list(Beneficiaire.objects.filter(departement__isnull=False).order_by("pk"))
    assert len(beneficiaires) >= 8
    for beneficiaire in beneficiaires[:2]:
        every_situation(beneficiaire)
    small_rules, small_sending, small = measured_sweep()
    by_rule_small = set(Rappel.objects.values_list("regle", flat=True))

    for beneficiaire in beneficiaires[2:8]:
        every_situation(beneficiaire)
    large_rules, large_sending, large = measured_sweep()

    print(
        f"rules {small_rules}/{large_rules} sending {small_sending}/{large_sending} {small} {large}"
    )
    # Every rule had work at both sizes, four times as much at the larger one.
    assert by_rule_small == {rule.__name__ for rule in REGLES}
    assert large.due == 4 * small.due
    assert large.recorded > 3 * small.recorded
    assert len(mail.outbox) == large.emails + large.digests > 0
    # The rules, the recording and the resolution: the same queries at both sizes.
    assert large_rules == small_rules
    # The sending: the same, plus one « sent » mark per e-mail or digest gone out.
    assert large_sending - large.emails - large.digests == (
        small_sending - small.emails - small.digests
    )


def test_a_record_a_rule_cannot_read_is_logged_and_skipped_not_the_rule(
    ussel_la_courtine, monkeypatch, caplog
):
    from rappels import regles

    a_fiche(ussel_la_courtine, "1.1", date_fin_prevue=DAY - timedelta(days=1))
    a_fiche(ussel_la_courtine, "1.2", date_fin_prevue=DAY - timedelta(days=1))
    real_short = regles.short

    def unreadable(text: str) -> str:
        if text == "Fiche 1.1":
            raise ValueError("valeur illisible")
        return real_short(text)

    monkeypatch.setattr(regles, "short", unreadable)
    dues = list(regles.fiche_en_retard(DAY))

    assert [d.message.split("« ")[1].split(" »")[0] for d in dues] == ["Fiche 1.2"]
    assert "Reminder rule fiche_en_retard skipped the record" in caplog.text
