"""The steering figures of governance, for the préfecture's and the national dashboards
(tableaux/dashboards.py) : instances late (no meeting held in the last 12 / minimum-per-year
months), relevés de décisions not published 15 days after the meeting, follow-ups overdue.
A fixed number of queries (three, in one round trip), whatever the number of instances."""

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, F, QuerySet, Window

from communes.models import Beneficiaire
from pvd.db import DansLaListe, Lot, Preparee, Valeur, ensemble

from .models import Decision, Instance, Releve, Reunion, Suite

NB_LISTEES = 10  # late instances listed by name
# Cached by the dashboards per territory (tableaux/dashboards.py ``pilotage_cached``) under
# this family of versions: what it reads, with each model's path to the beneficiary
# (tableaux/signals.py watches their writes; an instance of a département or a région has
# no beneficiary: its own département or région is renewed, read on the instance).
FAMILLE = "gouvernance"
READS = {
    Beneficiaire: "",  # a beneficiary changing département takes its instances along
    Instance: "beneficiaire",
    Reunion: "instance__beneficiaire",
    Releve: "reunion__instance__beneficiaire",
    Decision: "reunion__instance__beneficiaire",
    Suite: "decision__reunion__instance__beneficiaire",
}


@dataclass(frozen=True)
class Pilotage:
    instances_en_retard: list[Instance]
    nb_instances_en_retard: int
    nb_releves_non_publies: int
    nb_suites_en_retard: int


def _instances(national: bool) -> QuerySet:
    """Every instance (France), or those of the départements in the ``codes`` slot: theirs,
    and their beneficiaries'."""
    if national:
        return Instance.objects.all()
    return Instance.objects.filter(
        DansLaListe(F("departement_id"), Valeur("codes"))
        | DansLaListe(F("beneficiaire__departement_id"), Valeur("codes"))
    )


def _en_retard(variante: tuple) -> QuerySet:
    national, today = variante
    return (
        _instances(national)
        .en_retard(today)
        .annotate(total=Window(Count("pk")))
        .order_by("echeance", "nom")
        .values_list("pk", "nom", "echeance", "derniere", "total")[:NB_LISTEES]
    )


def _compte(queryset: QuerySet) -> QuerySet:
    """How many rows: the count on the first row (none when there is none)."""
    return queryset.order_by().annotate(n=Window(Count("pk"))).values_list("n")[:1]


def _releves(variante: tuple) -> QuerySet:
    national, today = variante
    reunions = Reunion.objects.filter(instance__in=_instances(national).values("pk"))
    return _compte(reunions.releve_attendu(today))


def _suites(variante: tuple) -> QuerySet:
    national, today = variante
    suites = Suite.objects.filter(decision__reunion__instance__in=_instances(national).values("pk"))
    return _compte(suites.en_retard(today))


# Built and compiled once per process and day (pvd/db.py ``Preparee``): on a dashboard
# computed again, building and compiling them cost more than running them.
EN_RETARD, RELEVES, SUITES = Preparee(_en_retard), Preparee(_releves), Preparee(_suites)


def requetes(departements: list[str] | None, today: date) -> list[tuple]:
    """The three queries of ``pilotage``, as (query, variant, values)."""
    variante = (departements is None, today)
    codes = list(departements or [])
    return [(requete, variante, {"codes": codes}) for requete in (EN_RETARD, RELEVES, SUITES)]


def pilotage(departements: list[str] | None, today: date, lot: Lot | None = None) -> Pilotage:
    """The figures over the instances of these départements (a préfecture's), or of France
    (``None``). ``lot``: the page's queries, these sent with them."""
    # The three in one round trip (pvd/db.py ``ensemble``), with the page's others if given.
    en_retard, releves, suites = (lot.ensemble if lot else ensemble)(*requetes(departements, today))
    late = []
    for pk, nom, echeance, derniere, total in en_retard:
        instance = Instance(pk=pk, nom=nom)
        instance.echeance, instance.derniere, instance.total = echeance, derniere, total
        late.append(instance)
    ((releves,),) = releves or [(0,)]
    ((suites,),) = suites or [(0,)]
    return Pilotage(
        instances_en_retard=late,
        nb_instances_en_retard=late[0].total if late else 0,
        nb_releves_non_publies=releves,
        nb_suites_en_retard=suites,
    )
