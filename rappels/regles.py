"""The catalogue of reminder rules: each derives its due dates from the source dates, every day.

A rule returns the reminders due today as ``Echeance`` values; nothing about them is stored
until the sweep records a sending (rappels/models.py). Because the due date is computed from
the source date each time, changing that date moves the future reminders, and a resolved
situation (convention-cadre signed, fiche achieved, post filled) simply yields nothing.

Only the latest due date on or before today counts, and only within ``RATTRAPAGE`` days: a
sweep that did not run for three days sends each missed reminder once on its return, and an
old situation seen for the first time gives one reminder, not its whole history.
Each rule is one or two set queries over the whole country (never one per object).

The rules are a registry (``REGLES``, ``LIBELLES``): a rule is one function decorated with
``@regle(libellé)`` that returns its candidates, the rows of one or two set queries, with the
function that makes a row a reminder (``Echeance``, several, or None when nothing is due).
A row that function cannot read is logged and skipped: no single record stops the sweep.

Each rule's docstring says when its situation is over. A recorded reminder stays open while
its rule, run over every open situation (``OUVERTES``), still gives the same object with the
same due date; otherwise it is closed (``Rappel.resolu_le``): at once on the save that
resolves it (rappels/signals.py), and at the next sweep. A moved date closes the old reminder
and gives one new one.
"""

import logging
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache, wraps

from dateutil.relativedelta import relativedelta
from django.db.models import Max, Q
from django.urls import reverse
from django.utils.formats import date_format

from pvd.policy import CHEF_PROJET, ELUS, PREFECTURE

from .models import Categorie

logger = logging.getLogger(__name__)

RATTRAPAGE = timedelta(days=31)
# The catch-up window that sees every situation still open, whenever it began: the sweep and
# the saves that may resolve a reminder compare the open reminders with it (rappels/sweep.py).
OUVERTES = timedelta(days=36500)
TITRE_MAX = 120

# None: the whole country; else the ids of the beneficiaries to look at (a save resolving).
Scope = Collection[int] | None


def _scope(field: str, beneficiaires: Scope) -> Q:
    return Q() if beneficiaires is None else Q(**{f"{field}__in": beneficiaires})


def _scoped(queryset, field: str, beneficiaires: Scope):
    return queryset.filter(_scope(field, beneficiaires))


def _postes_scope(field: str, beneficiaires: Scope) -> Q:
    """Posts serving one of ``beneficiaires`` (a subquery: no duplicate rows)."""
    if beneficiaires is None:
        return Q()
    from postes.models import Poste

    through = Poste.beneficiaires.through.objects.filter(beneficiaire_id__in=beneficiaires)
    return Q(**{f"{field}__in": through.values("poste_id")})


@dataclass(frozen=True)
class Echeance:
    regle: str
    categorie: str
    objet: str
    echeance: date
    # None for an instance of a département or a région: ``departement_id`` / ``region_id``.
    beneficiaire_id: int | None
    message: str
    lien: str
    audiences: tuple[str, ...]
    # Named people told besides the audiences (the person responsible for a follow-up; the
    # préfecture, for an instance of a département or a région).
    destinataires: tuple[int, ...] = ()
    departement_id: str | None = None
    region_id: str | None = None


# A rule's candidates: its rows, and what makes one row its reminders.
Candidates = tuple[Iterable[tuple], Callable[[tuple], "Echeance | Iterable[Echeance] | None"]]
Regle = Callable[..., Iterator[Echeance]]

REGLES: list[Regle] = []
LIBELLES: dict[str, str] = {}


