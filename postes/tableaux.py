"""What the lists of posts show: person, dates and amounts per post, counts and totals.

Everything is aggregated in SQL, so a list costs the same number of queries at any size.
The page reads the filtered posts' ids once, in its order; its counts (``compteurs``), its
totals (postes/financement.py ``totaux``) and its rows (``lignes``: a post's person, dates
and amounts, for the rows shown only) are prepared queries over them, built and compiled
once per process (pvd/db.py ``Preparee``): for these pages, building the querysets cost
more than running them; the list keeps what they return in the cache (postes/chiffres.py).
The exports read ``with_facts``: the same facts, post by post.
"""

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Concat

from communes.models import Beneficiaire
from pvd.db import ArraySubquery, DansLaListe, Preparee, Valeur

from . import financement
from .financement import slot
from .models import (
    HORIZON_FIN_CONTRAT,
    CofinancementAnnee,
    Occupation,
    Poste,
    cofinancement_finissant,
    contrat_finissant_q,
)

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


def triables(postes: QuerySet, today: date, funders: set[str] | None, tri: str) -> QuerySet:
    """The posts, with the dates the list sorts on when ``tri`` (the list's « tri »
    parameter) asks for them (``alias``: not selected; not even built otherwise)."""
    if "fin_contrat" in tri:
        current = Occupation.objects.filter(poste=OuterRef("pk")).actuelles(today)
        postes = postes.alias(fin_contrat=Subquery(current.values("date_fin_contrat")[:1]))
    if "fin_financement" in tri:
        postes = postes.alias(derniere_annee_financee=derniere_annee_financee(funders))
    return postes


def lignes(ids: list[int], today: date, year: int, funders: set[str] | None) -> list[dict]:
    """What a page of the list shows of each of its posts (``ids``, in that order), as plain
    values, in one prepared query (``LIGNES``)."""
    preparee, variante, valeurs = lignes_requete(ids, today, year, funders)
    return lignes_de(preparee.lignes(variante, **valeurs), ids)


def lignes_requete(ids: list[int], today: date, year: int, funders: set[str] | None) -> tuple:
    """``lignes``' query as (prepared query, variant, values), for pvd/db.py ``ensemble``."""
    valeurs = {"ids": financement.ids_slot(ids), "jour": today, "annee": year}
    return LIGNES, financement.variante(funders), valeurs


def lignes_de(found: list, ids: list[int]) -> list[dict]:
    """The rows of ``lignes_requete``'s query, in the order of ``ids``."""
    rows = [dict(zip(LIGNES_COLONNES, ligne, strict=True)) for ligne in found]
    rang = {pk: n for n, pk in enumerate(ids)}
    return sorted(rows, key=lambda row: rang[row["pk"]])


