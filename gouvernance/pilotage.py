"""The steering figures of governance, for the préfecture's and the national dashboards
(tableaux/dashboards.py) : instances late (no meeting held in the last 12 / minimum-per-year
months), relevés de décisions not published 15 days after the meeting, follow-ups overdue.
A fixed number of queries (three), whatever the number of instances."""

from dataclasses import dataclass
from datetime import date

from django.db.models import Count, Q, QuerySet, Window

from communes.models import Beneficiaire

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


def departements_q(codes, prefix: str = "") -> Q:
    """Instances of these départements: theirs, and their beneficiaries'."""
    return Q(**{f"{prefix}departement_id__in": codes}) | Q(
        **{f"{prefix}beneficiaire__departement_id__in": codes}
    )


def pilotage(instances: QuerySet, today: date) -> Pilotage:
    """The figures over ``instances`` (an Instance QuerySet: a préfecture's, or France's)."""
    late = list(
        instances.en_retard(today)
        .select_related("beneficiaire", "departement", "region")
        .annotate(total=Window(Count("pk")))
        .order_by("echeance", "nom")[:NB_LISTEES]
    )
    reunions = Reunion.objects.filter(instance__in=instances.values("pk"))
    suites = Suite.objects.filter(decision__reunion__instance__in=instances.values("pk"))
    return Pilotage(
        instances_en_retard=late,
        nb_instances_en_retard=late[0].total if late else 0,
        nb_releves_non_publies=reunions.releve_attendu(today).count(),
        nb_suites_en_retard=suites.en_retard(today).count(),
    )