def regle(libelle: str) -> Callable[[Callable[..., Candidates]], Regle]:
    """Register a rule: ``candidates(today, rattrapage, beneficiaires)`` gives its rows and
    the function that makes each row its reminders; the rule yields them, skipping (and
    logging) a row that function fails on. ``libelle`` names its e-mails."""

    def register(candidates: Callable[..., Candidates]) -> Regle:
        @wraps(candidates)
        def rule(
            today: date, rattrapage: timedelta = RATTRAPAGE, beneficiaires: Scope = None, **scope
        ) -> Iterator[Echeance]:
            rows, build = candidates(today, rattrapage, beneficiaires, **scope)
            for row in rows:
                try:
                    made = build(row)
                except Exception:
                    logger.exception(
                        "Reminder rule %s skipped the record %s", candidates.__name__, row[0]
                    )
                    continue
                if isinstance(made, Echeance):
                    yield made
                elif made is not None:
                    yield from made

        REGLES.append(rule)
        LIBELLES[candidates.__name__] = libelle
        return rule

    return register


def latest_due(dates, today: date, rattrapage: timedelta = RATTRAPAGE) -> date | None:
    """The last of the due dates that has come, if it came within the catch-up window."""
    passed = [d for d in dates if d <= today]
    if not passed:
        return None
    last = max(passed)
    return last if last >= today - rattrapage else None


@lru_cache
def _url_pattern(name: str) -> str:
    return reverse(name, args=[999999999]).replace("999999999", "{}")


def link(name: str, pk: int) -> str:
    """reverse(name, args=[pk]) without resolving the URLconf for each of thousands of rows."""
    return _url_pattern(name).format(pk)


@lru_cache(maxsize=1024)
def long_date(d: date) -> str:
    return date_format(d, "j F Y")


def short(text: str) -> str:
    return text if len(text) <= TITRE_MAX else text[: TITRE_MAX - 1] + "…"


# Conventions ----------------------------------------------------------------------------------


@regle("Convention-cadre attendue")
def convention_cadre(today: date, rattrapage: timedelta, beneficiaires: Scope) -> Candidates:
    """Due 18 months after the adhésion: at 12, 15 and 17 months, on the day, then monthly.
    Over once a convention-cadre is signed (a moved adhésion date moves the reminder)."""
    from communes.models import Beneficiaire
    from conventions.echeances import with_echeances
    from conventions.models import DELAI_CONVENTION_CADRE

    oldest = today - relativedelta(months=12)
    rows = (
        with_echeances(_scoped(Beneficiaire.objects.order_by(), "pk", beneficiaires))
        .filter(cadre_signee=False, date_adhesion__lte=oldest)
        .values_list("pk", "nom", "date_adhesion")
    )

    def build(row) -> Echeance | None:
        pk, nom, adhesion = row
        limite = adhesion + DELAI_CONVENTION_CADRE
        months_late = max(0, (today.year - limite.year) * 12 + today.month - limite.month)
        dates = [adhesion + relativedelta(months=m) for m in (12, 15, 17)] + [
            limite + relativedelta(months=k) for k in range(months_late + 1)
        ]
        due = latest_due(dates, today, rattrapage)
        if due is None:
            return None
        if due >= limite:
            message = f"{nom} : la convention-cadre était attendue le {long_date(limite)}."
        else:
            message = f"{nom} : la convention-cadre est attendue le {long_date(limite)}."
        return Echeance(
            "convention_cadre",
            Categorie.CONVENTIONS,
            f"beneficiaire:{pk}",
            due,
            pk,
            message,
            link("communes:beneficiaire-detail", pk),
            (CHEF_PROJET, ELUS, PREFECTURE),
        )

    return rows, build


@regle("Fin de convention")
def fin_de_convention(today: date, rattrapage: timedelta, beneficiaires: Scope) -> Candidates:
    """A convention in force (the convention-cadre valant ORT included) ends within
    ``HORIZON_FIN_CONVENTION``. Over once it ended, was terminated, or its end date moved
    beyond the horizon."""
    from conventions.models import HORIZON_FIN_CONVENTION, Convention

    rows = (
        Convention.objects.finissantes(today)
        .order_by()
        .filter(_scope("beneficiaire_id", beneficiaires))
        .values_list("pk", "type", "beneficiaire_id", "beneficiaire__nom", "date_fin")
    )
    labels = dict(Convention.Type.choices)

    def build(row) -> Echeance | None:
        pk, type_, beneficiaire_id, nom, fin = row
        due = latest_due([fin - HORIZON_FIN_CONVENTION], today, rattrapage)
        if due is None:
            return None
        return Echeance(
            "fin_de_convention",
            Categorie.CONVENTIONS,
            f"convention:{pk}",
            due,
            beneficiaire_id,
            f"{nom} : la {labels[type_].lower()} prend fin le {long_date(fin)}.",
            link("conventions:detail", pk),
            (PREFECTURE, CHEF_PROJET),
        )

    return rows, build


