from datetime import date
from io import StringIO

import pytest
from django.core.management import call_command

from conventions.models import Convention
from pvd.models import User

pytestmark = pytest.mark.usefixtures("empty_base")


def test_demo_instance_gets_accounts_and_signed_conventions(settings):
    settings.DEBUG = True
    call_command("seed_demo", stdout=StringIO())
    call_command("seed_demo", stdout=StringIO())  # idempotent
    assert User.objects.filter(email__endswith="@demo.pvd.fr").count() == 7
    cdp = User.objects.get(email="cdp-ussel@demo.pvd.fr")
    assert cdp.check_password("pvd-demo")
    assert [b.nom for b in cdp.roles.get().beneficiaires.all()] == ["Ussel – La Courtine"]
    cadres = Convention.objects.filter(type="cadre", statut="signee")
    assert cadres.count() == 18
    ussel = cadres.get(beneficiaire__nom="Ussel – La Courtine")
    assert ussel.date_signature == date(2022, 10, 18)
    assert cadres.get(beneficiaire__nom="Le Blanc").date_signature == date(2023, 2, 17)
    assert Convention.objects.filter(type="adhesion", date_signature__year=2021).count() == 18
    # Indicators with a frequency whose measure is late: the chef de projet is reminded.
    from rappels.models import Rappel

    mesures = Rappel.objects.filter(destinataire=cdp, regle="mesure_indicateur")
    assert mesures.filter(message__contains="Surface d'espace public requalifiée").count() == 1


def test_production_instance_gets_no_demo_account(settings):
    settings.DEBUG = False
    call_command("seed_demo", stdout=StringIO())
    assert not User.objects.exists()
    assert not Convention.objects.exists()
