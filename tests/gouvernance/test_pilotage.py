"""The steering figures on the préfecture's and the national dashboards, and the instances
every territory gets (data migration and demo)."""

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.core.cache import cache
from django.urls import reverse

from communes.models import Beneficiaire, Departement
from conventions.models import Convention
from gouvernance.models import Decision, Instance, Reunion, Suite
from gouvernance.seed import seed_instances
from tests.conftest import count_queries

from .conftest import TODAY, a_comite, a_reunion

pytestmark = pytest.mark.django_db


def test_the_prefecture_sees_its_clct_due_and_not_another_departments(
    client_for, clct_36, prefecture_36, prefecture_19, today
):
    a_reunion(clct_36, TODAY - relativedelta(months=7), statut=Reunion.Statut.TENUE)
    page = client_for(prefecture_36).get(reverse("portail:home")).content.decode()
    assert "1 instance en retard de réunion" in page
    assert clct_36.nom.replace("'", "&#x27;") in page
    assert "réunion attendue depuis le 16 février 2026" in page
    other = client_for(prefecture_19).get(reverse("portail:home")).content.decode()
    assert "aucune instance en retard de réunion" in other


def test_a_clct_met_within_six_months_is_not_late(client_for, clct_36, prefecture_36, today):
    a_reunion(clct_36, TODAY - relativedelta(months=5), statut=Reunion.Statut.TENUE)
    # A meeting planned or cancelled does not count: only one held.
    a_reunion(clct_36, TODAY - timedelta(days=3), statut=Reunion.Statut.ANNULEE)
    page = client_for(prefecture_36).get(reverse("portail:home")).content.decode()
    assert "aucune instance en retard de réunion" in page


def test_unpublished_relevés_and_overdue_follow_ups_are_counted_nationally(
    client_for, comite, national, cdp_ussel, today
):
    old = a_reunion(comite, TODAY - timedelta(days=16), statut=Reunion.Statut.TENUE)
    a_reunion(comite, TODAY - timedelta(days=14), statut=Reunion.Statut.TENUE)  # not yet late
    decision = Decision.objects.create(reunion=old, type="autre", texte="x")
    Suite.objects.create(
        decision=decision, intitule="a", responsable=cdp_ussel, echeance=TODAY - timedelta(1)
    )
    Suite.objects.create(decision=decision, intitule="b", responsable=cdp_ussel, echeance=TODAY)
    page = client_for(national).get(reverse("portail:home")).content.decode()
    assert "1 relevé de décisions non publié après 15 jours" in page
    assert "1 suite à donner en retard" in page


def test_the_dashboard_figures_cost_the_same_at_two_sizes(client_for, prefecture_36, today):
    client = client_for(prefecture_36)
    url = reverse("portail:home")
    clcts = Instance.objects.bulk_create(
        [
            Instance(type="copil_departemental", nom=f"COPIL {i}", departement_id="36")
            for i in range(2)
        ]
    )
    client.get(url)

    def cold():  # the figures computed, not served from their cache (tableaux/dashboards.py)
        cache.clear()
        return client.get(url)

    small = count_queries(cold)
    for i in range(8):
        clct = Instance.objects.create(
            type="copil_departemental", nom=f"COPIL+{i}", departement_id="36", reunions_par_an=2
        )
        a_reunion(clct, TODAY - relativedelta(months=8), statut=Reunion.Statut.TENUE)
    a_reunion(clcts[0], TODAY - relativedelta(months=8), statut=Reunion.Statut.TENUE)
    assert count_queries(cold) == small


def test_seeding_gives_each_signed_beneficiary_a_comite_and_each_departement_a_clct(
    ussel_la_courtine, le_blanc
):
    Convention.objects.create(
        beneficiaire=ussel_la_courtine,
        type=Convention.Type.ADHESION,
        titre="Convention d'adhésion",
        statut=Convention.Statut.SIGNEE,
    )
    Convention.objects.create(
        beneficiaire=le_blanc, type=Convention.Type.ADHESION, titre="Brouillon"
    )
    # Signed before the portal had instances: the data migration's case.
    Instance.objects.all().delete()
    created = seed_instances(Instance, Beneficiaire, Departement)
    assert created == 1 + Departement.objects.count()
    (comite,) = Instance.objects.filter(type="comite_projet")
    assert comite.beneficiaire == ussel_la_courtine and comite.reunions_par_an == 1
    assert comite.nom == "Comité de projet d'Ussel – La Courtine"
    clct = Instance.objects.get(type="clct", departement_id="36")
    assert clct.reunions_par_an == 2
    assert clct.nom == "Comité local de cohésion territoriale – Indre (36)"
    assert seed_instances(Instance, Beneficiaire, Departement) == 0  # run again: nothing


def test_a_clct_cannot_meet_less_than_twice_a_year(territoires):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Instance.objects.create(type="clct", nom="CLCT", departement_id="36", reunions_par_an=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        Instance.objects.create(type="autre", nom="Sans périmètre")


def test_one_comite_de_projet_per_beneficiary_and_one_clct_per_departement_in_the_database(
    ussel_la_courtine, territoires
):
    """The form's check (``Instance.clean``) holds on what is stored: two submissions racing
    past it cannot both create one."""
    from django.db import IntegrityError, transaction

    a_comite(ussel_la_courtine)
    Instance.objects.create(type="clct", nom="CLCT", departement_id="36", reunions_par_an=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Instance.objects.bulk_create(
            [Instance(type="comite_projet", nom="Bis", beneficiaire=ussel_la_courtine)]
        )
    with pytest.raises(IntegrityError), transaction.atomic():
        Instance.objects.bulk_create(
            [Instance(type="clct", nom="Bis", departement_id="36", reunions_par_an=2)]
        )
    # Other types may be several on one territory.
    a_comite_technique = Instance(type="comite_technique", nom="CT", beneficiaire=ussel_la_courtine)
    Instance.objects.bulk_create(
        [
            a_comite_technique,
            Instance(type="comite_technique", nom="CT 2", beneficiaire=ussel_la_courtine),
        ]
    )


def test_a_comite_is_not_late_until_its_period_passed(ussel_la_courtine, today):
    comite = a_comite(ussel_la_courtine)
    a_reunion(comite, TODAY - relativedelta(months=11), statut=Reunion.Statut.TENUE)
    assert not Instance.objects.en_retard(TODAY).filter(pk=comite.pk).exists()
    assert Instance.objects.en_retard(TODAY + relativedelta(months=1)).filter(pk=comite.pk)


def test_a_convention_signed_sets_up_the_comite_de_projet_once(le_blanc):
    convention = Convention.objects.create(
        beneficiaire=le_blanc, type=Convention.Type.ADHESION, titre="Adhésion"
    )
    assert not Instance.objects.filter(beneficiaire=le_blanc).exists()  # a draft: not yet
    convention.statut = Convention.Statut.SIGNEE
    convention.save()
    convention.save()
    (comite,) = Instance.objects.filter(beneficiaire=le_blanc)
    assert (comite.type, comite.nom) == ("comite_projet", "Comité de projet du Blanc")
