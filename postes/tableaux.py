"""What the lists of posts show: person, dates and amounts per post, counts and totals.

Everything is aggregated in SQL, so a list costs the same number of queries at any size.
The page reads its counts on the filtered posts as they are (``compteurs``), then its
50 rows with what each shows (``lignes``): a post's person, dates and amounts are computed
for the rows shown, never for every post of the country.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Concat

from communes.models import Beneficiaire
from pvd.db import ArraySubquery

from . import financement
from .models import CofinancementAnnee, Occupation, Poste, cofinancement_finissant

# How long a vacant post has been vacant, as ANCT reports it (about three and six months).
TROIS_MOIS = timedelta(days=91)
SIX_MOIS = timedelta(days=182)


def with_facts(postes, today: date, year: int, funders: set[str] | None):
    """Annotate the current person, contract and funding ends, and the year's amounts
    (postes/financement.py)."""
    current = Occupation.objects.filter(poste=OuterRef("pk")).actuelles(today)
    region = Beneficiaire.objects.filter(postes=OuterRef("pk")).order_by("departement__region_id")
    postes = postes.annotate(
        personne=personne(today),
        fin_contrat=Subquery(current.values("date_fin_contrat")[:1]),
        contrat_finissant=Exists(
            Occupation.objects.filter(poste=OuterRef("pk")).contrats_finissants(today)
        ),
        derniere_annee_financee=derniere_annee_financee(funders),
        region_nom=Subquery(region.values("departement__region__nom")[:1]),
    )
    return financement.with_montants(postes, year, funders)


def personne(today: date) -> Subquery:
    """The name of the person in post on ``today``."""
    current = Occupation.objects.filter(poste=OuterRef("pk")).actuelles(today)
    return Subquery(current.annotate(n=Concat("prenom", Value(" "), "nom")).values("n")[:1])


def derniere_annee_financee(funders: set[str] | None) -> Subquery:
    """The last year with an amount notified by a funder the user reads: its post's years
    read backwards on their (post, year) index, the first with such a line."""
    notifiees = financement.lignes_visibles(funders).filter(
        annee=OuterRef("pk"), montant_notifie__gt=0
    )
    annees = CofinancementAnnee.objects.filter(poste=OuterRef("pk")).filter(Exists(notifiees))
    return Subquery(annees.order_by("-annee").values("annee")[:1])


def triables(postes: QuerySet, today: date, funders: set[str] | None) -> QuerySet:
    """The posts, with the dates the list sorts on (``alias``: computed only when sorted on)."""
    current = Occupation.objects.filter(poste=OuterRef("pk")).actuelles(today)
    return postes.alias(
        fin_contrat=Subquery(current.values("date_fin_contrat")[:1]),
        derniere_annee_financee=derniere_annee_financee(funders),
    )


def lignes(postes: QuerySet, today: date, year: int, funders: set[str] | None) -> QuerySet:
    """What a page of the list shows of each post, as plain values: sliced to a page, each
    subquery runs once per row shown (PostgreSQL computes them after sorting)."""
    current = Occupation.objects.filter(poste=OuterRef("pk")).actuelles(today)
    beneficiaires = Beneficiaire.objects.filter(postes=OuterRef("pk")).order_by("nom", "pk")
    postes = postes.annotate(
        personne=personne(today),
        date_fin_contrat=Subquery(current.values("date_fin_contrat")[:1]),
        annee_financee=derniere_annee_financee(funders),
        noms_beneficiaires=ArraySubquery(beneficiaires.values("nom")),
    )
    postes = financement.with_montants(postes, year, funders, ("notifie", "verse"))
    return postes.values(
        "pk",
        "intitule",
        "employeur_nom",
        "etat",
        "vacant_depuis",
        "personne",
        "date_fin_contrat",
        "annee_financee",
        "noms_beneficiaires",
        "notifie",
        "verse",
    )


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


def compteurs(postes: QuerySet, today: date, funders: set[str] | None) -> Compteurs:
    """The counts ANCT reports, in one query over the filtered posts as they are: the posts
    whose contract or funding ends soon are sets the database reads once (``IN``), not a
    subquery per post."""
    vacant = Q(etat=Poste.Etat.VACANT)
    finissants = Occupation.objects.contrats_finissants(today).values("poste")
    fin_financement = Q(pk__in=[])
    if cofinancement_finissant(today):
        notifiees = financement.lignes_visibles(funders).filter(montant_notifie__gt=0)
        cette_annee = notifiees.filter(annee__annee=today.year).values("annee__poste")
        apres = notifiees.filter(annee__annee__gt=today.year).values("annee__poste")
        fin_financement = Q(pk__in=cette_annee) & ~Q(pk__in=apres)
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
        fin_contrat_90j=Count("pk", filter=Q(pk__in=finissants)),
        fin_financement_90j=Count("pk", filter=fin_financement),
    )
    return Compteurs(**counts)
