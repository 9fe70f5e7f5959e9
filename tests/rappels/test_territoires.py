"""Issue 23: the instances of a département or a région (CLCT, comité des financeurs) have no
beneficiary; their reminders are recorded on the département or the région and reach the
préfecture that keeps them, and resolve at once when the meeting is held, the relevé
published, the follow-up done."""

from datetime import time, timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from gouvernance.models import Decision, Instance, Membre, Reunion, Suite
from rappels.models import Frequence, Rappel
from rappels.preferences import set_frequence
from rappels.regles import instance_en_retard
from rappels.sweep import record, sweep
from tests.gouvernance.conftest import a_reunion

from .conftest import TODAY
from .test_resolution import assert_gone, on, situation_recorded  # noqa: F401

pytestmark = pytest.mark.django_db


@pytest.fixture
def clct(territoires) -> Instance:
    return Instance.objects.create(
        type=Instance.Type.CLCT,
        nom="Comité local de cohésion territoriale de l'Indre",
        departement_id="36",
        reunions_par_an=2,
    )


def test_the_indre_clct_due_reaches_the_indre_prefecture_and_resolves_when_held(
    clct,
    prefecture_36,
    prefecture_19,
    cdp_ussel,
    client_for,
    on,  # noqa: F811
):
    a_reunion(clct, TODAY - relativedelta(months=6) - timedelta(days=10), statut="tenue")
    rappel = situation_recorded("instance_en_retard", prefecture_36)
    assert rappel.departement_id == "36" and rappel.beneficiaire_id is None
    assert rappel.message.startswith("Indre : « Comité local de cohésion territoriale")
    assert rappel.lien == reverse("gouvernance:instance", args=[clct.pk])
    # Nobody else: not the other préfecture, not a chef de projet of the Corrèze.
    assert set(Rappel.objects.values_list("destinataire", flat=True)) == {prefecture_36.pk}
    page = client_for(prefecture_36).get(reverse("rappels:list")).content.decode()
    assert "ne s&#x27;est pas réuni depuis le" in page

    reunion = a_reunion(clct, TODAY - timedelta(days=1))
    with on(TODAY):
        response = client_for(prefecture_36).post(
            reverse("gouvernance:statut", args=[reunion.pk]), {"statut": "tenue"}
        )
    assert response.status_code == 302
    assert_gone(rappel, client_for)


def test_the_e_mail_is_grouped_under_the_departement(clct, prefecture_36):
    a_reunion(clct, TODAY - relativedelta(months=6) - timedelta(days=2), statut="tenue")
    set_frequence(prefecture_36, "gouvernance", Frequence.IMMEDIAT)
    mail.outbox.clear()
    report = sweep(TODAY)
    assert report.emails == 1
    message = mail.outbox[0]
    assert message.to == [prefecture_36.email]
    assert message.subject == "[PVD] Instance sans réunion – Indre"
    assert "Indre" in message.body and "Comité local de cohésion territoriale" in message.body


def test_an_unpublished_clct_releve_reaches_the_prefecture_and_resolves_when_published(
    clct,
    prefecture_36,
    client_for,
    on,  # noqa: F811
):
    reunion = a_reunion(clct, TODAY - timedelta(days=15), statut=Reunion.Statut.TENUE)
    rappel = situation_recorded("releve_non_publie", prefecture_36)
    assert rappel.departement_id == "36"
    with on(TODAY):
        client_for(prefecture_36).post(reverse("gouvernance:releve-publier", args=[reunion.pk]))
    assert reunion.releves.get().statut == "pret"
    assert_gone(rappel, client_for)


def test_an_overdue_clct_follow_up_reaches_its_person_and_the_prefecture_and_resolves_when_done(
    clct,
    prefecture_36,
    elu_ussel,
    client_for,
    on,  # noqa: F811
):
    reunion = a_reunion(clct, TODAY - timedelta(days=40), statut=Reunion.Statut.TENUE)
    decision = Decision.objects.create(reunion=reunion, type="autre", texte="Relancer")
    suite = Suite.objects.create(
        decision=decision, intitule="Saisir la DDT", responsable=elu_ussel, echeance=TODAY
    )
    # The person responsible sits in the CLCT (a member reads it) and marks it done.
    Membre.objects.create(instance=clct, organisation="Commune d'Ussel", user=elu_ussel)
    rappel = situation_recorded("suite_a_donner", elu_ussel)
    assert rappel.departement_id == "36"
    assert set(
        Rappel.objects.filter(regle="suite_a_donner").values_list("destinataire", flat=True)
    ) == {elu_ussel.pk, prefecture_36.pk}
    with on(TODAY):
        response = client_for(elu_ussel).post(reverse("gouvernance:suite-faite", args=[suite.pk]))
    assert response.status_code == 302
    assert_gone(rappel, client_for)
    assert not Rappel.objects.ouverts().filter(regle="suite_a_donner").exists()


