"""The convention-cadre deadline: 18 months after the convention d'adhésion is signed."""

from dataclasses import dataclass
from datetime import date

from dateutil.relativedelta import relativedelta
from django.db.models import Exists, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from communes.models import MembreBeneficiaire

from .models import ALERTE_ECHEANCE, DELAI_CONVENTION_CADRE, Convention


def _signees(type_: str):
    return Convention.objects.filter(
        beneficiaire=OuterRef("pk"), type=type_, statut__in=Convention.STATUTS_SIGNES
    )


def _signed(type_: str):
    return Subquery(
        _signees(type_)
        .exclude(date_signature=None)
        .order_by("date_signature")
        .values("date_signature")[:1]
    )


def with_echeances(beneficiaires: QuerySet) -> QuerySet:
    """Annotate `date_adhesion` and `date_cadre`.

    The adhésion date is that of the signed convention d'adhésion recorded in the portal,
    or else the signature date carried by ANCT's list (data.gouv.fr) for its communes.
    """
    liste = Subquery(
        MembreBeneficiaire.objects.filter(beneficiaire=OuterRef("pk"))
        .exclude(date_signature=None)
        .order_by("date_signature")
        .values("date_signature")[:1]
    )
    return beneficiaires.annotate(
        date_adhesion=Coalesce(_signed(Convention.Type.ADHESION), liste),
        # Signed, even when the national tracking does not give the date.
        cadre_signee=Exists(_signees(Convention.Type.CADRE)),
        date_cadre=_signed(Convention.Type.CADRE),
    )


def a_surveiller(beneficiaires: QuerySet, today: date | None = None) -> QuerySet:
    """Beneficiaries whose convention-cadre is late or due within three months."""
    today = today or timezone.localdate()
    limite = today + ALERTE_ECHEANCE - DELAI_CONVENTION_CADRE
    return (
        with_echeances(beneficiaires)
        .filter(cadre_signee=False, date_adhesion__lte=limite)
        .order_by("date_adhesion", "nom")
    )


@dataclass(frozen=True)
class Echeance:
    date_adhesion: date | None
    cadre_signee: bool
    date_cadre: date | None
    today: date

    @classmethod
    def of(cls, beneficiaire, today: date | None = None) -> "Echeance":
        """From a beneficiary annotated by `with_echeances`."""
        return cls(
            beneficiaire.date_adhesion,
            beneficiaire.cadre_signee,
            beneficiaire.date_cadre,
            today or timezone.localdate(),
        )

    @property
    def date_limite(self) -> date | None:
        return self.date_adhesion + DELAI_CONVENTION_CADRE if self.date_adhesion else None

    @property
    def mois_restants(self) -> int | None:
        if not self.date_limite:
            return None
        delta = relativedelta(self.date_limite, self.today)
        return delta.years * 12 + delta.months

    @property
    def en_retard(self) -> bool:
        return bool(self.date_limite and not self.cadre_signee and self.date_limite < self.today)

    @property
    def signee_en_retard(self) -> bool:
        return bool(self.date_limite and self.date_cadre and self.date_cadre > self.date_limite)

    @property
    def proche(self) -> bool:
        return bool(
            self.date_limite
            and not self.cadre_signee
            and self.today <= self.date_limite <= self.today + ALERTE_ECHEANCE
        )
