"""What a post's co-financing adds up to: the one place for the lines a user reads, each
year's totals, « reste à verser » and the year's ceiling.

« Reste à verser » is what a funder notified and has not paid yet: never negative. Money paid
beyond the notified amount is shown apart, as « trop-versé », line by line and in every total,
so the post's page, the posts list, its export and the totals by région agree whatever was
stored. Sums are computed by the database in the lists, never by looping over posts.
"""

from dataclasses import dataclass
from decimal import Decimal

from django.db import connection
from django.db.models import DecimalField, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest

from pvd.db import DansLaListe, Preparee, Valeur

from .models import CofinancementAnnee, Financeur, LigneCofinancement, Poste, avec_anah
from .plafonds import Plafond, plafond_de

MONEY = DecimalField(max_digits=12, decimal_places=2)
ZERO = Decimal("0")


# Reste à verser, trop-versé --------------------------------------------------------------


def reste_a_verser(notifie: Decimal, verse: Decimal) -> Decimal:
    """Notified and not paid yet; never negative (see ``trop_verse``)."""
    return max(notifie - verse, ZERO)


def trop_verse(notifie: Decimal, verse: Decimal) -> Decimal:
    """Paid beyond the notified amount, shown apart from « reste à verser »."""
    return max(verse - notifie, ZERO)


def reste_expression(prefix: str = "") -> Greatest:
    """``reste_a_verser`` of lines reached through ``prefix``, in SQL (to be summed)."""
    return Greatest(
        F(f"{prefix}montant_notifie") - F(f"{prefix}montant_verse"), Value(ZERO), output_field=MONEY
    )


def trop_verse_expression(prefix: str = "") -> Greatest:
    return Greatest(
        F(f"{prefix}montant_verse") - F(f"{prefix}montant_notifie"), Value(ZERO), output_field=MONEY
    )


# The lines a user reads ------------------------------------------------------------------


def variante(funders: set[str] | None) -> tuple[str, ...] | None:
    """The funders a user reads as a prepared query's variant (pvd/db.py ``Preparee``)."""
    return None if funders is None else tuple(sorted(funders))


def lecteurs(variante: tuple[str, ...] | None) -> set[str] | None:
    """The funders of a prepared query's variant (None: all of them)."""
    return None if variante is None else set(variante)


def ids_slot(ids: list[int]) -> str | list[int]:
    """Ids for a ``DansLaListe`` slot: on PostgreSQL one array literal (``'{1,2,…}'``), which
    the server reads at once, where a list is written ``ARRAY[1, 2, …]``, a node per value to
    parse and plan (1 600 ids: 1.3 ms more)."""
    if connection.vendor == "postgresql":
        return "{" + ",".join(map(str, map(int, ids))) + "}"
    return ids


def slot(nom: str) -> Value:
    """A value given at each run of a prepared query (pvd/db.py ``Preparee``)."""
    return Value(Valeur(nom))


def lignes_visibles(funders: set[str] | None) -> QuerySet:
    """The co-financing lines of the funders a user reads (``policy.visible_funders``:
    None for all of them)."""
    lignes = LigneCofinancement.objects.all()
    return lignes if funders is None else lignes.filter(financeur__in=funders)


def _sum(lignes: QuerySet, expression) -> Coalesce:
    inner = lignes.order_by().values("annee__poste").annotate(total=Sum(expression)).values("total")
    return Coalesce(Subquery(inner, output_field=MONEY), Value(ZERO), output_field=MONEY)


MONTANTS = ("demande", "notifie", "verse", "reste", "trop_verse")


def with_montants(
    postes: QuerySet, year: int, funders: set[str] | None, montants: tuple[str, ...] = MONTANTS
) -> QuerySet:
    """Each post with the year's amounts of the lines the user reads: ``demande``,
    ``notifie``, ``verse``, ``reste`` and ``trop_verse``, or those of ``montants``
    (correlated subqueries)."""
    of_year = lignes_visibles(funders).filter(annee__poste=OuterRef("pk"), annee__annee=year)
    expressions = {
        "demande": F("montant_demande"),
        "notifie": F("montant_notifie"),
        "verse": F("montant_verse"),
        "reste": reste_expression(),
        "trop_verse": trop_verse_expression(),
    }
    return postes.annotate(**{name: _sum(of_year, expressions[name]) for name in montants})


# One post, year by year -------------------------------------------------------------------


@dataclass
class Annee:
    """One year of a post's co-financing as its page shows it."""

    annee: CofinancementAnnee
    lignes: list[LigneCofinancement]  # the lines the user reads
    plafond: Plafond
    # Notified amounts above the ceiling (the people's dates may have changed since they
    # were notified); only for a reader of every line, who sees the whole amount.
    depassements: list[str]
    demande: Decimal
    notifie: Decimal
    verse: Decimal
    reste: Decimal
    trop_verse: Decimal