def test_a_follow_ups_due_date_moved_replaces_the_prefectures_reminder(
    clct,
    prefecture_36,
    elu_ussel,
    client_for,
    on,  # noqa: F811
):
    reunion = a_reunion(clct, TODAY - timedelta(days=40), statut=Reunion.Statut.TENUE)
    decision = Decision.objects.create(reunion=reunion, type="autre", texte="Relancer")
    suite = Suite.objects.create(
        decision=decision,
        intitule="Saisir la DDT",
        responsable=elu_ussel,
        echeance=TODAY - timedelta(days=3),
    )
    rappel = situation_recorded("suite_a_donner", prefecture_36)
    with on(TODAY):
        client_for(prefecture_36).post(
            reverse("gouvernance:suite-update", args=[suite.pk]),
            {
                "intitule": "Saisir la DDT",
                "responsable": elu_ussel.pk,
                "echeance": str(TODAY - timedelta(days=1)),
            },
        )
    rappel.refresh_from_db()
    assert rappel.resolu_le is not None
    moved = Rappel.objects.ouverts().get(regle="suite_a_donner", destinataire=prefecture_36)
    assert moved.echeance == TODAY - timedelta(days=1) and moved.departement_id == "36"


def test_a_regional_committee_reaches_the_prefectures_of_its_region(
    territoires, prefecture_36, prefecture_19
):
    financeurs = Instance.objects.create(
        type=Instance.Type.FINANCEURS, nom="Financeurs du Centre-Val de Loire", region_id="24"
    )
    a_reunion(financeurs, TODAY - relativedelta(months=12) - timedelta(days=5), statut="tenue")
    record(TODAY)
    rappel = Rappel.objects.get(regle="instance_en_retard")
    assert (rappel.destinataire, rappel.region_id, rappel.departement_id) == (
        prefecture_36,
        "24",
        None,
    )
    assert rappel.message.startswith("Centre-Val de Loire : ")


def test_a_beneficiarys_save_looks_at_no_departements_instance(clct):
    a_reunion(clct, TODAY - relativedelta(months=6) - timedelta(days=10), statut="tenue")
    assert list(instance_en_retard(TODAY, beneficiaires=[1, 2])) == []
    assert [d.departement_id for d in instance_en_retard(TODAY)] == ["36"]
    assert [d.objet for d in instance_en_retard(TODAY, territoires=({"36"}, set()))] == [
        f"instance:{clct.pk}"
    ]
    assert list(instance_en_retard(TODAY, territoires=({"19"}, {"75"}))) == []


def test_a_clct_set_up_by_mistake_and_deleted_takes_its_reminder_with_it(
    clct,
    prefecture_36,
    client_for,
    on,  # noqa: F811
):
    """Never met: due six months after it was set up; deleted on the portal, its reminder
    closes at once."""
    Instance.objects.filter(pk=clct.pk).update(
        created_at=timezone.make_aware(
            timezone.datetime.combine(TODAY - relativedelta(months=6, days=5), time(9))
        )
    )
    rappel = situation_recorded("instance_en_retard", prefecture_36)
    with on(TODAY):
        response = client_for(prefecture_36).post(
            reverse("gouvernance:instance-delete", args=[clct.pk])
        )
    assert response.status_code == 302 and not Instance.objects.filter(pk=clct.pk).exists()
    rappel.refresh_from_db()
    assert rappel.resolu_le is not None


def test_a_chef_de_projet_is_offered_only_their_beneficiaries_instances(client_for, cdp_ussel):
    form = client_for(cdp_ussel).get(reverse("gouvernance:instance-create")).context["form"]
    assert "departement" not in form.fields and "region" not in form.fields
    assert [v for v, _ in form.fields["type"].choices if v] == [
        "comite_projet",
        "comite_technique",
        "autre",
    ]
    assert [b.nom for b in form.fields["beneficiaire"].queryset] == ["Ussel – La Courtine"]
