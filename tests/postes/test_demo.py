from decimal import Decimal

import pytest

from postes.demo import seed_demo_postes
from postes.models import Poste
from postes.plafonds import plafond_de
from pvd.models import Role
from tests.factories import user_with_role

pytestmark = pytest.mark.django_db


def test_demo_posts_respect_the_rules_and_cover_the_cases(territoires, regles):
    cdp = user_with_role("cdp-ussel@demo.pvd.fr", Role.Kind.CHEF_PROJET)
    assert seed_demo_postes() == 6
    assert seed_demo_postes() == 0  # can run again
    assert Poste.objects.filter(beneficiaires__departement="19").distinct().count() == 2
    ussel = Poste.objects.get(beneficiaires__nom="Ussel – La Courtine")
    assert ussel.occupation_actuelle().role.user == cdp
    vacant = Poste.objects.get(etat=Poste.Etat.VACANT)
    assert vacant.vacant_depuis.month == 5
    shared = Poste.objects.get(beneficiaires__nom="Saint-Gaultier")
    assert shared.beneficiaires.count() == 2
    at_cap = []
    for poste in Poste.objects.all():
        for annee in poste.annees.all():
            notifies = {li.financeur: li.montant_notifie for li in annee.lignes.all()}
            plafond = plafond_de(poste, annee.annee, annee.cout_charge, "anah" in notifies)
            assert plafond.erreurs(notifies) == [], (poste, annee.annee)
            if sum(notifies.values()) == Decimal("45000"):
                at_cap.append(poste.employeur_nom)
    assert "CC de la Châtre et Sainte-Sévère" in at_cap


def test_seed_demo_adds_the_posts_on_a_demo_instance_only(settings, db):
    from io import StringIO

    from django.core.management import call_command

    settings.DEBUG = False
    call_command("seed_demo", stdout=StringIO())
    assert not Poste.objects.exists()
    settings.DEBUG = True
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "Postes de chef de projet de démonstration : 6." in out.getvalue()
    ussel = Poste.objects.get(beneficiaires__nom="Ussel – La Courtine")
    assert ussel.occupation_actuelle().role.user.email == "cdp-ussel@demo.pvd.fr"
