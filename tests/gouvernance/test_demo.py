"""The demo's governance: Ussel – La Courtine's comité de projet with two meetings (one
deciding a fiche's financing), the Indre's CLCT with one meeting held and the next due."""

import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.urls import reverse

from gouvernance.models import Instance, Reunion
from pvd.models import User

pytestmark = pytest.mark.django_db


def test_the_demo_governance(territoires, client_for, time_machine):
    time_machine.move_to(datetime(2026, 12, 7, 10, tzinfo=ZoneInfo("Europe/Paris")))
    with override_settings(DEBUG=True), open(os.devnull, "w") as devnull:
        call_command("seed_demo", stdout=devnull)
        call_command("seed_demo", stdout=devnull)  # again: nothing doubles

    comite = Instance.objects.get(type="comite_projet", beneficiaire__nom="Ussel – La Courtine")
    assert comite.reunions.count() == 2
    tenue = comite.reunions.get(statut=Reunion.Statut.TENUE)
    (decision,) = tenue.decisions.all()
    (ligne,) = decision.lignes.all()
    assert ligne.statut == "notifie" and ligne.date_decision == tenue.date

    clct = Instance.objects.get(type="clct", departement_id="36")
    assert sorted(clct.reunions.values_list("statut", flat=True)) == ["prevue", "tenue"]

    # The demo's accounts are refused unless DEBUG is on.
    with override_settings(DEBUG=True):
        cdp = User.objects.get(email="cdp-ussel@demo.pvd.fr")
        fiche = client_for(cdp).get(reverse("actions:fiche", args=[ligne.fiche_id]))
        assert "Décidé en comité de projet du 12/03/2026" in fiche.content.decode()

        prefecture = User.objects.get(email="prefecture-36@demo.pvd.fr")
        home = client_for(prefecture).get(reverse("portail:home")).content.decode()
        assert "Comité local de cohésion territoriale – Indre (36)" in home
        assert "réunion attendue depuis le 12 novembre 2026" in home
        # And in its reminders: the CLCT has no beneficiary, its reminder is the Indre's.
        rappels = client_for(prefecture).get(reverse("rappels:list")).content.decode()
        assert "Indre : « Comité local de cohésion territoriale – Indre (36) »" in rappels
        assert prefecture.rappels.filter(regle="instance_en_retard", departement_id="36").exists()
