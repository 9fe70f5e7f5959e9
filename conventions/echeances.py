"""The convention-cadre deadline: 18 months after the convention d'adhésion is signed."""

from dataclasses import dataclass
from datetime import date

from dateutil.relativedelta import relativedelta
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.utils import timezone

from communes.models import Beneficiaire, MembreBeneficiaire

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


def _liste():
    return Subquery(
        MembreBeneficiaire.objects.filter(beneficiaire=OuterRef("pk"))
        .exclude(date_signature=None)
        .order_by("date_signature")
        .values("date_signature")[:1]
    )


def with_echeances(beneficiaires: QuerySet) -> QuerySet:
    """Annotate `date_adhesion` and `date_cadre`.

    The adhésion date is that of the signed convention d'adhésion recorded in the portal,
    or else the signature date carried by ANCT's list (data.gouv.fr) for its communes, or
    else the date the préfecture entered (``Beneficiaire.date_adhesion_saisie``). None: the
    18-month deadline cannot be computed, and the figures count it apart
    (``SANS_DATE_ADHESION``).
    """
    return beneficiaires.annotate(
        date_adhesion=Coalesce(
            _signed(Convention.Type.ADHESION), _liste(), F("date_adhesion_saisie")
        ),
        # Signed, even when the national tracking does not give the date.
        cadre_signee=Exists(_signees(Convention.Type.CADRE)),
        date_cadre=_signed(Convention.Type.CADRE),
    )


# On beneficiaries annotated by `with_echeances`: the lauréats still waiting for their
# convention-cadre whose adhésion date is unknown, so that no deadline can be computed.
SANS_DATE_ADHESION = Q(
    statut=Beneficiaire.Statut.LAUREAT, cadre_signee=False, date_adhesion__isnull=True
)


def sans_date_adhesion(beneficiaires: QuerySet) -> QuerySet:
    """The lauréats whose convention-cadre deadline cannot be computed: dates to complete."""
    return with_echeances(beneficiaires).filter(SANS_DATE_ADHESION).order_by("nom")


# The programme was launched on 1 October 2020: no convention d'adhésion is older.
LANCEMENT = date(2020, 10, 1)


def date_adhesion_errors(beneficiaire, day: date) -> list[str]:
    """Why ``day`` cannot be recorded as the beneficiary's adhésion date (none: it can)."""
    errors = []
    if day > timezone.localdate():
        errors.append(
            f"La date d'adhésion du {day:%d/%m/%Y} est dans le futur : indiquez la date de "
            "signature de la convention d'adhésion."
        )
    if day < LANCEMENT:
        errors.append(
            f"La date d'adhésion du {day:%d/%m/%Y} précède le lancement du programme "
            "(1er octobre 2020)."
        )
    if beneficiaire.statut != Beneficiaire.Statut.LAUREAT:
        errors.append(
            f"{beneficiaire.nom} n'est pas lauréat : seul un lauréat signe une convention "
            "d'adhésion."
        )
    known = (
        Beneficiaire.objects.filter(pk=beneficiaire.pk)
        .annotate(connue=Coalesce(_signed(Convention.Type.ADHESION), _liste()))
        .values_list("connue", flat=True)
        .first()
    )
    if known is not None:
        errors.append(
            f"La date d'adhésion de {beneficiaire.nom} est déjà connue ({known:%d/%m/%Y}, par "
            "la convention d'adhésion ou la liste de l'ANCT) : elle ne se saisit pas."
        )
    return errors


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
    def inconnue(self) -> bool:
        """Waiting for the convention-cadre, but from an unknown adhésion date."""
        return not self.cadre_signee and self.date_adhesion is None

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


def renseigner_date_adhesion(beneficiaire: Beneficiaire, day: date, *, by) -> None:
    """Fill the unknown adhésion date (or correct one entered before), checked on what is
    stored, the row locked: a date known from a convention or ANCT's list stays."""
    with transaction.atomic():
        locked = Beneficiaire.objects.select_for_update().get(pk=beneficiaire.pk)
        errors = date_adhesion_errors(locked, day)
        if errors:
            raise ValidationError(errors)
        beneficiaire.date_adhesion_saisie = day
        beneficiaire.date_adhesion_saisie_par = by
        beneficiaire.date_adhesion_saisie_le = timezone.now()
        beneficiaire.save(
            update_fields=[
                "date_adhesion_saisie",
                "date_adhesion_saisie_par",
                "date_adhesion_saisie_le",
                "updated_at",
            ]
        )