def annees(poste: Poste, funders: set[str] | None) -> list[Annee]:
    """The post's years, latest first, with the lines of ``funders`` (None: all), their
    totals and the year's ceiling (postes/plafonds.py). Two queries, then one per year for
    the rules in force."""
    result = []
    for annee in poste.annees.prefetch_related("lignes"):
        toutes = list(annee.lignes.all())
        lignes = [li for li in toutes if funders is None or li.financeur in funders]
        anah = avec_anah(annee.cout_charge, toutes)
        plafond = plafond_de(poste, annee.annee, annee.cout_charge, anah)
        result.append(
            Annee(
                annee=annee,
                lignes=lignes,
                plafond=plafond,
                depassements=plafond.erreurs({li.financeur: li.montant_notifie for li in toutes})
                if funders is None
                else [],
                demande=sum((li.montant_demande for li in lignes), ZERO),
                notifie=sum((li.montant_notifie for li in lignes), ZERO),
                verse=sum((li.montant_verse for li in lignes), ZERO),
                reste=sum((li.reste_a_verser for li in lignes), ZERO),
                trop_verse=sum((li.trop_verse for li in lignes), ZERO),
            )
        )
    return result


# Totals by région and funder --------------------------------------------------------------


@dataclass
class TotalFinanceur:
    region: str
    financeur: str
    demande: Decimal
    notifie: Decimal
    verse: Decimal
    reste: Decimal
    trop_verse: Decimal


def totaux(ids: list[int], year: int, funders: set[str] | None) -> list[TotalFinanceur]:
    """The year's amounts of the posts of ``ids`` (the filtered list) by région and funder,
    in one prepared query (``TOTAUX``)."""
    preparee, variante_, valeurs = totaux_requete(ids, year, funders)
    return totaux_de(preparee.lignes(variante_, **valeurs))


def totaux_requete(ids: list[int], year: int, funders: set[str] | None) -> tuple:
    """``totaux``' query as (prepared query, variant, values), for pvd/db.py ``ensemble``."""
    valeurs = {"ids": ids_slot(ids), "annee": year}
    return TOTAUX, (variante(funders), len(ids) <= PEU_DE_POSTES), valeurs


def totaux_de(found: list) -> list[TotalFinanceur]:
    """The totals from the rows of ``totaux_requete``'s query."""
    return [
        TotalFinanceur(
            region=region or "—",
            financeur=Financeur(financeur).label,
            demande=demande,
            notifie=notifie,
            verse=verse,
            reste=reste,
            trop_verse=trop,
        )
        for financeur, region, demande, notifie, verse, reste, trop in found
    ]


# A list of at most this many posts is read post by post, each subquery correlated (an index
# lookup: a préfecture's few posts): the counts' (postes/tableaux.py ``COMPTEURS``) and each
# line's région in the totals; a longer one reads each subquery's whole set once (hashed),
# and the totals join the lines to their posts' beneficiaries once and keep the first (an
# anti-join): a lookup per post or line would cost more for the whole country.
PEU_DE_POSTES = 400


def totaux_par_region(variante: tuple[tuple[str, ...] | None, bool]) -> QuerySet:
    """``TOTAUX``: the ``annee`` slot's lines of the posts of the ``ids`` slot, summed by
    région and funder. A shared post counts once, in the région of its first beneficiary by
    région code (then by pk), as the export's ``region_nom``. ``variante``: the funders read,
    and whether the list is short (``PEU_DE_POSTES``)."""
    lecteurs_, peu = variante
    lignes = lignes_visibles(lecteurs(lecteurs_)).filter(
        DansLaListe(F("annee__poste"), Valeur("ids"), deplier=not peu),
        annee__annee=slot("annee"),
    )
    liens = Poste.beneficiaires.through.objects.filter(poste=OuterRef("annee__poste"))
    region = "beneficiaire__departement__region_id"
    if peu:
        premier = liens.order_by(region, "beneficiaire_id").values(
            "beneficiaire__departement__region__nom"
        )[:1]
        lignes = lignes.values("financeur", region=Subquery(premier))
    else:
        # Each line joined to its post's beneficiaries, kept with the one no other comes
        # before (an anti-join the database runs once over the lines, not a subquery per line).
        avant = liens.filter(
            Q(**{f"{region}__lt": OuterRef("premiere_region")})
            | Q(**{region: OuterRef("premiere_region"), "beneficiaire_id__lt": OuterRef("premier")})
        )
        lignes = (
            lignes.alias(
                premier=F("annee__poste__beneficiaires"),
                premiere_region=F("annee__poste__beneficiaires__departement__region_id"),
            )
            .exclude(Exists(avant))
            .values("financeur", region=F("annee__poste__beneficiaires__departement__region__nom"))
        )
    return (
        lignes.annotate(
            demande=Sum("montant_demande"),
            notifie=Sum("montant_notifie"),
            verse=Sum("montant_verse"),
            reste=Sum(reste_expression()),
            trop_verse=Sum(trop_verse_expression()),
        )
        .order_by("region", "financeur")
        .values_list("financeur", "region", "demande", "notifie", "verse", "reste", "trop_verse")
    )


TOTAUX = Preparee(totaux_par_region)
