"""What a plan d'action adds up to: the one place for its totals (by axis, by funder and
status, for the plan), « reste à financer » and « dépassement », the delivery buckets, the
reference ordering and the timeline.

The plan page, the fiche page, the CSV/XLSX exports and the convention's annex all read
their figures here, so they agree. Sums are computed by the database (GROUP BY, conditional
aggregates, subqueries), never by looping over rows in Python.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.contrib.postgres.fields import ArrayField
from django.db.models import (
    Case,
    Count,
    DecimalField,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    TextChoices,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Lower
from django.forms import Form
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html_join

from pvd.bounds import DATE_MAX, DATE_MIN
from pvd.db import Parametre, Preparee

from .models import Axe, FicheAction, LigneFinancement, abandonnee_q
from .plan_cache import Fragments, content_key, digest, fiche_row_context, render_each

MONEY = DecimalField(max_digits=16, decimal_places=2)
ZERO = Decimal("0")

# Reference ordering ------------------------------------------------------------------------


def reference_key(reference: str) -> tuple:
    """« 1.2 » before « 1.10 »: the numbers of a reference, compared as numbers, then the
    reference as text (« 2.a » before « 2.b »). ``reference_order`` is the same in SQL."""
    return (tuple(int(n) for n in re.findall(r"\d+", reference)), reference.lower())


class ReferenceNumbers(Func):
    """The numbers of a reference as a PostgreSQL array: « 1.10 » → {1, 10}."""

    template = "array_remove(regexp_split_to_array(%(expressions)s, '\\D+'), '')::numeric[]"
    output_field = ArrayField(DecimalField(max_digits=40, decimal_places=0))

    def as_sqlite(self, compiler, connection, **extra_context):
        # The embedded SQLite demo (make run) has no arrays nor regular expressions: its
        # first two numbers as zero-padded text (« 1.10 » → 0000000001.0000000010).
        first = "CAST(CAST(%(expressions)s AS INTEGER) AS TEXT)"
        after_dot = "substr(%(expressions)s, instr(%(expressions)s, '.') + 1)"
        second = f"CAST(CAST({after_dot} AS INTEGER) AS TEXT)"
        template = (
            f"substr('0000000000' || {first}, -10) || '.' || substr('0000000000' || {second}, -10)"
        )
        return self.as_sql(compiler, connection, template=template, **extra_context)


def reference_order(field_name: str = "reference") -> list:
    """``reference_key`` as an ``order_by`` (for exports streamed in order from the database)."""
    return [ReferenceNumbers(field_name).asc(), Lower(field_name).asc()]


def fiche_order_key(fiche: FicheAction) -> tuple:
    """Fiches by axis number, then by reference."""
    return (fiche.axe.numero, reference_key(fiche.reference))


# Reste à financer, dépassement ------------------------------------------------------------
# What remains to finance is never negative: financing beyond the cost is shown apart as a
# « dépassement ». A fiche without a cost has neither (both unknown).


def reste_et_depassement(cout: Decimal | None, finance: Decimal) -> tuple:
    """(reste à financer, dépassement) of a cost and the financing of it; (None, None)
    when the cost is unknown."""
    if cout is None:
        return None, None
    return max(cout - finance, ZERO), max(finance - cout, ZERO)


def reste_expression(cout: str = "cout_total", finance: str = "finance") -> Case:
    """The same rule as ``reste_et_depassement``, in SQL (PostgreSQL's GREATEST ignores a
    NULL, hence the explicit case of an unknown cost)."""
    return Case(
        When(**{f"{cout}__isnull": True}, then=Value(None)),
        default=Greatest(F(cout) - F(finance), Value(ZERO)),
        output_field=MONEY,
    )


def depassement_expression(cout: str = "cout_total", finance: str = "finance") -> Case:
    return Case(
        When(**{f"{cout}__isnull": True}, then=Value(None)),
        default=Greatest(F(finance) - F(cout), Value(ZERO)),
        output_field=MONEY,
    )


def with_reste(queryset: QuerySet, cout: str = "cout_total", finance: str = "finance") -> QuerySet:
    return queryset.annotate(
        reste=reste_expression(cout, finance), depassement=depassement_expression(cout, finance)
    )


def fiches_with_totals(fiches: QuerySet) -> QuerySet:
    """Each fiche with ``finance``, ``reste`` and ``depassement``."""
    return with_reste(fiches.with_financement())


def with_finance_of_fiche(fiches: QuerySet) -> QuerySet:
    """Each fiche with ``finance``, the sum of its financing lines, as a subquery: read with
    the fiche in the same query (no GROUP BY over the fiche's columns and its joins)."""
    lignes = LigneFinancement.objects.filter(fiche=OuterRef("pk"))
    return fiches.annotate(finance=_sum_of(lignes, "fiche", "montant"))


def fiche_totals(fiche: FicheAction) -> dict:
    """The financing of one fiche, its reste à financer and dépassement: read with the fiche
    (``with_finance_of_fiche``), or by one query."""
    finance = getattr(fiche, "finance", None)
    if finance is None:
        total = Coalesce(Sum("montant"), Value(ZERO))
        finance = fiche.financements.aggregate(total=total)["total"]
    reste, depassement = reste_et_depassement(fiche.cout_total, finance)
    return {"finance": finance, "reste": reste, "depassement": depassement}


# Delivery buckets -------------------------------------------------------------------------


class Livraison(TextChoices):
    """The four buckets the programme reports nationally. An abandoned fiche is in none."""

    LIVREE = "livree", "Livrée"
    ENGAGEE = "engagee", "Engagée"
    EN_ETUDE = "en_etude", "En étude"
    NON_DEMARREE = "non_demarree", "Non démarrée"


Maturite, Avancement = FicheAction.Maturite, FicheAction.Avancement
# The first bucket whose maturity or stage matches wins: a fiche « prête » whose works have
# started (« démarrage ») is engagée; one « engagée » whose stage says « achevée » is livrée.
LIVRAISON_RULES: list[tuple[str, set[str], set[str]]] = [
    (Livraison.LIVREE, {Maturite.LIVREE}, {Avancement.ACHEVEE}),
    (Livraison.ENGAGEE, {Maturite.ENGAGEE}, {Avancement.DEMARRAGE, Avancement.OPERATIONNELLE}),
    (Livraison.EN_ETUDE, {Maturite.MATURATION, Maturite.PRETE}, {Avancement.ETUDE}),
]


def livraison(fiche: FicheAction) -> str | None:
    """The delivery bucket of a fiche (None when abandoned); ``livraison_case`` in SQL."""
    if fiche.maturite == Maturite.ABANDONNEE:
        return None
    for bucket, maturites, avancements in LIVRAISON_RULES:
        if fiche.maturite in maturites or fiche.avancement in avancements:
            return bucket
    return Livraison.NON_DEMARREE


def livraison_case(prefix: str = "") -> Case:
    """``livraison`` as a SQL expression; ``prefix`` reaches fiches from another model
    (``"fiches__"`` from a beneficiary), to count buckets with a conditional aggregate."""
    return Case(
        When(**{f"{prefix}maturite": Maturite.ABANDONNEE}, then=Value(None)),
        *(
            When(
                Q(**{f"{prefix}maturite__in": maturites})
                | Q(**{f"{prefix}avancement__in": avancements}),
                then=Value(bucket),
            )
            for bucket, maturites, avancements in LIVRAISON_RULES
        ),
        default=Value(Livraison.NON_DEMARREE),
    )


def livraison_counts(fiches: QuerySet) -> dict[str, int]:
    """The number of fiches in each delivery bucket, in one query."""
    return (
        fiches.order_by()
        .annotate(livraison=livraison_case())
        .aggregate(
            **{bucket: Count("pk", filter=Q(livraison=bucket)) for bucket in Livraison.values}
        )
    )


# Totals -----------------------------------------------------------------------------------
# Costs and financing are summed in separate queries or subqueries: summing both over one
# join would count a fiche's cost once per financing line.
#
# An abandoned fiche stays in its plan (its row, its history, its own figures) but not in what
# the plan adds up to: the count, cost, financing, reste à financer and dépassement of a plan
# or an axis leave it out, and its number and cost are shown apart (``nb_abandonnees``,
# ``cout_abandonne``). The plan page, the dashboards, the bilan and the convention's annex
# all read these totals, so a plan costs the same everywhere.

COMPTEE = ~abandonnee_q()
ABANDONNEE = abandonnee_q()


def _sum_of(queryset: QuerySet, group: str, field_name: str) -> Coalesce:
    """The sum of ``field_name`` over a correlated queryset, grouped by its link to the
    outer row."""
    inner = queryset.order_by().values(group).annotate(total=Sum(field_name)).values("total")
    return Coalesce(Subquery(inner, output_field=MONEY), Value(ZERO), output_field=MONEY)


def _count_of(queryset: QuerySet, group: str) -> Coalesce:
    inner = queryset.order_by().values(group).annotate(total=Count("pk")).values("total")
    return Coalesce(Subquery(inner, output_field=IntegerField()), Value(0))


def with_plan_totals(beneficiaires: QuerySet) -> QuerySet:
    """Each beneficiary with the count, cost, financing, reste and dépassement of its plan
    (abandoned fiches left out, their number apart in ``nb_abandonnees``)."""
    fiches = FicheAction.objects.filter(beneficiaire=OuterRef("pk"))
    lignes = LigneFinancement.objects.filter(fiche__beneficiaire=OuterRef("pk")).filter(
        ~abandonnee_q("fiche__")
    )
    return with_reste(
        beneficiaires.annotate(
            nb_fiches=_count_of(fiches.filter(COMPTEE), "beneficiaire"),
            nb_abandonnees=_count_of(fiches.filter(ABANDONNEE), "beneficiaire"),
            cout=_sum_of(fiches.filter(COMPTEE), "beneficiaire", "cout_total"),
            finance=_sum_of(lignes, "fiche__beneficiaire", "montant"),
        ),
        cout="cout",
    )


def totals_by_axe(fiches: QuerySet) -> dict[int, dict]:
    """The count, cost and financing of the given fiches on each axis, abandoned fiches apart,
    in one GROUP BY query (each fiche's financing is a subquery inside the sum, so no fiche is
    counted twice)."""
    lignes = (
        LigneFinancement.objects.filter(fiche=OuterRef("pk"))
        .order_by()
        .values("fiche")
        .annotate(total=Sum("montant"))
        .values("total")
    )
    rows = (
        fiches.order_by()
        .values("axe")
        .annotate(
            nb=Count("pk", filter=COMPTEE),
            cout=Sum("cout_total", filter=COMPTEE),
            finance=Sum(Subquery(lignes, output_field=MONEY), filter=COMPTEE),
            nb_abandonnees=Count("pk", filter=ABANDONNEE),
            cout_abandonne=Sum("cout_total", filter=ABANDONNEE),
        )
    )
    # No COALESCE (None is zero below): its compilation costs more than the query.
    return {
        row["axe"]: {
            **row,
            "cout": row["cout"] or ZERO,
            "finance": row["finance"] or ZERO,
            "cout_abandonne": row["cout_abandonne"] or ZERO,
        }
        for row in rows
    }


def axes_with_totals(
    beneficiaire, fiches: QuerySet | None, par_axe: dict | None = None, axes: list | None = None
) -> list[Axe]:
    """The axes of a plan, each with the count, cost, financing, reste and dépassement of
    the given fiches, abandoned ones apart (``par_axe``: their ``totals_by_axe``, when
    already read; ``axes``: the plan's axes in order, when already read).

    Two queries (the totals by axis, then the axes): correlated subqueries per axis cost
    several times more on a national database.
    """
    if par_axe is None:
        par_axe = totals_by_axe(fiches)
    if axes is None:
        axes = list(beneficiaire.axes.order_by("numero"))
    for axe in axes:
        row = par_axe.get(axe.pk, {})
        axe.nb_fiches = row.get("nb", 0)
        axe.cout = row.get("cout", ZERO)
        axe.finance = row.get("finance", ZERO)
        axe.nb_abandonnees = row.get("nb_abandonnees", 0)
        axe.cout_abandonne = row.get("cout_abandonne", ZERO)
        axe.reste, axe.depassement = reste_et_depassement(axe.cout, axe.finance)
    return axes


# The whole plan's queries are prepared (pvd/db.py ``Preparee``): built and compiled once per
# process, run with the beneficiary in their slot. Their subqueries and conditional aggregates
# cost several times more to build and compile than PostgreSQL takes to run them, and the
# plan's page runs them right after every change of the plan.


def _beneficiaire_slot() -> Parametre:
    return Parametre("beneficiaire", IntegerField())


# An axis as loaded by the ORM (``from_db`` takes the fields in this order), then its totals.
AXE_COLUMNS = tuple(field.attname for field in Axe._meta.concrete_fields)
AXE_TOTALS = ("nb", "cout_sum", "finance_sum", "nb_abandonnees_sum", "cout_abandonne_sum")


def _plan_axes(_variante) -> QuerySet:
    """The axes of a plan joined to their fiches and grouped by axis (each fiche's financing
    a subquery inside the sum, as in ``totals_by_axe``; an axis without fiches keeps its row)."""
    lignes = (
        LigneFinancement.objects.filter(fiche=OuterRef("fiches"))
        .order_by()
        .values("fiche")
        .annotate(total=Sum("montant"))
        .values("total")
    )
    comptee, abandonnee = ~abandonnee_q("fiches__"), abandonnee_q("fiches__")
    return (
        Axe.objects.filter(beneficiaire_id=_beneficiaire_slot())
        .annotate(
            nb=Count("fiches", filter=comptee),
            cout_sum=Sum("fiches__cout_total", filter=comptee),
            finance_sum=Sum(Subquery(lignes, output_field=MONEY), filter=comptee),
            nb_abandonnees_sum=Count("fiches", filter=abandonnee),
            cout_abandonne_sum=Sum("fiches__cout_total", filter=abandonnee),
        )
        .order_by("numero")
        .values_list(*AXE_COLUMNS, *AXE_TOTALS)
    )


PLAN_AXES = Preparee(_plan_axes)


def plan_axes_with_totals(
    beneficiaire, rows: list | None = None
) -> tuple[list[Axe], dict[int, dict]]:
    """``axes_with_totals`` over the whole plan, and its ``totals_by_axe``, in one prepared
    query (``_plan_axes``; ``rows``: its rows, when already read)."""
    if rows is None:
        rows = PLAN_AXES.lignes(beneficiaire=beneficiaire.pk)
    axes, par_axe = [], {}
    for row in rows:
        axe = Axe.from_db("default", AXE_COLUMNS, row[: len(AXE_COLUMNS)])
        nb, cout, finance, nb_abandonnees, cout_abandonne = row[len(AXE_COLUMNS) :]
        axes.append(axe)
        par_axe[axe.pk] = {
            "axe": axe.pk,
            "nb": nb,
            "cout": cout or ZERO,
            "finance": finance or ZERO,
            "nb_abandonnees": nb_abandonnees,
            "cout_abandonne": cout_abandonne or ZERO,
        }
    return axes_with_totals(beneficiaire, None, par_axe, axes), par_axe


def totals_of(par_axe: dict) -> dict:
    """The totals of a plan, added up from its ``totals_by_axe`` (a handful of rows, one per
    axis, rather than two more queries over the fiches and their financing lines)."""
    totals = {
        "nb_fiches": sum((row["nb"] for row in par_axe.values()), 0),
        "cout": sum((row["cout"] for row in par_axe.values()), ZERO),
        "finance": sum((row["finance"] for row in par_axe.values()), ZERO),
        "nb_abandonnees": sum((row["nb_abandonnees"] for row in par_axe.values()), 0),
        "cout_abandonne": sum((row["cout_abandonne"] for row in par_axe.values()), ZERO),
    }
    totals["reste"], totals["depassement"] = reste_et_depassement(totals["cout"], totals["finance"])
    return totals


def plan_totals(fiches: QuerySet) -> dict:
    """The totals of the given fiches, abandoned ones apart (two queries)."""
    totals = fiches.aggregate(
        nb_fiches=Count("pk", filter=COMPTEE),
        cout=Coalesce(Sum("cout_total", filter=COMPTEE), Value(ZERO)),
        nb_abandonnees=Count("pk", filter=ABANDONNEE),
        cout_abandonne=Coalesce(Sum("cout_total", filter=ABANDONNEE), Value(ZERO)),
    )
    totals["finance"] = lignes_comptees(fiches).aggregate(
        total=Coalesce(Sum("montant"), Value(ZERO))
    )["total"]
    totals["reste"], totals["depassement"] = reste_et_depassement(totals["cout"], totals["finance"])
    return totals


def abandonnees(fiches: QuerySet) -> dict:
    """The number and cost of the abandoned fiches among the given ones, shown apart from a
    plan's totals (one query)."""
    return fiches.aggregate(
        nb_abandonnees=Count("pk", filter=ABANDONNEE),
        cout_abandonne=Coalesce(Sum("cout_total", filter=ABANDONNEE), Value(ZERO)),
    )


def lignes_comptees(fiches: QuerySet) -> QuerySet:
    """The financing lines of the given fiches that a plan's totals count (not those of an
    abandoned fiche)."""
    return LigneFinancement.objects.filter(fiche__in=fiches).filter(~abandonnee_q("fiche__"))


@dataclass
class LigneFinanceur:
    nom: str
    montants: list[Decimal]
    total: Decimal


def financement_par_financeur(fiches: QuerySet) -> tuple[list[LigneFinanceur], list[Decimal]]:
    """Financing by funder and status: one row per funder, one column per status, and the
    column totals; one query with a conditional sum per status. Abandoned fiches are left
    out, as from every total of the plan."""
    statuts = list(LigneFinancement.Statut.values)
    rows = (
        lignes_comptees(fiches)
        .order_by()
        .values("financeur__nom", "financeur__ordre")
        .annotate(
            total=Sum("montant"),
            # No COALESCE per status (None below): its compilation costs more than the query.
            **{f"s_{statut}": Sum("montant", filter=Q(statut=statut)) for statut in statuts},
        )
        .order_by("financeur__ordre", "financeur__nom")
    )
    lignes = [
        LigneFinanceur(
            row["financeur__nom"], [row[f"s_{statut}"] or ZERO for statut in statuts], row["total"]
        )
        for row in rows
    ]
    column_totals = [
        sum((ligne.montants[i] for ligne in lignes), ZERO) for i in range(len(statuts))
    ]
    return lignes, column_totals


STATUTS = tuple(LigneFinancement.Statut.values)


def _plan_financeurs(_variante) -> QuerySet:
    """``financement_par_financeur`` over a whole plan."""
    return (
        LigneFinancement.objects.filter(fiche__beneficiaire_id=_beneficiaire_slot())
        .filter(~abandonnee_q("fiche__"))
        .order_by()
        .values("financeur__nom", "financeur__ordre")
        .annotate(
            total=Sum("montant"),
            **{f"s_{statut}": Sum("montant", filter=Q(statut=statut)) for statut in STATUTS},
        )
        .order_by("financeur__ordre", "financeur__nom")
        .values_list("financeur__nom", "total", *(f"s_{statut}" for statut in STATUTS))
    )


PLAN_FINANCEURS = Preparee(_plan_financeurs)


def plan_financement_par_financeur(
    beneficiaire, rows: list | None = None
) -> tuple[list[LigneFinanceur], list[Decimal]]:
    """``financement_par_financeur`` over the whole plan, in one prepared query (``rows``:
    its rows, when already read)."""
    if rows is None:
        rows = PLAN_FINANCEURS.lignes(beneficiaire=beneficiaire.pk)
    lignes = [
        LigneFinanceur(nom, [montant or ZERO for montant in montants], total)
        for nom, total, *montants in rows
    ]
    column_totals = [
        sum((ligne.montants[i] for ligne in lignes), ZERO) for i in range(len(STATUTS))
    ]
    return lignes, column_totals


# Timeline ---------------------------------------------------------------------------------


def _percent(value: float) -> str:
    """A CSS percentage, with a dot whatever the language of the page."""
    return f"{value:.3f}%"


def etat(fiche: FicheAction) -> str:
    """The modifier of a timeline bar."""
    if fiche.maturite == Maturite.ABANDONNEE:
        return "abandonnee"
    if livraison(fiche) == Livraison.LIVREE:
        return "faite"
    return "retard" if fiche.en_retard else ""


def timeline(fiches: list[FicheAction], today: date) -> dict | None:
    """Bars over the years covered by the planned dates of the fiches, and by today."""
    dated = [f for f in fiches if f.date_debut_prevue and f.date_fin_prevue]
    if not dated:
        return None
    # Dates stored before their bounds existed (pvd/bounds.py) are drawn at the bounds.
    start = date(max(DATE_MIN, min(today, *(f.date_debut_prevue for f in dated))).year, 1, 1)
    end = date(min(DATE_MAX, max(today, *(f.date_fin_prevue for f in dated))).year + 1, 1, 1)
    span = (end - start).days

    def position(day: date) -> float:
        return 100 * (min(max(day, start), end) - start).days / span

    bars = []
    for fiche in dated:
        left = position(fiche.date_debut_prevue)
        width = max(position(fiche.date_fin_prevue) - left + 100 / span, 0.6)
        bars.append(
            {
                "fiche": fiche,
                "left": _percent(left),
                "width": _percent(width),
                "etat": etat(fiche),
                # Formatted here: a date filter per bar costs more than the page's queries.
                "debut": f"{fiche.date_debut_prevue:%d/%m/%Y}",
                "fin": f"{fiche.date_fin_prevue:%d/%m/%Y}",
            }
        )
    years = [
        {
            "annee": str(year),
            "left": _percent(position(date(year, 1, 1))),
            "width": _percent(position(date(year + 1, 1, 1)) - position(date(year, 1, 1))),
        }
        for year in range(start.year, end.year)
    ]
    return {
        "bars": bars,
        "years": years,
        # Drawn once over all the rows.
        # Positioned by numbered classes (timeline_css.html): the CSP refuses style attributes.
        "gridlines": format_html_join(
            "",
            '<span class="pvd-timeline__gridline pvd-timeline__gridline--{}"></span>',
            ((n,) for n in range(1, len(years) + 1)),
        ),
        "today": _percent(position(today)),
        "undated": [f for f in fiches if not (f.date_debut_prevue and f.date_fin_prevue)],
    }


# The plan page ----------------------------------------------------------------------------


# The fields of a fiche that the plan's page shows: its row (fiche_row.html, with its badges)
# and its bar on the timeline.
PAGE_FIELDS = [
    "beneficiaire",  # set from the plan's beneficiary by its related manager
    "axe",
    "reference",
    "titre",
    "maitre_ouvrage",
    "maitre_ouvrage_type",
    "maturite",
    "avancement",
    "priorite",
    "cout_total",
    "budget_vert",
    "date_debut_prevue",
    "date_fin_prevue",
]


# A fiche as ``only(*PAGE_FIELDS)`` loads it (``from_db`` takes the fields in this order), then
# its financing.
PAGE_COLUMNS = tuple(
    field.attname
    for field in FicheAction._meta.concrete_fields
    if field.primary_key or field.name in PAGE_FIELDS
)


def _plan_fiches(_variante) -> QuerySet:
    return (
        FicheAction.objects.filter(beneficiaire_id=_beneficiaire_slot())
        .with_financement()
        .order_by()
        .values_list(*PAGE_COLUMNS, "finance")
    )


PLAN_FICHES = Preparee(_plan_fiches)


class Plan:
    """A plan (or the fiches of it a search retained), as its page shows it: the fiches by
    axis in reference order with their totals, the plan's totals, the financing by funder ×
    status and the timeline. Each part is read on first use, so a page served from its
    cached fragment (see actions/plan_cache.py) runs none of these queries."""

    statuts = LigneFinancement.Statut.choices

    def __init__(
        self,
        beneficiaire,
        fiches: QuerySet,
        today: date,
        *,
        filtered: bool = False,
        whole: bool = False,
    ):
        """``whole``: ``fiches`` are all the plan's (its axes and their totals are then read
        in one query, ``plan_axes_with_totals``)."""
        self.beneficiaire, self.queryset, self.today = beneficiaire, fiches, today
        self.filtered, self.whole = filtered, whole
        # The empty filter form, cached with the page's parts when the view gives its
        # version (``cache_filter``).
        self.empty_filter = self.filter_version = self.filter_key = None

    def cache_filter(self, empty_filter: Callable[[], Form], version: str) -> None:
        """``empty_filter`` builds the form, called only when its fragment is rendered."""
        self.empty_filter, self.filter_version = empty_filter, version

    @property
    def filter_form(self) -> str:
        """The empty filter form, when cached (otherwise the page renders it)."""
        return self.fragments[self.filter_key] if self.filter_version else ""

    @cached_property
    def fiches(self) -> list[FicheAction]:
        # Only what the page shows: the fields (a deferred field read by a template would
        # cost a query per fiche: tests/actions/test_plan.py counts them) and the financing,
        # not each fiche's reste and dépassement (their CASE expressions cost more to compile
        # than the query takes to run); sorted here, not by SQL.
        if self.whole:
            fiches = []
            for row in self._whole_rows["fiches"]:
                fiche = FicheAction.from_db("default", PAGE_COLUMNS, row[:-1])
                fiche.finance = row[-1]
                fiche.beneficiaire = self.beneficiaire  # as its related manager sets it
                fiches.append(fiche)
        else:
            fiches = self.queryset.with_financement().order_by().only(*PAGE_FIELDS)
        rows = sorted(fiches, key=lambda fiche: reference_key(fiche.reference))
        # One reverse() for the page, not one per fiche and per place it is linked from.
        fiche_url = reverse("actions:fiche", args=[0]).replace("/0/", "/{}/")
        for fiche in rows:
            fiche.url = fiche_url.format(fiche.pk)
        return rows

    @cached_property
    def _whole_rows(self) -> dict[str, list]:
        """The rows of the whole plan's prepared queries: its fiches, its axes with their
        totals, its financing by funder."""
        pk = self.beneficiaire.pk
        return {
            "fiches": PLAN_FICHES.lignes(beneficiaire=pk),
            "axes": PLAN_AXES.lignes(beneficiaire=pk),
            "financeurs": PLAN_FINANCEURS.lignes(beneficiaire=pk),
        }

    def content(self, *more) -> str:
        """A digest of all that the whole plan's page body shows: the rows its queries read
        (the fiches in the order of their keys), the beneficiary, the day, the version of
        the filter form, ``more`` (the reader's right to edit) and the code. A body rendered
        for the same digest is the same body."""
        rows = self._whole_rows
        fiches = sorted(rows["fiches"], key=lambda row: row[0])
        beneficiaire = (self.beneficiaire.pk, self.beneficiaire.nom)
        return digest(
            (fiches, rows["axes"], rows["financeurs"], beneficiaire, self.today),
            (self.filter_version, more),
        )

    @cached_property
    def fragments(self) -> Fragments:
        """The parts of the page cached on their content — each fiche's row, the table by
        funder, the timeline and its CSS — read from the cache in one round trip (rendered
        when missing, then stored by the page with ``fragments.rendered``). Each fiche gets
        its ``row``."""
        wanted = {}
        rows = []
        for fiche in self.fiches:
            context = fiche_row_context(fiche)
            key = f"plan-fragment:row:{content_key(context)}"
            wanted[key] = ("actions/includes/fiche_row.html", lambda context=context: context)
            rows.append(key)
        if self.filter_version:
            # Keyed on the funders' catalogue and the code (the version), the plan (its
            # reset link) and its axes.
            axes = content_key(self.axes_key)
            key = f"plan-fragment:filter:{self.beneficiaire.pk}:{self.filter_version}:{axes}"
            wanted[key] = (
                "actions/includes/plan_filter.html",
                lambda: {"form": self.empty_filter(), "beneficiaire": self.beneficiaire},
            )
            self.filter_key = key
        if self.financeurs:
            wanted[self._financeurs_key] = (
                "actions/includes/financeurs_table.html",
                lambda: {
                    "financeurs": self.financeurs,
                    "statuts": self.statuts,
                    "totaux_statut": self.totaux_statut,
                    "totals": self.totals,
                    "filtered": self.filtered,
                },
            )
        if self.timeline:
            wanted[self._timeline_key] = (
                "actions/includes/timeline.html",
                lambda: {"timeline": self.timeline, "rows": self.timeline_rows},
            )
            wanted[self._timeline_css_key] = (
                "actions/includes/timeline_css.html",
                lambda: {"timeline": self.timeline},
            )
        fragments = Fragments(wanted)
        for fiche, key in zip(self.fiches, rows, strict=True):
            fiche.row = fragments[key]
        return fragments

    @cached_property
    def axes(self) -> list[tuple[Axe, list[FicheAction]]]:
        """Each axis with its fiches; when filtered, only the axes with a retained fiche."""
        self.fragments  # noqa: B018 (each fiche's row)
        by_axe: dict[int, list[FicheAction]] = {}
        for fiche in self.fiches:
            by_axe.setdefault(fiche.axe_id, []).append(fiche)
        return [
            (axe, by_axe.get(axe.pk, []))
            for axe in self._axes
            if by_axe.get(axe.pk) or not self.filtered
        ]

    @property
    def rendered(self) -> dict[str, str]:
        """The fragments rendered for this page (missing from the cache), to store."""
        fragments = self.__dict__.get("fragments")
        return fragments.rendered if fragments else {}

    @cached_property
    def _axes_and_totals(self) -> tuple[list[Axe], dict[int, dict]]:
        if self.whole:
            return plan_axes_with_totals(self.beneficiaire, self._whole_rows["axes"])
        par_axe = totals_by_axe(self.queryset)
        return axes_with_totals(self.beneficiaire, self.queryset, par_axe), par_axe

    @property
    def _axes(self) -> list[Axe]:
        return self._axes_and_totals[0]

    @property
    def axes_key(self) -> str:
        """What the filter form shows of the plan: its axes (all of them, filtered or not)."""
        return repr([(axe.pk, str(axe)) for axe in self._axes])

    @property
    def _par_axe(self) -> dict[int, dict]:
        return self._axes_and_totals[1]

    @cached_property
    def totals(self) -> dict:
        return totals_of(self._par_axe)

    @cached_property
    def _financement(self) -> tuple[list[LigneFinanceur], list[Decimal]]:
        if self.whole:
            return plan_financement_par_financeur(self.beneficiaire, self._whole_rows["financeurs"])
        return financement_par_financeur(self.queryset)

    @property
    def financeurs(self) -> list[LigneFinanceur]:
        return self._financement[0]

    @property
    def totaux_statut(self) -> list[Decimal]:
        return self._financement[1]

    @property
    def _financeurs_key(self) -> str:
        """The content of the table of financing by funder, which it is cached on."""
        content = [self.financeurs, self.statuts, self.totaux_statut, self.totals, self.filtered]
        return f"plan-fragment:financeurs:{content_key(content)}"

    @property
    def financeurs_table(self) -> str:
        return self.fragments[self._financeurs_key]

    @cached_property
    def timeline(self) -> dict | None:
        return timeline(self.fiches, self.today)

    @cached_property
    def timeline_rows(self) -> list[str]:
        """The timeline's rows (timeline_bar.html), each rendered only when it changed. A bar's
        position is in the page's CSS, not in its row: a row is not rendered again because
        the timeline's span changed (a later end, a new year, a search)."""
        contexts = [
            {"bar": {k: v for k, v in bar.items() if k not in ("left", "width")}, "n": n}
            for n, bar in enumerate(self.timeline["bars"], 1)
        ]
        return render_each("actions/includes/timeline_bar.html", contexts)

    @cached_property
    def _timeline_content(self) -> str:
        """The timeline's content: its markup and CSS are cached on it, so a change of the
        plan that moves no bar does not render them again."""
        return content_key(self.timeline)

    @property
    def _timeline_key(self) -> str:
        return f"plan-fragment:timeline:{self._timeline_content}"

    @property
    def _timeline_css_key(self) -> str:
        return f"plan-fragment:timeline-css:{self._timeline_content}"

    @property
    def timeline_html(self) -> str:
        return self.fragments[self._timeline_key]

    @property
    def timeline_css(self) -> str:
        return self.fragments[self._timeline_css_key] if self.timeline else ""