# Action plans ---------------------------------------------------------------------------------


@regle("Fiche action en retard")
def fiche_en_retard(today: date, rattrapage: timedelta, beneficiaires: Scope) -> Candidates:
    """A fiche whose planned end has passed while it is not achieved (nor delivered, dropped).
    Over once it is achieved, delivered or dropped, or its planned end moves."""
    from actions.models import FicheAction

    rows = (
        FicheAction.objects.en_retard(today)
        .filter(date_fin_prevue__gte=today - rattrapage - timedelta(days=1))
        .filter(_scope("beneficiaire_id", beneficiaires))
        .order_by()
        .values_list("pk", "titre", "beneficiaire_id", "beneficiaire__nom", "date_fin_prevue")
    )

    def build(row) -> Echeance | None:
        pk, titre, beneficiaire_id, nom, fin = row
        due = latest_due([fin + timedelta(days=1)], today, rattrapage)
        if due is None:
            return None
        return Echeance(
            "fiche_en_retard",
            Categorie.PLANS,
            f"fiche:{pk}",
            due,
            beneficiaire_id,
            f"{nom} : la fiche « {short(titre)} » devait s'achever le {long_date(fin)}.",
            link("actions:fiche", pk),
            (CHEF_PROJET,),
        )

    return rows, build


@regle("Plan d'action sans mise à jour")
def plan_sans_mise_a_jour(today: date, rattrapage: timedelta, beneficiaires: Scope) -> Candidates:
    """A plan none of whose fiches changed for ``SANS_MISE_A_JOUR`` (then as often again).
    Over once a fiche of the plan is saved."""
    from actions.models import SANS_MISE_A_JOUR, FicheAction

    rows = (
        FicheAction.objects.order_by()
        .filter(_scope("beneficiaire_id", beneficiaires))
        .values("beneficiaire_id", "beneficiaire__nom")
        .annotate(last=Max("updated_at"))
        .filter(last__lte=_aware(today - SANS_MISE_A_JOUR))
        .values_list("beneficiaire_id", "beneficiaire__nom", "last")
    )

    def build(row) -> Echeance | None:
        beneficiaire_id, nom, last = row
        last_day = last.date()
        months = (today.year - last_day.year) * 12 + today.month - last_day.month
        periods = months // SANS_MISE_A_JOUR.months + 1
        dates = [last_day + SANS_MISE_A_JOUR * q for q in range(1, periods + 1)]
        due = latest_due(dates, today, rattrapage)
        if due is None:
            return None
        return Echeance(
            "plan_sans_mise_a_jour",
            Categorie.PLANS,
            f"plan:{beneficiaire_id}",
            due,
            beneficiaire_id,
            f"{nom} : le plan d'action n'a pas été mis à jour depuis le {long_date(last_day)}.",
            link("actions:plan", beneficiaire_id),
            (CHEF_PROJET, PREFECTURE),
        )

    return rows, build


