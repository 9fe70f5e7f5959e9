from datetime import date

import pytest
from dateutil.relativedelta import relativedelta

from communes.models import MembreBeneficiaire
from conventions.models import Convention

TODAY = date(2026, 11, 30)


def set_adhesion(beneficiaire, day: date) -> None:
    """The adhésion date as ANCT's list gives it (no convention d'adhésion on the portal)."""
    Convention.objects.filter(beneficiaire=beneficiaire, type=Convention.Type.ADHESION).delete()
    MembreBeneficiaire.objects.filter(beneficiaire=beneficiaire).update(date_signature=day)


@pytest.fixture
def ussel_at_12_months(ussel_la_courtine):
    """Ussel's convention-cadre reminder of 12 months falls on TODAY."""
    Convention.objects.filter(beneficiaire=ussel_la_courtine, type=Convention.Type.CADRE).delete()
    set_adhesion(ussel_la_courtine, TODAY - relativedelta(months=12))
    return ussel_la_courtine