LIGNES_COLONNES = (
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


def page_de_postes(variante: tuple[str, ...] | None) -> QuerySet:
    """``LIGNES``: the posts of the ``ids`` slot with their person and contract end on the
    ``jour`` slot, last funded year, beneficiaries and the ``annee`` slot's amounts."""
    funders, jour = financement.lecteurs(variante), slot("jour")
    current = Occupation.objects.filter(poste=OuterRef("pk")).actuelles(jour)
    beneficiaires = Beneficiaire.objects.filter(postes=OuterRef("pk")).order_by("nom", "pk")
    postes = Poste.objects.filter(DansLaListe(F("pk"), Valeur("ids"))).annotate(
        personne=personne(jour),
        date_fin_contrat=Subquery(current.values("date_fin_contrat")[:1]),
        annee_financee=derniere_annee_financee(funders),
        noms_beneficiaires=ArraySubquery(beneficiaires.values("nom")),
    )
    postes = financement.with_montants(postes, slot("annee"), funders, ("notifie", "verse"))
    return postes.order_by().values_list(*LIGNES_COLONNES)


LIGNES = Preparee(page_de_postes)


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


def compteurs(ids: list[int], today: date, funders: set[str] | None) -> Compteurs:
    """The counts ANCT reports over the posts of ``ids`` (the filtered list), in one prepared
    query grouped by state (``COMPTEURS``): the posts whose contract or funding ends soon are
    sets the database reads once (``IN``), not a subquery per post."""
    preparee, variante, valeurs = compteurs_requete(ids, today, funders)
    return compteurs_de(preparee.lignes(variante, **valeurs), today)


def compteurs_requete(ids: list[int], today: date, funders: set[str] | None) -> tuple:
    """``compteurs``' query as (prepared query, variant, values), for pvd/db.py ``ensemble``."""
    valeurs = {
        "ids": financement.ids_slot(ids),
        "jour": today,
        "horizon": today + HORIZON_FIN_CONTRAT,
        "trois_mois": today - TROIS_MOIS,
        "six_mois": today - SIX_MOIS,
        "annee": today.year,
    }
    return (
        COMPTEURS,
        (financement.variante(funders), len(ids) <= financement.PEU_DE_POSTES),
        valeurs,
    )


def compteurs_de(found: list, today: date) -> Compteurs:
    """The counts from the rows of ``compteurs_requete``'s query."""
    par_etat = {etat: comptes for etat, *comptes in found}
    zero = [0] * 6

    def total(position: int) -> int:
        return sum(comptes[position] for comptes in par_etat.values())

    vacants = par_etat.get(Poste.Etat.VACANT, zero)
    return Compteurs(
        total=total(0),
        pourvus=par_etat.get(Poste.Etat.POURVU, zero)[0],
        vacants=vacants[0],
        vacants_moins_3_mois=vacants[1],
        vacants_3_a_6_mois=vacants[2],
        vacants_plus_6_mois=vacants[3],
        en_recrutement=par_etat.get(Poste.Etat.EN_RECRUTEMENT, zero)[0],
        a_creer=par_etat.get(Poste.Etat.A_CREER, zero)[0],
        fin_contrat_90j=total(4),
        fin_financement_90j=total(5) if cofinancement_finissant(today) else 0,
    )


def comptes_par_etat(variante: tuple[tuple[str, ...] | None, bool]) -> QuerySet:
    """``COMPTEURS``: the posts of the ``ids`` slot counted by state: all of them, vacant
    since after ``trois_mois``, between ``six_mois`` and ``trois_mois``, before ``six_mois``,
    whose contract ends within the horizon (``jour`` to ``horizon``), whose last funded year
    is the ``annee`` slot. ``variante``: the funders read, and whether the list is short
    (``financement.PEU_DE_POSTES``: correlated subqueries, else sets read once)."""
    lecteurs, peu = variante
    notifiees = financement.lignes_visibles(financement.lecteurs(lecteurs)).filter(
        montant_notifie__gt=0
    )
    cette_annee = notifiees.filter(annee__annee=slot("annee"))
    apres = notifiees.filter(annee__annee__gt=slot("annee"))
    finissants = Occupation.objects.filter(
        contrat_finissant_q(slot("jour"), horizon=slot("horizon"))
    )
    if peu:
        finit = Exists(finissants.filter(poste=OuterRef("pk")))
        finance = Exists(cette_annee.filter(annee__poste=OuterRef("pk"))) & ~Exists(
            apres.filter(annee__poste=OuterRef("pk"))
        )
    else:
        finit = Q(pk__in=finissants.values("poste"))
        finance = Q(pk__in=cette_annee.values("annee__poste")) & ~Q(
            pk__in=apres.values("annee__poste")
        )
    trois_mois, six_mois = slot("trois_mois"), slot("six_mois")
    return (
        Poste.objects.filter(DansLaListe(F("pk"), Valeur("ids")))
        .order_by()
        .values("etat")
        .annotate(
            n=Count("pk"),
            moins_3_mois=Count("pk", filter=Q(vacant_depuis__gt=trois_mois)),
            de_3_a_6_mois=Count(
                "pk", filter=Q(vacant_depuis__lte=trois_mois, vacant_depuis__gt=six_mois)
            ),
            plus_6_mois=Count("pk", filter=Q(vacant_depuis__lte=six_mois)),
            fin_contrat=Count("pk", filter=finit),
            fin_financement=Count("pk", filter=finance),
        )
        .values_list(
            "etat",
            "n",
            "moins_3_mois",
            "de_3_a_6_mois",
            "plus_6_mois",
            "fin_contrat",
            "fin_financement",
        )
    )


COMPTEURS = Preparee(comptes_par_etat)