@regle("Mesure d'indicateur attendue")
def mesure_indicateur(today: date, rattrapage: timedelta, beneficiaires: Scope) -> Candidates:
    """An indicator with a frequency is due for a measure one period after its last measure
    (none yet: after the start of its action or its creation, whichever is later), then at
    each further period; a new measure moves them on. An abandoned fiche asks for nothing.
    Over once a measure is entered (or the frequency removed, the fiche dropped)."""
    from django.db.models.functions import Coalesce, Greatest, TruncDate

    from actions.models import MOIS_PAR_FREQUENCE, Indicateur, abandonnee_q

    cree_le = TruncDate("created_at")
    debut = Coalesce("fiche__date_debut_reelle", "fiche__date_debut_prevue")
    # The same base as actions.models.mesure_base; PostgreSQL's GREATEST skips a NULL start.
    base = Coalesce(Max("mesures__date"), Greatest(debut, cree_le))
    # Only indicators with (about) one period passed since their base: a set filter in SQL,
    # three days loose for the ends of months (31 January + 1 month = 28 February).
    passed = Q()
    for frequence, mois in MOIS_PAR_FREQUENCE.items():
        limit = today - relativedelta(months=mois) + timedelta(days=3)
        passed |= Q(frequence=frequence, base__lte=limit)
    rows = (
        Indicateur.objects.exclude(frequence="")
        .exclude(abandonnee_q("fiche__"))
        .filter(_scope("fiche__beneficiaire_id", beneficiaires))
        .order_by()
        .annotate(base=base)
        .filter(passed)
        .values_list(
            "pk",
            "libelle",
            "frequence",
            "fiche_id",
            "fiche__reference",
            "fiche__beneficiaire_id",
            "fiche__beneficiaire__nom",
            "base",
        )
    )
    labels = dict(Indicateur.Frequence.choices)

    def build(row) -> Echeance | None:
        pk, libelle, frequence, fiche_id, reference, beneficiaire_id, nom, base_day = row
        due = _last_period_due(base_day, MOIS_PAR_FREQUENCE[frequence], today, rattrapage)
        if due is None:
            return None
        return Echeance(
            "mesure_indicateur",
            Categorie.PLANS,
            f"indicateur:{pk}",
            due,
            beneficiaire_id,
            f"{nom} : une mesure {labels[frequence].lower()} de l'indicateur « {short(libelle)} » "
            f"(fiche {reference}) est attendue depuis le {long_date(due)}.",
            link("actions:indicateurs", fiche_id),
            (CHEF_PROJET,),
        )

    return rows, build


@lru_cache(maxsize=4096)
def _last_period_due(base: date, mois: int, today: date, rattrapage: timedelta) -> date | None:
    """The last of base + k periods (k ≥ 1) on or before today, if within the catch-up window.
    Cached: measures are mostly taken on the same few dates (ends of months, of quarters)."""
    periods = ((today.year - base.year) * 12 + today.month - base.month) // mois
    while periods > 0 and base + relativedelta(months=periods * mois) > today:
        periods -= 1
    if periods == 0:
        return None
    return latest_due([base + relativedelta(months=periods * mois)], today, rattrapage)


def _aware(day: date):
    from datetime import datetime, time

    from django.utils import timezone

    return timezone.make_aware(datetime.combine(day, time.min))


# Posts of chefs de projet ---------------------------------------------------------------------


def _postes_beneficiaires(poste_ids) -> dict[int, list[tuple[int, str]]]:
    from postes.models import Poste

    result: dict[int, list[tuple[int, str]]] = {}
    rows = Poste.beneficiaires.through.objects.filter(poste_id__in=poste_ids).values_list(
        "poste_id", "beneficiaire_id", "beneficiaire__nom"
    )
    for poste_id, beneficiaire_id, nom in rows:
        result.setdefault(poste_id, []).append((beneficiaire_id, nom))
    return result


@regle("Poste vacant")
def poste_vacant(today: date, rattrapage: timedelta, beneficiaires: Scope) -> Candidates:
    """A post vacant (or being recruited) for more than ``ALERTE_VACANCE``.
    Over once the post is filled (or set back to « à créer »)."""
    from postes.models import ALERTE_VACANCE, Poste

    rows = list(
        Poste.objects.filter(
            etat__in=Poste.ETATS_A_POURVOIR,
            vacant_depuis__lte=today - ALERTE_VACANCE,
        )
        .filter(_postes_scope("pk", beneficiaires))
        .order_by()
        .values_list("pk", "intitule", "vacant_depuis")
    )
    served = _postes_beneficiaires([row[0] for row in rows])

    def build(row) -> list[Echeance]:
        pk, intitule, depuis = row
        due = latest_due([depuis + ALERTE_VACANCE], today, rattrapage)
        return [
            Echeance(
                "poste_vacant",
                Categorie.POSTES,
                f"poste:{pk}",
                due,
                beneficiaire_id,
                f"{nom} : le poste « {short(intitule)} » est vacant depuis le {long_date(depuis)}.",
                link("postes:detail", pk),
                (PREFECTURE, ELUS),
            )
            for beneficiaire_id, nom in (served.get(pk, []) if due else [])
        ]

    return rows, build


