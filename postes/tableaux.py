"""What the lists of posts show: person, dates and amounts per post, counts and totals.

Everything is aggregated in SQL, so a list costs the same number of queries at any size.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import (
    Count,
    DecimalField,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Concat

from communes.models import Beneficiaire

from .models import Financeur, LigneCofinancement, Occupation, Poste

MONEY = DecimalField(max_digits=12, decimal_places=2)
SOON = timedelta(days=90)


def _lignes(funders: set[str] | None):
    lignes = LigneCofinancement.objects.all()
    return lignes if funders is None else lignes.filter(financeur__in=funders)


def _sum(lignes, field: str):
    inner = lignes.order_by().values("annee__poste").annotate(total=Sum(field)).values("total")
    return Coalesce(Subquery(inner, output_field=MONEY), Value(Decimal("0")), output_field=MONEY)


def with_facts(postes, today: date, year: int, funders: set[str] | None):
    """Annotate the current person, contract and funding ends, and the year's amounts."""
    current = Occupation.objects.filter(poste=OuterRef("pk"), date_debut__lte=today).filter(
        Q(date_fin__isnull=True) | Q(date_fin__gte=today)
    )
    funded_years = (
        _lignes(funders)
        .filter(annee__poste=OuterRef("pk"), montant_notifie__gt=0)
        .order_by()
        .values("annee__poste")
        .annotate(last=Max("annee__annee"))
        .values("last")
    )
    of_year = _lignes(funders).filter(annee__poste=OuterRef("pk"), annee__annee=year)
    region = Beneficiaire.objects.filter(postes=OuterRef("pk")).order_by("departement__region_id")
    return postes.annotate(
        personne=Subquery(current.annotate(n=Concat("prenom", Value(" "), "nom")).values("n")[:1]),
        fin_contrat=Subquery(current.values("date_fin_contrat")[:1]),
        derniere_annee_financee=Subquery(funded_years, output_field=IntegerField()),
        demande=_sum(of_year, "montant_demande"),
        notifie=_sum(of_year, "montant_notifie"),
        verse=_sum(of_year, "montant_verse"),
        region_nom=Subquery(region.values("departement__region__nom")[:1]),
    ).annotate(reste=F("notifie") - F("verse"))


def fin_financement(poste) -> date | None:
    year = poste.derniere_annee_financee
    return date(year, 12, 31) if year else None


@dataclass
class Compteurs:
    total: int
    pourvus: int
    vacants: int
    vacants_moins_3_mois: int
    vacants_3_a_6_mois: int
    vacants_plus_6_mois: int
    en_recrutement: int
    a_creer: int
    fin_contrat_90j: int
    fin_financement_90j: int


def compteurs(postes, today: date) -> Compteurs:
    """The counts ANCT reports, in one query over the (filtered, annotated) posts."""
    vacant = Q(etat=Poste.Etat.VACANT)
    counts = postes.order_by().aggregate(
        total=Count("pk"),
        pourvus=Count("pk", filter=Q(etat=Poste.Etat.POURVU)),
        vacants=Count("pk", filter=vacant),
        vacants_moins_3_mois=Count(
            "pk", filter=vacant & Q(vacant_depuis__gt=today - timedelta(days=91))
        ),
        vacants_3_a_6_mois=Count(
            "pk",
            filter=vacant
            & Q(vacant_depuis__lte=today - timedelta(days=91))
            & Q(vacant_depuis__gt=today - timedelta(days=182)),
        ),
        vacants_plus_6_mois=Count(
            "pk", filter=vacant & Q(vacant_depuis__lte=today - timedelta(days=182))
        ),
        en_recrutement=Count("pk", filter=Q(etat=Poste.Etat.EN_RECRUTEMENT)),
        a_creer=Count("pk", filter=Q(etat=Poste.Etat.A_CREER)),
        fin_contrat_90j=Count(
            "pk", filter=Q(fin_contrat__gte=today, fin_contrat__lte=today + SOON)
        ),
        # The funding of a year ends on 31 December: within 90 days from early October.
        fin_financement_90j=Count(
            "pk",
            filter=Q(derniere_annee_financee=today.year)
            if date(today.year, 12, 31) - today <= SOON
            else Q(pk__in=[]),
        ),
    )
    return Compteurs(**counts)


@dataclass
class TotalFinanceur:
    region: str
    financeur: str
    demande: Decimal
    notifie: Decimal
    verse: Decimal

    @property
    def reste(self) -> Decimal:
        return self.notifie - self.verse


def totaux(postes, year: int, funders: set[str] | None) -> list[TotalFinanceur]:
    """The year's amounts by région and funder (a shared post counts once)."""
    region = Beneficiaire.objects.filter(postes=OuterRef("annee__poste")).order_by(
        "departement__region_id"
    )
    rows = (
        _lignes(funders)
        .filter(annee__annee=year, annee__poste__in=postes.values("pk"))
        .annotate(region=Subquery(region.values("departement__region__nom")[:1]))
        .order_by()
        .values("region", "financeur")
        .annotate(
            demande=Sum("montant_demande"),
            notifie=Sum("montant_notifie"),
            verse=Sum("montant_verse"),
        )
        .order_by("region", "financeur")
    )
    return [
        TotalFinanceur(
            region=r["region"] or "—",
            financeur=Financeur(r["financeur"]).label,
            demande=r["demande"],
            notifie=r["notifie"],
            verse=r["verse"],
        )
        for r in rows
    ]
