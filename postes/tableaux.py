"""What the lists of posts show: person, dates and amounts per post, counts and totals.

Everything is aggregated in SQL, so a list costs the same number of queries at any size.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Exists, IntegerField, Max, OuterRef, Q, Subquery, Value
from django.db.models.functions import Concat

from communes.models import Beneficiaire

from . import financement
from .models import Occupation, Poste, cofinancement_finissant

# How long a vacant post has been vacant, as ANCT reports it (about three and six months).
TROIS_MOIS = timedelta(days=91)
SIX_MOIS = timedelta(days=182)


def with_facts(postes, today: date, year: int, funders: set[str] | None):
    """Annotate the current person, contract and funding ends, and the year's amounts
    (postes/financement.py)."""
    current = Occupation.objects.filter(poste=OuterRef("pk")).actuelles(today)
    funded_years = (
        financement.lignes_visibles(funders)
        .filter(annee__poste=OuterRef("pk"), montant_notifie__gt=0)
        .order_by()
        .values("annee__poste")
        .annotate(last=Max("annee__annee"))
        .values("last")
    )
    region = Beneficiaire.objects.filter(postes=OuterRef("pk")).order_by("departement__region_id")
    postes = postes.annotate(
        personne=Subquery(current.annotate(n=Concat("prenom", Value(" "), "nom")).values("n")[:1]),
        fin_contrat=Subquery(current.values("date_fin_contrat")[:1]),
        contrat_finissant=Exists(
            Occupation.objects.filter(poste=OuterRef("pk")).contrats_finissants(today)
        ),
        derniere_annee_financee=Subquery(funded_years, output_field=IntegerField()),
        region_nom=Subquery(region.values("departement__region__nom")[:1]),
    )
    return financement.with_montants(postes, year, funders)


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
    """The counts ANCT reports, in one query over the posts annotated by ``with_facts``."""
    vacant = Q(etat=Poste.Etat.VACANT)
    counts = postes.order_by().aggregate(
        total=Count("pk"),
        pourvus=Count("pk", filter=Q(etat=Poste.Etat.POURVU)),
        vacants=Count("pk", filter=vacant),
        vacants_moins_3_mois=Count("pk", filter=vacant & Q(vacant_depuis__gt=today - TROIS_MOIS)),
        vacants_3_a_6_mois=Count(
            "pk",
            filter=vacant
            & Q(vacant_depuis__lte=today - TROIS_MOIS)
            & Q(vacant_depuis__gt=today - SIX_MOIS),
        ),
        vacants_plus_6_mois=Count("pk", filter=vacant & Q(vacant_depuis__lte=today - SIX_MOIS)),
        en_recrutement=Count("pk", filter=Q(etat=Poste.Etat.EN_RECRUTEMENT)),
        a_creer=Count("pk", filter=Q(etat=Poste.Etat.A_CREER)),
        fin_contrat_90j=Count("pk", filter=Q(contrat_finissant=True)),
        fin_financement_90j=Count(
            "pk",
            filter=Q(derniere_annee_financee=today.year)
            if cofinancement_finissant(today)
            else Q(pk__in=[]),
        ),
    )
    return Compteurs(**counts)