@regle("Fin de contrat")
def fin_de_contrat(today: date, rattrapage: timedelta, beneficiaires: Scope) -> Candidates:
    """The contract of the chef de projet in post ends within ``HORIZON_FIN_CONTRAT``.
    Over once the person left, or the contract's end moved (renewed) or passed."""
    from postes.models import HORIZON_FIN_CONTRAT, Occupation

    rows = list(
        Occupation.objects.contrats_finissants(today)
        .filter(_postes_scope("poste_id", beneficiaires))
        .order_by()
        .values_list("pk", "poste_id", "poste__intitule", "date_fin_contrat")
    )
    served = _postes_beneficiaires([row[1] for row in rows])

    def build(row) -> list[Echeance]:
        pk, poste_id, intitule, fin = row
        due = latest_due([fin - HORIZON_FIN_CONTRAT], today, rattrapage)
        return [
            Echeance(
                "fin_de_contrat",
                Categorie.POSTES,
                f"occupation:{pk}",
                due,
                beneficiaire_id,
                f"{nom} : le contrat du poste « {short(intitule)} » prend fin le {long_date(fin)}.",
                link("postes:detail", poste_id),
                (PREFECTURE, ELUS),
            )
            for beneficiaire_id, nom in (served.get(poste_id, []) if due else [])
        ]

    return rows, build


@regle("Fin de cofinancement")
def fin_de_cofinancement(today: date, rattrapage: timedelta, beneficiaires: Scope) -> Candidates:
    """The co-financing of a filled post ends with its last funded year, within
    ``HORIZON_FIN_CONTRAT``. Over once a later year is notified (or the year ends)."""
    from postes.models import (
        HORIZON_FIN_CONTRAT,
        CofinancementAnnee,
        Poste,
        cofinancement_finissant,
    )

    rows = (
        CofinancementAnnee.objects.filter(lignes__montant_notifie__gt=0)
        .exclude(poste__etat=Poste.Etat.A_CREER)
        .filter(_postes_scope("poste_id", beneficiaires))
        .order_by()
        .values("poste_id", "poste__intitule")
        .annotate(derniere=Max("annee"))
        .filter(derniere=today.year)
        .values_list("poste_id", "poste__intitule", "derniere")
    )
    rows = list(rows) if cofinancement_finissant(today) else []
    served = _postes_beneficiaires([row[0] for row in rows])

    def build(row) -> list[Echeance]:
        poste_id, intitule, annee = row
        fin = date(annee, 12, 31)
        due = latest_due([fin - HORIZON_FIN_CONTRAT], today, rattrapage)
        return [
            Echeance(
                "fin_de_cofinancement",
                Categorie.POSTES,
                f"poste:{poste_id}",
                due,
                beneficiaire_id,
                f"{nom} : le cofinancement du poste « {short(intitule)} » n'est pas notifié "
                f"au-delà du {long_date(fin)}.",
                link("postes:detail", poste_id),
                (PREFECTURE, ELUS),
            )
            for beneficiaire_id, nom in (served.get(poste_id, []) if due else [])
        ]

    return rows, build


# Governance (gouvernance/) --------------------------------------------------------------------
# A beneficiary's instance (comité de projet…) reminds its people. An instance of a département
# or a région (CLCT, comité des financeurs…) has no beneficiary: its reminders are recorded on
# the département or the région and go to the préfecture(s) that keep it
# (``policy.territory_reminder_recipients``). A save resolving them scopes the rules to those
# territories (``territoires``: département codes, région codes; rappels/signals.py).

