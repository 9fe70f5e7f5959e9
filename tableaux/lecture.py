"""What each role's dashboard shows, read from the database in a fixed number of queries.

The delivery buckets and the plan's totals come from the plan read-model (actions/plan.py),
the convention-cadre deadline from conventions/echeances.py, the chefs de projet from the
postes app. Every figure is an aggregate computed by PostgreSQL (GROUP BY, conditional
aggregates, correlated subqueries), never by looping over rows in Python; every queryset
starts from ``for_user``, so another territory's figures never enter a total.
"""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import partial
from operator import attrgetter
from typing import NamedTuple

from django.db.models import (
    BooleanField,
    CharField,
    Count,
    DateField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, Concat
from django.db.models.lookups import Exact

from actions.models import (
    SANS_MISE_A_JOUR,
    Axe,
    FicheAction,
    Financeur,
    Indicateur,
    LigneFinancement,
    Mesure,
    abandonnee_q,
    en_retard_q,
    finie_q,
    sans_fin_q,
)
from actions.plan import (
    MONEY,
    PLAN_FINANCEURS,
    ZERO,
    LigneFinanceur,
    Livraison,
    lignes_comptees,
    livraison_case,
    plan_financement_par_financeur,
    reste_et_depassement,
)
from communes.models import (
    Beneficiaire,
    Departement,
    MembreBeneficiaire,
    Region,
    normalize,
)
from conventions.echeances import SANS_DATE_ADHESION, Echeance, with_echeances
from conventions.models import (
    ALERTE_ECHEANCE,
    DELAI_CONVENTION_CADRE,
    HORIZON_FIN_CONVENTION,
    Convention,
    finissante_q,
)
from postes.models import Occupation, Poste, actuelle_q
from pvd.db import (
    ArraySubquery,
    DansLaListe,
    Parametre,
    Preparee,
    StringAgg,
    Valeur,
    ensemble,
)

# The models these read-models query, each with its path to the beneficiary whose
# territory a write touches ("": the beneficiary itself; None: every territory, the funders'
# catalogue): a write to one of them renews the cached dashboards' versions of that
# beneficiary, its département, its région and the programme (tableaux/signals.py;
# tests/tableaux/test_dashboard_sources.py checks the list against the SQL a dashboard runs).
READS = {
    FicheAction: "beneficiaire",
    Axe: "beneficiaire",
    LigneFinancement: "fiche__beneficiaire",
    Financeur: None,
    Indicateur: "fiche__beneficiaire",
    Mesure: "indicateur__fiche__beneficiaire",
    Beneficiaire: "",
    MembreBeneficiaire: "beneficiaire",
    Convention: "beneficiaire",
    Poste: "beneficiaires",
    Poste.beneficiaires.through: "beneficiaire",
    Occupation: "poste__beneficiaires",
}

STATUTS = LigneFinancement.Statut
PAYES = (STATUTS.NOTIFIE, STATUTS.VERSE)  # money decided: notified or already paid
# What a plan adds up to leaves abandoned fiches out (actions/plan.py).
COMPTEE = ~abandonnee_q()
# Part of the cache key of the programme's figures: raise it when their shape changes.
VERSION = 2
NB_RETARDS = 10  # late fiches listed on the élu's dashboard


def _bucket_counts(prefix: str) -> dict:
    """One conditional count per delivery bucket, over fiches reached through ``prefix``."""
    case = livraison_case(prefix)
    return {
        f"nb_{bucket}": Count(f"{prefix}pk", filter=Exact(case, Value(bucket)))
        for bucket in Livraison.values
    }


def _status_sums(prefix: str) -> dict:
    return {
        f"m_{statut}": Coalesce(
            Sum(f"{prefix}montant", filter=Q(**{f"{prefix}statut": statut})),
            Value(ZERO),
            output_field=MONEY,
        )
        for statut in STATUTS.values
    }


# The élu's « Où en est ma ville ? » -------------------------------------------------------


@dataclass
class Ville:
    beneficiaire: Beneficiaire
    today: date
    totals: dict
    buckets: list[tuple[str, str, int]]
    par_statut: list[tuple[str, str, Decimal]]
    financeurs: list
    retards: list[FicheAction]
    nb_retards: int
    echeance: Echeance
    chefs: list[Occupation]
    postes_vacants: list[date | None]  # since when each vacant post is vacant
    indicateurs: list[Indicateur]
    nb_sans_fin: int = 0  # not finished, no planned end: lateness unknown
    sans_nouvelles: list[FicheAction] = field(default_factory=list)
    # The next deadlines the reminders will speak of: contracts and conventions ending.
    fins_de_contrat: list[Occupation] = field(default_factory=list)
    conventions_finissantes: list[dict] = field(default_factory=list)

    @property
    def nb_suivies(self) -> int:
        """Fiches in a bucket (an abandoned one is in none)."""
        return sum(n for _, _, n in self.buckets)


def _convention_finissante(ligne: str) -> dict:
    pk, type_, fin = ligne.split("|")
    return {
        "pk": int(pk),
        "type": Convention.Type(type_).label,
        "date_fin": date.fromisoformat(fin),
    }


# Each query of the dashboard is built and compiled once per process (``Preparee``), then run
# with the beneficiary and the day in its slots: for one beneficiary, building and compiling
# these querysets cost several times what PostgreSQL spends running them.


def _beneficiaire_slot() -> Parametre:
    return Parametre("beneficiaire", IntegerField())


def _jour_slot(nom: str = "jour") -> Parametre:
    return Parametre(nom, DateField())


def _fiches_du_beneficiaire() -> QuerySet:
    return FicheAction.objects.filter(beneficiaire_id=_beneficiaire_slot())


VILLE_FICHES = [
    *(f"nb_{bucket}" for bucket in Livraison.values),
    "nb_fiches",
    "cout",
    "nb_abandonnees",
    "cout_abandonne",
    "nb_retards",
    "nb_sans_fin",
]


def _ville_fiches(_variante) -> QuerySet:
    """The plan's counts and costs: per bucket, counted, abandoned, late and without an end
    (one row, none without a fiche). Only what the dashboard shows: its rows are the key of
    its rendered fragment, so a figure read and not shown (the last update's time) would
    render it again after every edit."""
    return (
        _fiches_du_beneficiaire()
        .order_by()
        .values("beneficiaire_id")
        .annotate(
            **_bucket_counts(""),
            nb_fiches=Count("pk", filter=COMPTEE),
            cout=Sum("cout_total", filter=COMPTEE),
            nb_abandonnees=Count("pk", filter=abandonnee_q()),
            cout_abandonne=Sum("cout_total", filter=abandonnee_q()),
            nb_retards=Count("pk", filter=en_retard_q(_jour_slot())),
            nb_sans_fin=Count("pk", filter=sans_fin_q()),
        )
        .values_list(*VILLE_FICHES)
    )


RETARD = ("id", "reference", "titre", "date_fin_prevue")


def _ville_retards(_variante) -> QuerySet:
    return (
        _fiches_du_beneficiaire()
        .filter(en_retard_q(_jour_slot()))
        .order_by("date_fin_prevue", "reference")
        .values_list(*RETARD)[:NB_RETARDS]
    )


def _ville_echeances(_variante) -> QuerySet:
    """The convention-cadre's deadline, the vacant posts since when, and the conventions
    ending soon (the rule rappels.regles.fin_de_convention reminds of), as « id|type|end »
    strings: one column for the array."""
    beneficiaire = OuterRef("pk")
    vacants = (
        Poste.objects.filter(beneficiaires=beneficiaire, etat=Poste.Etat.VACANT)
        .order_by("vacant_depuis")
        .values("vacant_depuis")
    )
    finissantes = (
        Convention.objects.filter(beneficiaire=beneficiaire)
        .filter(finissante_q(_jour_slot(), horizon=_jour_slot("horizon_convention")))
        .order_by("date_fin", "pk")
        .values(
            ligne=Concat(
                Cast("pk", CharField()),
                Value("|"),
                "type",
                Value("|"),
                Cast("date_fin", CharField()),
                output_field=CharField(),
            )
        )
    )
    return (
        with_echeances(Beneficiaire.objects.filter(pk=_beneficiaire_slot()))
        .annotate(vacants=ArraySubquery(vacants), finissantes=ArraySubquery(finissantes))
        .values_list("date_adhesion", "cadre_signee", "date_cadre", "vacants", "finissantes")
    )


CHEF = (
    "id",
    "poste_id",
    "prenom",
    "nom",
    "email",
    "telephone",
    "date_debut",
    "date_fin_contrat",
    "date_fin",
)


def _ville_chefs(_variante) -> QuerySet:
    return (
        Occupation.objects.filter(actuelle_q(_jour_slot()))
        .filter(poste__beneficiaires=_beneficiaire_slot())
        .order_by("nom", "prenom")
        .values_list(*CHEF)
    )


INDICATEUR = ("id", "fiche_id", "libelle", "unite", "cible")


def _ville_indicateurs(_variante) -> QuerySet:
    derniere = Mesure.objects.filter(indicateur=OuterRef("pk")).order_by("-date", "-pk")
    return (
        Indicateur.objects.filter(fiche__beneficiaire_id=_beneficiaire_slot())
        .annotate(
            valeur=Subquery(derniere.values("valeur")[:1]),
            date_valeur=Subquery(derniere.values("date")[:1]),
        )
        .order_by("fiche__reference", "libelle")
        .values_list(*INDICATEUR, "fiche__reference", "valeur", "date_valeur")
    )


SANS_NOUVELLES = ("id", "reference", "titre", "updated_at")


def _ville_sans_nouvelles(_variante) -> QuerySet:
    return (
        _fiches_du_beneficiaire()
        .exclude(finie_q())
        .filter(updated_at__date__lt=_jour_slot("limite_mise_a_jour"))
        .order_by("updated_at")
        .values_list(*SANS_NOUVELLES)[:NB_RETARDS]
    )


VILLE = {
    "fiches": Preparee(_ville_fiches),
    # The plan's financing by funder: the plan page's own query (actions/plan.py).
    "financeurs": PLAN_FINANCEURS,
    **{
        name: Preparee(build)
        for name, build in {
            "retards": _ville_retards,
            "echeances": _ville_echeances,
            "chefs": _ville_chefs,
            "indicateurs": _ville_indicateurs,
            "sans_nouvelles": _ville_sans_nouvelles,
        }.items()
    },
}


def _loaded(model, names: tuple, row) -> object:
    """A model instance from a prepared query's row, as ``.only(*names)`` would load it
    (``names``: attribute names, ``id`` for the primary key)."""
    return model.from_db(None, list(names), row[: len(names)])


def ville_lignes(beneficiaire_pk: int, today: date, *, chef_de_projet: bool = False) -> dict:
    """The rows of the beneficiary's dashboard as its queries return them, by query name:
    plain values (numbers, texts, dates), what ``ville`` builds the dashboard from. Six
    queries (seven for a chef de projet), whatever the size of the plan, each compiled once
    per process, sent together in one round trip and prepared by PostgreSQL (``ensemble``)."""
    slots = {
        "beneficiaire": beneficiaire_pk,
        "jour": today,
        "horizon_convention": today + HORIZON_FIN_CONVENTION,
        "limite_mise_a_jour": today - SANS_MISE_A_JOUR,
    }
    queries = {
        name: query for name, query in VILLE.items() if chef_de_projet or name != "sans_nouvelles"
    }
    lignes = ensemble(*((query, None, slots) for query in queries.values()))
    return dict(zip(queries, lignes, strict=True))


def ville(
    beneficiaire: Beneficiaire,
    today: date,
    *,
    chef_de_projet: bool = False,
    lignes: dict | None = None,
) -> Ville:
    """The beneficiary's dashboard (``beneficiaire`` already checked with ``for_user``),
    from its rows (``ville_lignes``, read here when not given)."""
    if lignes is None:
        lignes = ville_lignes(beneficiaire.pk, today, chef_de_projet=chef_de_projet)
    rows = lignes.__getitem__
    fiches = dict(zip(VILLE_FICHES, (rows("fiches") or [None])[0] or [], strict=False))  # 1
    counts = [fiches.get(f"nb_{bucket}", 0) for bucket in Livraison.values]
    lignes, par_statut = plan_financement_par_financeur(beneficiaire, rows("financeurs"))  # 2
    totals = {
        "nb_fiches": fiches.get("nb_fiches", 0),
        "cout": fiches.get("cout") or ZERO,
        "nb_abandonnees": fiches.get("nb_abandonnees", 0),
        "cout_abandonne": fiches.get("cout_abandonne") or ZERO,
        "finance": sum((ligne.total for ligne in lignes), ZERO),
    }
    totals["reste"], totals["depassement"] = reste_et_depassement(totals["cout"], totals["finance"])
    retards = [_loaded(FicheAction, RETARD, row) for row in rows("retards")]  # 3
    date_adhesion, cadre_signee, date_cadre, vacants, finissantes = rows("echeances")[0]  # 4
    chefs = [_loaded(Occupation, CHEF, row) for row in rows("chefs")]  # 5
    indicateurs = []
    for row in rows("indicateurs"):  # 6
        indicateur = _loaded(Indicateur, INDICATEUR, row)
        reference, indicateur.valeur, indicateur.date_valeur = row[len(INDICATEUR) :]
        indicateur.fiche = FicheAction.from_db(
            None, ["id", "reference"], [indicateur.fiche_id, reference]
        )
        indicateurs.append(indicateur)
    result = Ville(
        beneficiaire=beneficiaire,
        today=today,
        totals=totals,
        buckets=[
            (value, label, n) for (value, label), n in zip(Livraison.choices, counts, strict=True)
        ],
        par_statut=[
            (value, label, amount)
            for (value, label), amount in zip(STATUTS.choices, par_statut, strict=True)
        ],
        financeurs=lignes,
        retards=retards,
        nb_retards=fiches.get("nb_retards", 0),
        nb_sans_fin=fiches.get("nb_sans_fin", 0),
        echeance=Echeance(date_adhesion, cadre_signee, date_cadre, today),
        chefs=chefs,
        fins_de_contrat=[chef for chef in chefs if chef.is_contrat_finissant(today)],
        conventions_finissantes=[_convention_finissante(ligne) for ligne in finissantes],
        postes_vacants=vacants,
        indicateurs=indicateurs,
    )
    if chef_de_projet:
        result.sans_nouvelles = [
            _loaded(FicheAction, SANS_NOUVELLES, row) for row in rows("sans_nouvelles")
        ]  # 7
    return result


# The préfecture's table --------------------------------------------------------------------

SORTS = {
    "nom": "nom",
    "departement": "departement_id",
    "echeance": "date_adhesion",
    "part": "part_decidee",
    "retards": "nb_retards",
    "maj": "derniere_maj",
    "livrees": f"nb_{Livraison.LIVREE}",
}


# The columns of the préfecture's table, each query's (``beneficiaires_table``).
COLONNES_BENEFICIAIRE = (
    "pk",
    "nom",
    "departement_id",
    "statut",
    "date_adhesion",
    "cadre_signee",
    "date_cadre",
    "chefs_en_poste",
    "vacants",
)
COLONNES_FICHES = (
    "nb_fiches",
    "nb_retards",
    "nb_sans_fin",
    "derniere_maj",
    "cout",
    *(f"nb_{bucket}" for bucket in Livraison.values),
)
COLONNES_ARGENT = tuple(f"m_{statut}" for statut in STATUTS.values)


def _table_beneficiaires(today: date) -> QuerySet:
    """The beneficiaries of the ``ids`` slot by name, with their dates and posts."""
    en_poste = (
        Occupation.objects.actuelles(today)
        .filter(poste__beneficiaires=OuterRef("pk"))
        .order_by()
        .values("poste__beneficiaires")
        .annotate(noms=StringAgg("nom", ", ", order_by=("nom",)))
        .values("noms")
    )
    # Since when each vacant post is vacant (None: unknown), one subquery for both columns
    # the table shows (an ``Exists`` beside it made PostgreSQL hash every vacant post).
    vacants = Poste.objects.filter(beneficiaires=OuterRef("pk"), etat=Poste.Etat.VACANT).values(
        "vacant_depuis"
    )
    return (
        with_echeances(Beneficiaire.objects.filter(DansLaListe(F("pk"), Valeur("ids"))))
        .annotate(chefs_en_poste=Subquery(en_poste[:1]), vacants=ArraySubquery(vacants))
        .order_by("nom")
        .values_list(*COLONNES_BENEFICIAIRE)
    )


def _table_fiches(today: date) -> QuerySet:
    """The fiches of the ``ids`` slot's beneficiaries, counted and added up per beneficiary
    and delivery bucket (None: abandoned), which ``beneficiaires_table`` adds up per
    beneficiary: the bucket's ``CASE`` is computed once a fiche, not once per bucket."""
    return (
        FicheAction.objects.filter(DansLaListe(F("beneficiaire_id"), Valeur("ids")))
        .order_by()
        .annotate(livraison=livraison_case())
        .values("beneficiaire", "livraison")
        .annotate(
            nb=Count("pk"),
            nb_retards=Count("pk", filter=en_retard_q(today)),
            nb_sans_fin=Count("pk", filter=sans_fin_q()),
            derniere_maj=Max("updated_at"),
            cout=Sum("cout_total"),
        )
        .values_list(
            "beneficiaire", "livraison", "nb", "nb_retards", "nb_sans_fin", "derniere_maj", "cout"
        )
    )


def _fiches_par_beneficiaire(lignes: list) -> dict[int, list]:
    """``_table_fiches``'s rows added up per beneficiary, in ``COLONNES_FICHES``'s order: the
    fiches counted (abandoned ones left out, as their cost), late and without end date, the
    last update (of any fiche), the cost, and the fiches per bucket."""
    par_beneficiaire: dict[int, dict] = {}
    for pk, bucket, nb, retards, sans_fin, maj, cout in lignes:
        total = par_beneficiaire.get(pk)
        if total is None:
            total = par_beneficiaire[pk] = {
                **dict.fromkeys(COLONNES_FICHES, 0),
                "derniere_maj": None,
                "cout": None,
            }
        total["nb_retards"] += retards
        total["nb_sans_fin"] += sans_fin
        if maj is not None and (total["derniere_maj"] is None or maj > total["derniere_maj"]):
            total["derniere_maj"] = maj
        if bucket is not None:  # counted: not abandoned
            total["nb_fiches"] += nb
            total[f"nb_{bucket}"] += nb
            if cout is not None:
                total["cout"] = cout if total["cout"] is None else total["cout"] + cout
    for total in par_beneficiaire.values():
        if total["cout"] is None:  # no counted fiche with a cost
            total["cout"] = ZERO
    return {pk: [total[name] for name in COLONNES_FICHES] for pk, total in par_beneficiaire.items()}


def _table_argent(_) -> QuerySet:
    """The money of the ``ids`` slot's beneficiaries' counted fiches, per status."""
    return (
        LigneFinancement.objects.filter(DansLaListe(F("fiche__beneficiaire_id"), Valeur("ids")))
        .filter(~abandonnee_q("fiche__"))
        .order_by()
        .values("fiche__beneficiaire")
        .annotate(**_status_sums(""))
        .values_list("fiche__beneficiaire", *COLONNES_ARGENT)
    )


# Built and compiled once per process and day (pvd/db.py): for a table of a few dozen rows,
# building and compiling these querysets costs more than running them.
TABLE_BENEFICIAIRES = Preparee(_table_beneficiaires)
TABLE_FICHES = Preparee(_table_fiches)
TABLE_ARGENT = Preparee(_table_argent)


def beneficiaires_table(beneficiaires: QuerySet | list, today: date, tri: str = "nom") -> list:
    """One row per beneficiary: adhésion and cadre dates, cost and money decided, fiches per
    bucket and late, last update of the plan, chef de projet in post or vacant since —
    four queries in two round trips whatever the number of beneficiaries: the beneficiaries'
    ids, then together the
    beneficiaries by name with their dates and posts, their fiches grouped by beneficiary,
    their financing lines grouped by beneficiary (a dozen correlated subqueries a row cost
    five times more to plan and run). Sorted on ``tri`` (a key of ``SORTS``, « - » first:
    descending), unknown values last, then by name."""
    ids = (  # 1 (or given: ``beneficiaires`` as a list of ids)
        list(beneficiaires.values_list("pk", flat=True))
        if isinstance(beneficiaires, QuerySet)
        else beneficiaires
    )
    if not ids:
        return []
    # 2, 3, 4: in one round trip (pvd/db.py ``ensemble``).
    lignes_fiches, lignes_argent, lignes_beneficiaires = ensemble(
        (TABLE_FICHES, today, {"ids": ids}),
        (TABLE_ARGENT, None, {"ids": ids}),
        (TABLE_BENEFICIAIRES, today, {"ids": ids}),
    )
    fiches = _fiches_par_beneficiaire(lignes_fiches)
    argent = {pk: values for pk, *values in lignes_argent}
    vide_fiches = [0, 0, 0, None, ZERO, *(0 for _ in Livraison.values)]
    vide_argent = [ZERO] * len(COLONNES_ARGENT)
    rows = []
    for values in lignes_beneficiaires:
        row = Beneficiaire(**dict(zip(COLONNES_BENEFICIAIRE[:4], values[:4], strict=True)))
        pk = row.pk
        *dates, vacants = values[4:]
        for names, found in (
            (COLONNES_BENEFICIAIRE[4:-1], dates),
            (COLONNES_FICHES, fiches.get(pk, vide_fiches)),
            (COLONNES_ARGENT, argent.get(pk, vide_argent)),
        ):
            for name, value in zip(names, found, strict=True):
                setattr(row, name, value)
        # The earliest known vacancy (a post vacant since an unknown day: « Vacant »), the
        # deadline and whether it cannot be computed, from the dates read: the rules of
        # conventions/echeances.py (``Echeance``, ``SANS_DATE_ADHESION``) on the row.
        connues = [depuis for depuis in vacants if depuis is not None]
        row.vacant_depuis = min(connues) if connues else None
        row.has_vacant = bool(vacants)
        echeance = Echeance.of(row, today)
        row.date_limite_cadre = echeance.date_limite
        row.sans_date_adhesion = row.statut == Beneficiaire.Statut.LAUREAT and echeance.inconnue
        row.decide = sum((getattr(row, f"m_{statut}") for statut in PAYES), ZERO)
        row.part_decidee = row.decide * 100 / row.cout if row.cout else None
        rows.append(row)
    return _trie(rows, tri)


def _trie(rows: list, tri: str) -> list:
    """The rows (by name) sorted on ``tri``, unknown values last, ties kept by name."""
    name = SORTS[tri.lstrip("-")]
    descending = tri.startswith("-")
    if name == "nom":  # already in the database's order of names
        return rows[::-1] if descending else rows
    known = [row for row in rows if getattr(row, name) is not None]
    known.sort(key=attrgetter(name), reverse=descending)  # stable: ties stay by name
    return known + [row for row in rows if getattr(row, name) is None]


# What the préfecture's table adds up per département (``totaux_du_tableau``).
TOTAUX = (
    "nb_fiches",
    "nb_retards",
    "nb_sans_fin",
    "cout",
    *(f"nb_{bucket}" for bucket in Livraison.values),
    *(f"m_{statut}" for statut in STATUTS.values),
)


def totaux_du_tableau(rows: list) -> dict:
    """The préfecture's table's totals per département: the sums of its rows (each already
    aggregated by ``beneficiaires_table``), as ``totaux_par`` would count them, no query."""
    totaux: dict = {}
    for row in rows:
        total = totaux.setdefault(
            row.departement_id,
            {"nb_beneficiaires": 0, "sans_date_adhesion": 0, **dict.fromkeys(TOTAUX, 0)},
        )
        total["nb_beneficiaires"] += 1
        total["sans_date_adhesion"] += row.sans_date_adhesion
        for name in TOTAUX:
            total[name] += getattr(row, name)
    return totaux


def part(decide: Decimal, cout: Decimal) -> Decimal | None:
    """The share of the cost notified or paid, in percent (None without a known cost)."""
    if not cout:
        return None
    return (100 * decide / cout).quantize(Decimal("1"))


def totaux_par(beneficiaires: QuerySet, key: str, today: date) -> list[dict]:
    """Counts and sums of the given beneficiaries grouped by ``key`` (a path from
    Beneficiaire: ``departement``, ``departement__region``), three GROUP BY queries."""
    benef = {
        row[key]: row
        for row in with_echeances(beneficiaires)
        .order_by()
        .values(key)
        .annotate(
            nb_beneficiaires=Count("pk", distinct=True),
            sans_date_adhesion=Count("pk", filter=SANS_DATE_ADHESION, distinct=True),
        )
    }
    fiches = FicheAction.objects.filter(beneficiaire__in=beneficiaires)
    for row in (
        fiches.order_by()
        .values(f"beneficiaire__{key}")
        .annotate(
            nb_fiches=Count("pk", filter=COMPTEE),
            nb_retards=Count("pk", filter=en_retard_q(today)),
            nb_sans_fin=Count("pk", filter=sans_fin_q()),
            cout=Coalesce(Sum("cout_total", filter=COMPTEE), Value(ZERO), output_field=MONEY),
            **_bucket_counts(""),
        )
    ):
        benef.setdefault(row.pop(f"beneficiaire__{key}"), {}).update(row)
    for row in (
        LigneFinancement.objects.filter(fiche__beneficiaire__in=beneficiaires)
        .filter(~abandonnee_q("fiche__"))
        .order_by()
        .values(f"fiche__beneficiaire__{key}")
        .annotate(**_status_sums(""))
    ):
        benef.setdefault(row.pop(f"fiche__beneficiaire__{key}"), {}).update(row)
    return benef


# The programme's figures (national, région, département) ----------------------------------


@dataclass
class Chiffres:
    """The programme's figures for one territory (France, a région or a département)."""

    nb_beneficiaires: int = 0
    nb_communes: int = 0
    adhesions: int = 0
    cadres: int = 0
    cadres_attendues: int = 0
    cadres_en_retard: int = 0
    # Lauréats without a signed convention-cadre, and among them those whose adhésion date is
    # unknown: their deadline cannot be computed, so « attendues » and « en retard » miss them.
    laureats_sans_cadre: int = 0
    sans_date_adhesion: int = 0
    cadres_sans_date: int = 0  # signed (national tracking) on an unknown day
    postes_pourvus: int = 0
    postes_vacants: int = 0
    fin_contrat_90j: int = 0
    vacants_sans_date: int = 0
    sans_fin_contrat: int = 0
    nb_fiches: int = 0
    nb_retards: int = 0
    nb_sans_fin: int = 0
    cout: Decimal = ZERO
    buckets: list = field(default_factory=list)
    montants: list = field(default_factory=list)
    par_axe: list = field(default_factory=list)
    financeurs: list = field(default_factory=list)

    @classmethod
    def vide(cls) -> "Chiffres":
        """The figures of a territory without an active beneficiary."""
        return cls(
            buckets=[(value, label, 0) for value, label in Livraison.choices],
            montants=[(value, label, ZERO) for value, label in STATUTS.choices],
        )


def _grouped(queryset: QuerySet, key: str | None, **aggregates) -> dict:
    """``aggregates`` per value of ``key`` (a path from the queryset's model), in one GROUP BY
    query; over the whole queryset, as ``{None: …}``, when ``key`` is None."""
    queryset = queryset.order_by()
    if key is None:
        return {None: queryset.aggregate(**aggregates)}
    return {row.pop(key): row for row in queryset.values(key).annotate(**aggregates)}


def _path(prefix: str, key: str | None) -> str | None:
    return None if key is None else f"{prefix}{key}"


def chiffres(beneficiaires: QuerySet, today: date) -> Chiffres:
    """The figures of the given beneficiaries (already restricted to the territory and to
    what the user reads), in five queries."""
    return chiffres_par(beneficiaires, None, today)[None]


def chiffres_par(beneficiaires: QuerySet, key: str | None, today: date) -> dict:
    """The figures of the given beneficiaries per value of ``key`` (a path from
    Beneficiaire: ``departement``, ``departement__region``; None: all of them together), in
    five GROUP BY queries whatever the number of territories. Returns {value: Chiffres};
    a territory without an active beneficiary is missing (``Chiffres.vide``)."""
    actifs = beneficiaires.filter(statut__in=Beneficiaire.STATUTS_ACTIFS)
    limite = today - DELAI_CONVENTION_CADRE
    # Joined to the member communes: every count is distinct.
    conv = _grouped(
        with_echeances(actifs),
        key,
        nb_beneficiaires=Count("pk", distinct=True),
        nb_communes=Count("membres__commune", filter=Q(membres__actif=True), distinct=True),
        adhesions=Count("pk", filter=Q(date_adhesion__isnull=False), distinct=True),
        cadres=Count("pk", filter=Q(cadre_signee=True), distinct=True),
        cadres_en_retard=Count(
            "pk", filter=Q(cadre_signee=False, date_adhesion__lt=limite), distinct=True
        ),
        cadres_attendues=Count(
            "pk",
            filter=Q(
                cadre_signee=False,
                date_adhesion__gte=limite,
                date_adhesion__lte=limite + ALERTE_ECHEANCE,
            ),
            distinct=True,
        ),
        laureats_sans_cadre=Count(
            "pk", filter=Q(statut=Beneficiaire.Statut.LAUREAT, cadre_signee=False), distinct=True
        ),
        sans_date_adhesion=Count("pk", filter=SANS_DATE_ADHESION, distinct=True),
        cadres_sans_date=Count(
            "pk", filter=Q(cadre_signee=True, date_cadre__isnull=True), distinct=True
        ),
    )  # 1
    # Distinct: a post is joined once per beneficiary it serves and per person it had.
    postes = _grouped(
        Poste.objects.filter(beneficiaires__in=actifs),
        _path("beneficiaires__", key),
        postes_pourvus=Count("pk", filter=Q(etat=Poste.Etat.POURVU), distinct=True),
        postes_vacants=Count("pk", filter=Q(etat=Poste.Etat.VACANT), distinct=True),
        # What the reminders cannot date: a vacancy since an unknown day, a fixed-term
        # contract of the person in post with no planned end.
        vacants_sans_date=Count(
            "pk", filter=Q(etat=Poste.Etat.VACANT, vacant_depuis__isnull=True), distinct=True
        ),
        sans_fin_contrat=Count(
            "pk",
            filter=Q(
                type_contrat__in=[Poste.TypeContrat.CONTRAT_DE_PROJET, Poste.TypeContrat.CDD],
                occupations__date_debut__lte=today,
                occupations__date_fin__isnull=True,
                occupations__date_fin_contrat__isnull=True,
            ),
            distinct=True,
        ),
        fin_contrat_90j=Count(
            "pk",
            filter=Exists(
                Occupation.objects.filter(poste=OuterRef("pk")).contrats_finissants(today)
            ),
            distinct=True,
        ),
    )  # 2
    fiches = FicheAction.objects.filter(beneficiaire__in=actifs)
    par_fiche = _path("beneficiaire__", key)
    agg = _grouped(
        fiches,
        par_fiche,
        nb_fiches=Count("pk", filter=COMPTEE),
        nb_retards=Count("pk", filter=en_retard_q(today)),
        nb_sans_fin=Count("pk", filter=sans_fin_q()),
        cout=Coalesce(Sum("cout_total", filter=COMPTEE), Value(ZERO), output_field=MONEY),
        **_bucket_counts(""),
    )  # 3
    axes: dict = {}
    for row in (
        fiches.filter(COMPTEE)
        .order_by()
        .values(*filter(None, [par_fiche, "axe__numero"]))
        .annotate(nb=Count("pk"), **_bucket_counts(""))
        .order_by("axe__numero")
    ):  # 4
        axes.setdefault(row[par_fiche] if par_fiche else None, []).append(
            (row["axe__numero"], [row["nb"], *(row[f"nb_{b}"] for b in Livraison.values)])
        )
    financement = financement_par(fiches, _path("fiche__beneficiaire__", key))  # 5
    result = {}
    for value in {*conv, *agg, *postes, *financement}:
        figures = Chiffres()
        for part in (conv, postes, agg):
            for name, number in part.get(value, {}).items():
                if name in Chiffres.__dataclass_fields__:  # not the buckets' counts
                    setattr(figures, name, number)
        counts = agg.get(value, {})
        figures.buckets = [
            (bucket, label, counts.get(f"nb_{bucket}", 0)) for bucket, label in Livraison.choices
        ]
        figures.par_axe = axes.get(value, [])
        figures.financeurs, colonnes = financement.get(value, ([], [ZERO] * len(STATUTS.values)))
        figures.montants = [
            (statut, label, amount)
            for (statut, label), amount in zip(STATUTS.choices, colonnes, strict=True)
        ]
        result[value] = figures
    if key is None and None not in result:
        result[None] = Chiffres.vide()
    return result


def financement_par(fiches: QuerySet, key: str | None) -> dict:
    """Financing by funder and status (actions/plan.py ``financement_par_financeur``) per
    value of ``key`` (a path from the financing line), in one query: {value: (lines, column
    totals)}."""
    statuts = list(STATUTS.values)
    rows = (
        lignes_comptees(fiches)
        .order_by()
        .values(*filter(None, [key, "financeur__nom", "financeur__ordre"]))
        .annotate(
            total=Sum("montant"),
            **{f"s_{statut}": Sum("montant", filter=Q(statut=statut)) for statut in statuts},
        )
        .order_by("financeur__ordre", "financeur__nom")
    )
    lignes: dict = {}
    for row in rows:
        lignes.setdefault(row[key] if key else None, []).append(
            LigneFinanceur(
                row["financeur__nom"],
                [row[f"s_{statut}"] or ZERO for statut in statuts],
                row["total"],
            )
        )
    return {
        value: (
            rows,
            [sum((ligne.montants[i] for ligne in rows), ZERO) for i in range(len(statuts))],
        )
        for value, rows in lignes.items()
    }


class Territoire(NamedTuple):
    """A région or département of the programme's rows: its code and name, as kept in the
    cache with the figures (lighter to read back than a model instance)."""

    code: str
    nom: str


def programme(level: str, code: str | None, beneficiaires: QuerySet, today: date) -> dict:
    """The programme's figures for France (rows: régions), a région (rows: départements) or
    a département (rows: beneficiaries); ``beneficiaires`` already restricted to the
    territory and to what the reader reads."""
    actifs = beneficiaires.filter(statut__in=Beneficiaire.STATUTS_ACTIFS)
    figures: dict = {"chiffres": chiffres(beneficiaires, today), "calcule_le": None}
    if level == "departement":
        figures["lignes_beneficiaires"] = lignes_beneficiaires(actifs, today)
    else:
        rows, group = territoires(level, code)
        totaux = totaux_par(actifs, group, today)
        figures["lignes_territoires"] = [
            (Territoire(*t), totaux.get(t[0], {})) for t in rows.values_list("code", "nom")
        ]
    return figures


def lignes_beneficiaires(actifs: QuerySet, today: date) -> list[Beneficiaire]:
    """The rows of a département's programme page (and its export): each beneficiary by
    name, with its adhésion date, its fiches counted (followed, late, per bucket), their cost
    and the money notified or paid — three GROUP BY queries whatever the number of
    beneficiaries, so that every département's rows are computed at once as cheaply as one's
    (the préfecture's ``beneficiaires_table`` runs a dozen correlated subqueries a row)."""
    rows = list(with_echeances(actifs).order_by("nom"))  # 1
    fiches = _grouped(
        FicheAction.objects.filter(beneficiaire__in=actifs),
        "beneficiaire",
        nb_fiches=Count("pk", filter=COMPTEE),
        nb_retards=Count("pk", filter=en_retard_q(today)),
        cout=Coalesce(Sum("cout_total", filter=COMPTEE), Value(ZERO), output_field=MONEY),
        **_bucket_counts(""),
    )  # 2
    decide = _grouped(
        LigneFinancement.objects.filter(fiche__beneficiaire__in=actifs, statut__in=PAYES).filter(
            ~abandonnee_q("fiche__")
        ),
        "fiche__beneficiaire",
        decide=Coalesce(Sum("montant"), Value(ZERO), output_field=MONEY),
    )  # 3
    vide = {"nb_fiches": 0, "nb_retards": 0, "cout": ZERO}
    vide.update({f"nb_{bucket}": 0 for bucket in Livraison.values})
    for row in rows:
        for name, value in {**vide, **fiches.get(row.pk, {})}.items():
            setattr(row, name, value)
        row.decide = decide.get(row.pk, {}).get("decide", ZERO)
    return rows


def programmes(level: str, beneficiaires: QuerySet, today: date, codes: list) -> dict:
    """``programme`` for every territory of a level at once (France; every région; every
    département), as {code: figures}: the same queries as one territory's, grouped by
    territory (five for the figures, three or one for the rows), whatever their number."""
    if level == "france":
        return {None: programme("france", None, beneficiaires, today)}
    actifs = beneficiaires.filter(statut__in=Beneficiaire.STATUTS_ACTIFS)
    key = "departement__region" if level == "region" else "departement"
    par_territoire = chiffres_par(beneficiaires, key, today)
    result = {
        code: {"chiffres": par_territoire.get(code) or Chiffres.vide(), "calcule_le": None}
        for code in codes
    }
    if level == "departement":
        for code in codes:
            result[code]["lignes_beneficiaires"] = []
        for row in lignes_beneficiaires(actifs, today):
            if row.departement_id in result:
                result[row.departement_id]["lignes_beneficiaires"].append(row)
    else:
        for code in codes:
            result[code]["lignes_territoires"] = []
        totaux = totaux_par(actifs, "departement", today)
        for departement, nom, region in Departement.objects.order_by("code").values_list(
            "code", "nom", "region_id"
        ):
            if region in result:
                result[region]["lignes_territoires"].append(
                    (Territoire(departement, nom), totaux.get(departement, {}))
                )
    return result


def territoires(level: str, code: str | None):
    """The rows to drill down into: régions of France, départements of a région."""
    if level == "france":
        return Region.objects.order_by("nom"), "departement__region"
    return Departement.objects.filter(region_id=code).order_by("code"), "departement"


def fiches_par_bucket(
    beneficiaire: Beneficiaire, today: date
) -> list[tuple[str, list[FicheAction]]]:
    """The plan's fiches in their delivery buckets, in reference order, each knowing whether
    it is late on ``today`` (one query)."""
    from actions.plan import reference_order

    rows = (
        FicheAction.objects.filter(beneficiaire=beneficiaire)
        .annotate(
            livraison=livraison_case(),
            late=ExpressionWrapper(en_retard_q(today), output_field=BooleanField()),
        )
        .filter(COMPTEE)
        .only("reference", "titre", "date_fin_prevue", "cout_total", "maturite", "avancement")
        .order_by(*reference_order())
    )
    buckets: dict[str, list[FicheAction]] = {value: [] for value in Livraison.values}
    for fiche in rows:
        buckets[fiche.livraison].append(fiche)
    return [(label, buckets[value]) for value, label in Livraison.choices]


def argent_du_financeur(
    beneficiaires: QuerySet, financeurs: list, *keys: str, par: str | None = None
) -> dict:
    """The funders' lines over the given beneficiaries, by each of ``keys`` (paths from the
    financing line: ``fiche__beneficiaire__departement__nom``, ``fiche__axe__numero``) and
    status: one GROUP BY query over all the keys together, whose few rows (territories ×
    axes) are then added up per key. Returns {key: [{key: value, "total", "m_<statut>"}]};
    with ``par`` (a path from the line: a territory), one such dict per value of ``par``,
    still in one query."""
    rows = (
        LigneFinancement.objects.filter(
            fiche__beneficiaire__in=beneficiaires, financeur__in=financeurs
        )
        .filter(~abandonnee_q("fiche__"))
        .order_by()
        .values(*filter(None, [par, *keys]))
        .annotate(total=Sum("montant"), **_status_sums(""))
    )
    sums = ["total", *(f"m_{statut}" for statut in STATUTS.values)]
    grouped: dict = {}
    for row in rows:
        result = grouped.setdefault(row[par] if par else None, {key: {} for key in keys})
        for key in keys:
            group = result[key].setdefault(row[key], {key: row[key], **dict.fromkeys(sums, ZERO)})
            for name in sums:
                group[name] += row[name]
    sorted_ = {
        value: {key: sorted(rows.values(), key=partial(_ordre, key)) for key, rows in r.items()}
        for value, r in grouped.items()
    }
    if par:
        return sorted_
    return sorted_.get(None, {key: [] for key in keys})


# Where a partner's money goes, per level: the rows' key and, to compute every territory of
# the level at once, the territory's path.
PARTENAIRE = {
    "france": ("fiche__beneficiaire__departement__region__nom", None),
    "region": ("fiche__beneficiaire__departement__nom", "fiche__beneficiaire__departement__region"),
    "departement": ("fiche__beneficiaire__nom", "fiche__beneficiaire__departement"),
}
AXE = "fiche__axe__numero"


def _partenaire(financeurs: list, key: str, argent: dict) -> dict:
    return {
        "financeurs": financeurs,
        "par_territoire": [(row[key], row) for row in argent.get(key, [])],
        "par_axe": [(row[AXE], row) for row in argent.get(AXE, [])],
    }


def partenaire(level: str, actifs: QuerySet, financeurs: list) -> dict:
    """Where a partner's money goes in a territory: by sub-territory and by axis (one GROUP
    BY query)."""
    key = PARTENAIRE[level][0]
    return _partenaire(financeurs, key, argent_du_financeur(actifs, financeurs, key, AXE))


def partenaires(level: str, beneficiaires: QuerySet, financeurs: list, codes: list) -> dict:
    """``partenaire`` for every territory of a level at once, as {code: …}: one query."""
    actifs = beneficiaires.filter(statut__in=Beneficiaire.STATUTS_ACTIFS)
    key, par = PARTENAIRE[level]
    if par is None:
        return {code: partenaire(level, actifs, financeurs) for code in codes}
    argent = argent_du_financeur(actifs, financeurs, key, AXE, par=par)
    return {code: _partenaire(financeurs, key, argent.get(code, {})) for code in codes}


def _ordre(key: str, group: dict) -> tuple:
    """Territories by name without accents (« Île-de-France » among the I), axes by number."""
    value = group[key]
    return (value is None, normalize(value) if isinstance(value, str) else value or 0)