Territoires = tuple[Collection[str], Collection[str]]


def _instances_q(prefix: str, beneficiaires: Scope, territoires: Territoires | None) -> Q:
    """The instances a rule looks at: all; a save's beneficiaries' only; a save's
    départements' and régions' only."""
    if territoires is not None:
        departements, regions = territoires
        return Q(**{f"{prefix}departement_id__in": departements}) | Q(
            **{f"{prefix}region_id__in": regions}
        )
    return _scope(f"{prefix}beneficiaire_id", beneficiaires)


class _Territoire:
    """Where an instance's reminder is recorded, whose name it starts with, who gets it."""

    def __init__(self, rows, beneficiaire: int, departement: int, region: int):
        from pvd.policy import territory_reminder_recipients

        departements = {row[departement] for row in rows if row[beneficiaire] is None}
        regions = {row[region] for row in rows if row[beneficiaire] is None}
        self.prefets = (
            territory_reminder_recipients(departements - {None}, regions - {None})
            if departements | regions
            else ({}, {})
        )

    def fields(self, beneficiaire_id, departement_id, region_id, audiences) -> dict:
        if beneficiaire_id is not None:
            return {"audiences": audiences, "destinataires": ()}
        par_departement, par_region = self.prefets
        users = par_departement.get(departement_id) or par_region.get(region_id) or set()
        return {
            "audiences": (),
            "destinataires": tuple(sorted(users)),
            "departement_id": departement_id,
            "region_id": None if departement_id else region_id,
        }


@regle("Instance sans réunion")
def instance_en_retard(
    today: date,
    rattrapage: timedelta,
    beneficiaires: Scope,
    territoires: Territoires | None = None,
) -> Candidates:
    """An instance with no meeting held in the last 12 / minimum-per-year months: a
    beneficiary's (comité de projet…) to its chefs de projet and préfecture, a département's or
    région's (CLCT…) to its préfecture. Over once a meeting is marked held (the next one is
    then due one period after it)."""
    from django.db.models.functions import Coalesce

    from gouvernance.models import Instance

    rows = list(
        Instance.objects.en_retard(today)
        .filter(echeance__gte=today - rattrapage)
        .filter(_instances_q("", beneficiaires, territoires))
        .order_by()
        .annotate(territoire=Coalesce("beneficiaire__nom", "departement__nom", "region__nom"))
        .values_list(
            "pk",
            "nom",
            "beneficiaire_id",
            "territoire",
            "derniere",
            "echeance",
            "departement_id",
            "region_id",
        )
    )
    territoire = _Territoire(rows, 2, 6, 7)

    def build(row) -> Echeance | None:
        pk, nom_instance, beneficiaire_id, nom, derniere, echeance, dep, region = row
        due = latest_due([echeance], today, rattrapage)
        if due is None:
            return None
        depuis = f"depuis le {long_date(derniere)}" if derniere else "encore"
        return Echeance(
            "instance_en_retard",
            Categorie.GOUVERNANCE,
            f"instance:{pk}",
            due,
            beneficiaire_id,
            f"{nom} : « {short(nom_instance)} » ne s'est pas réuni {depuis} ; une réunion était "
            f"attendue le {long_date(echeance)}.",
            link("gouvernance:instance", pk),
            **territoire.fields(beneficiaire_id, dep, region, (CHEF_PROJET, PREFECTURE)),
        )

    return rows, build


@regle("Relevé de décisions non publié")
def releve_non_publie(
    today: date,
    rattrapage: timedelta,
    beneficiaires: Scope,
    territoires: Territoires | None = None,
) -> Candidates:
    """A meeting held ``DELAI_RELEVE`` ago whose relevé de décisions is not published.
    Over once the relevé is published."""
    from django.db.models.functions import Coalesce

    from gouvernance.models import DELAI_RELEVE, Reunion

    rows = list(
        Reunion.objects.releve_attendu(today)
        .filter(date__gte=today - DELAI_RELEVE - rattrapage)
        .filter(_instances_q("instance__", beneficiaires, territoires))
        .order_by()
        .annotate(
            territoire=Coalesce(
                "instance__beneficiaire__nom",
                "instance__departement__nom",
                "instance__region__nom",
            )
        )
        .values_list(
            "pk",
            "date",
            "instance__nom",
            "instance__beneficiaire_id",
            "territoire",
            "instance__departement_id",
            "instance__region_id",
        )
    )
    territoire = _Territoire(rows, 3, 5, 6)

    def build(row) -> Echeance | None:
        pk, day, nom_instance, beneficiaire_id, nom, dep, region = row
        due = latest_due([day + DELAI_RELEVE], today, rattrapage)
        if due is None:
            return None
        return Echeance(
            "releve_non_publie",
            Categorie.GOUVERNANCE,
            f"reunion:{pk}",
            due,
            beneficiaire_id,
            f"{nom} : le relevé de décisions de la réunion du {long_date(day)} "
            f"(« {short(nom_instance)} ») n'est pas publié.",
            link("gouvernance:reunion", pk),
            **territoire.fields(beneficiaire_id, dep, region, (CHEF_PROJET,)),
        )

    return rows, build


@regle("Suite à donner")
def suite_a_donner(
    today: date,
    rattrapage: timedelta,
    beneficiaires: Scope,
    territoires: Territoires | None = None,
) -> Candidates:
    """A follow-up of a decision (« suite à donner ») whose due date has come, to its person
    responsible and the beneficiary's chefs de projet (a département's or région's instance:
    its préfecture). Over once it is marked done (or its due date moves)."""
    from django.db.models.functions import Coalesce

    from gouvernance.models import Suite

    instance = "decision__reunion__instance__"
    rows = list(
        Suite.objects.a_faire()
        .filter(echeance__lte=today, echeance__gte=today - rattrapage)
        .filter(_instances_q(instance, beneficiaires, territoires))
        .order_by()
        .annotate(
            territoire=Coalesce(
                f"{instance}beneficiaire__nom",
                f"{instance}departement__nom",
                f"{instance}region__nom",
            )
        )
        .values_list(
            "pk",
            "intitule",
            "echeance",
            "responsable_id",
            "decision__reunion_id",
            f"{instance}beneficiaire_id",
            "territoire",
            f"{instance}departement_id",
            f"{instance}region_id",
        )
    )
    territoire = _Territoire(rows, 5, 7, 8)

    def build(row) -> Echeance | None:
        (pk, intitule, echeance, responsable_id, reunion_id, beneficiaire_id, nom, dep, region) = (
            row
        )
        due = latest_due([echeance], today, rattrapage)
        if due is None:
            return None
        fields = territoire.fields(beneficiaire_id, dep, region, (CHEF_PROJET,))
        fields["destinataires"] = (responsable_id, *fields["destinataires"])
        return Echeance(
            "suite_a_donner",
            Categorie.GOUVERNANCE,
            f"suite:{pk}",
            due,
            beneficiaire_id,
            f"{nom} : la suite à donner « {short(intitule)} » était attendue le "
            f"{long_date(echeance)}.",
            link("gouvernance:reunion", reunion_id),
            **fields,
        )

    return rows, build


# The rules a save of a département's or région's instance runs (scoped by ``territoires``).
REGLES_INSTANCES = [instance_en_retard, releve_non_publie, suite_a_donner]


def due_today(
    today: date,
    rattrapage: timedelta = RATTRAPAGE,
    beneficiaires: Scope = None,
    territoires: Territoires | None = None,
) -> Iterator[Echeance]:
    """Each rule on its own: one that fails (a stored value it cannot read) is logged and
    the others' reminders still go. ``territoires``: only the instances of those
    départements and régions (a save resolving them)."""
    for rule in REGLES if territoires is None else REGLES_INSTANCES:
        try:
            if territoires is None:
                dues = list(rule(today, rattrapage, beneficiaires))
            else:
                dues = list(rule(today, rattrapage, territoires=territoires))
        except Exception:
            logger.exception("Reminder rule %s failed on %s", rule.__name__, today)
            continue
        yield from dues
