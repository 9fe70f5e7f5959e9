"""The catalogue of reminder rules: each derives its due dates from the source dates, every day.

A rule returns the reminders due today as ``Echeance`` values; nothing about them is stored
until the sweep records a sending (rappels/models.py). Because the due date is computed from
the source date each time, changing that date moves the future reminders, and a resolved
situation (convention-cadre signed, fiche achieved, post filled) simply yields nothing.

Only the latest due date on or before today counts, and only within ``RATTRAPAGE`` days: a
sweep that did not run for three days sends each missed reminder once on its return, and an
old situation seen for the first time gives one reminder, not its whole history.
Each rule is one or two set queries over the whole country (never one per object).
"""

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from dateutil.relativedelta import relativedelta
from django.db.models import Max
from django.urls import reverse
from django.utils.formats import date_format

from pvd.policy import CHEF_PROJET, ELUS, PREFECTURE

from .models import Categorie

logger = logging.getLogger(__name__)

RATTRAPAGE = timedelta(days=31)
TITRE_MAX = 120


@dataclass(frozen=True)
class Echeance:
    regle: str
    categorie: str
    objet: str
    echeance: date
    beneficiaire_id: int
    message: str
    lien: str
    audiences: tuple[str, ...]


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


def convention_cadre(today: date, rattrapage: timedelta = RATTRAPAGE) -> Iterator[Echeance]:
    """Due 18 months after the adhésion: at 12, 15 and 17 months, on the day, then monthly."""
    from communes.models import Beneficiaire
    from conventions.echeances import with_echeances
    from conventions.models import DELAI_CONVENTION_CADRE

    oldest = today - relativedelta(months=12)
    rows = (
        with_echeances(Beneficiaire.objects.order_by())
        .filter(cadre_signee=False, date_adhesion__lte=oldest)
        .values_list("pk", "nom", "date_adhesion")
    )
    for pk, nom, adhesion in rows:
        limite = adhesion + DELAI_CONVENTION_CADRE
        months_late = max(0, (today.year - limite.year) * 12 + today.month - limite.month)
        dates = [adhesion + relativedelta(months=m) for m in (12, 15, 17)] + [
            limite + relativedelta(months=k) for k in range(months_late + 1)
        ]
        due = latest_due(dates, today, rattrapage)
        if due is None:
            continue
        if due >= limite:
            message = f"{nom} : la convention-cadre était attendue le {long_date(limite)}."
        else:
            message = f"{nom} : la convention-cadre est attendue le {long_date(limite)}."
        yield Echeance(
            "convention_cadre",
            Categorie.CONVENTIONS,
            f"beneficiaire:{pk}",
            due,
            pk,
            message,
            link("communes:beneficiaire-detail", pk),
            (CHEF_PROJET, ELUS, PREFECTURE),
        )


def fin_de_convention(today: date, rattrapage: timedelta = RATTRAPAGE) -> Iterator[Echeance]:
    """A signed convention (the convention-cadre valant ORT included) ends within six months."""
    from conventions.models import Convention

    rows = (
        Convention.objects.filter(
            statut__in=[Convention.Statut.SIGNEE, Convention.Statut.MODIFIEE],
            date_fin__gte=today,
            date_fin__lte=today + relativedelta(months=6),
        )
        .order_by()
        .values_list("pk", "type", "beneficiaire_id", "beneficiaire__nom", "date_fin")
    )
    labels = dict(Convention.Type.choices)
    for pk, type_, beneficiaire_id, nom, fin in rows:
        due = latest_due([fin - relativedelta(months=6)], today, rattrapage)
        if due is None:
            continue
        yield Echeance(
            "fin_de_convention",
            Categorie.CONVENTIONS,
            f"convention:{pk}",
            due,
            beneficiaire_id,
            f"{nom} : la {labels[type_].lower()} prend fin le {long_date(fin)}.",
            link("conventions:detail", pk),
            (PREFECTURE, CHEF_PROJET),
        )


# Action plans ---------------------------------------------------------------------------------


def fiche_en_retard(today: date, rattrapage: timedelta = RATTRAPAGE) -> Iterator[Echeance]:
    """A fiche whose planned end has passed while it is not achieved (nor delivered, dropped)."""
    from actions.models import FicheAction

    rows = (
        FicheAction.objects.en_retard(today)
        .filter(date_fin_prevue__gte=today - rattrapage - timedelta(days=1))
        .order_by()
        .values_list("pk", "titre", "beneficiaire_id", "beneficiaire__nom", "date_fin_prevue")
    )
    for pk, titre, beneficiaire_id, nom, fin in rows:
        due = latest_due([fin + timedelta(days=1)], today, rattrapage)
        if due is None:
            continue
        yield Echeance(
            "fiche_en_retard",
            Categorie.PLANS,
            f"fiche:{pk}",
            due,
            beneficiaire_id,
            f"{nom} : la fiche « {short(titre)} » devait s'achever le {long_date(fin)}.",
            link("actions:fiche", pk),
            (CHEF_PROJET,),
        )


def plan_sans_mise_a_jour(today: date, rattrapage: timedelta = RATTRAPAGE) -> Iterator[Echeance]:
    """A plan none of whose fiches changed for three months (then every three months)."""
    from actions.models import FicheAction

    rows = (
        FicheAction.objects.order_by()
        .values("beneficiaire_id", "beneficiaire__nom")
        .annotate(last=Max("updated_at"))
        .filter(last__lte=_aware(today - relativedelta(months=3)))
        .values_list("beneficiaire_id", "beneficiaire__nom", "last")
    )
    for beneficiaire_id, nom, last in rows:
        last_day = last.date()
        quarters = ((today.year - last_day.year) * 12 + today.month - last_day.month) // 3 + 1
        dates = [last_day + relativedelta(months=3 * q) for q in range(1, quarters + 1)]
        due = latest_due(dates, today, rattrapage)
        if due is None:
            continue
        yield Echeance(
            "plan_sans_mise_a_jour",
            Categorie.PLANS,
            f"plan:{beneficiaire_id}",
            due,
            beneficiaire_id,
            f"{nom} : le plan d'action n'a pas été mis à jour depuis le {long_date(last_day)}.",
            link("actions:plan", beneficiaire_id),
            (CHEF_PROJET, PREFECTURE),
        )


def mesure_indicateur(today: date, rattrapage: timedelta = RATTRAPAGE) -> Iterator[Echeance]:
    """An indicator with a frequency is due for a measure one period after its last measure
    (none yet: after the start of its action or its creation, whichever is later), then at
    each further period; a new measure moves them on. An abandoned fiche asks for nothing."""
    from django.db.models import Q
    from django.db.models.functions import Coalesce, Greatest, TruncDate

    from actions.models import MOIS_PAR_FREQUENCE, FicheAction, Indicateur

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
        .exclude(fiche__maturite=FicheAction.Maturite.ABANDONNEE)
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
    for pk, libelle, frequence, fiche_id, reference, beneficiaire_id, nom, base_day in rows:
        due = _last_period_due(base_day, MOIS_PAR_FREQUENCE[frequence], today, rattrapage)
        if due is None:
            continue
        yield Echeance(
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


def poste_vacant(today: date, rattrapage: timedelta = RATTRAPAGE) -> Iterator[Echeance]:
    """A post vacant (or being recruited) for more than two months."""
    from postes.models import Poste

    rows = list(
        Poste.objects.filter(
            etat__in=[Poste.Etat.VACANT, Poste.Etat.EN_RECRUTEMENT],
            vacant_depuis__lte=today - relativedelta(months=2),
        )
        .order_by()
        .values_list("pk", "intitule", "vacant_depuis")
    )
    beneficiaires = _postes_beneficiaires([row[0] for row in rows])
    for pk, intitule, depuis in rows:
        due = latest_due([depuis + relativedelta(months=2)], today, rattrapage)
        for beneficiaire_id, nom in beneficiaires.get(pk, []) if due else []:
            yield Echeance(
                "poste_vacant",
                Categorie.POSTES,
                f"poste:{pk}",
                due,
                beneficiaire_id,
                f"{nom} : le poste « {short(intitule)} » est vacant depuis le {long_date(depuis)}.",
                link("postes:detail", pk),
                (PREFECTURE, ELUS),
            )


def fin_de_contrat(today: date, rattrapage: timedelta = RATTRAPAGE) -> Iterator[Echeance]:
    """The contract of the chef de projet in post ends within 90 days."""
    from postes.models import Occupation

    rows = list(
        Occupation.objects.filter(
            date_fin__isnull=True,
            date_fin_contrat__gte=today,
            date_fin_contrat__lte=today + timedelta(days=90),
        )
        .order_by()
        .values_list("pk", "poste_id", "poste__intitule", "date_fin_contrat")
    )
    beneficiaires = _postes_beneficiaires([row[1] for row in rows])
    for pk, poste_id, intitule, fin in rows:
        due = latest_due([fin - timedelta(days=90)], today, rattrapage)
        for beneficiaire_id, nom in beneficiaires.get(poste_id, []) if due else []:
            yield Echeance(
                "fin_de_contrat",
                Categorie.POSTES,
                f"occupation:{pk}",
                due,
                beneficiaire_id,
                f"{nom} : le contrat du poste « {short(intitule)} » prend fin le {long_date(fin)}.",
                link("postes:detail", poste_id),
                (PREFECTURE, ELUS),
            )


def fin_de_cofinancement(today: date, rattrapage: timedelta = RATTRAPAGE) -> Iterator[Echeance]:
    """The co-financing of a filled post ends with its last funded year, within 90 days."""
    from postes.models import CofinancementAnnee, Poste

    rows = (
        CofinancementAnnee.objects.filter(lignes__montant_notifie__gt=0)
        .exclude(poste__etat=Poste.Etat.A_CREER)
        .order_by()
        .values("poste_id", "poste__intitule")
        .annotate(derniere=Max("annee"))
        .filter(derniere=today.year)
        .values_list("poste_id", "poste__intitule", "derniere")
    )
    rows = list(rows) if today >= date(today.year, 10, 3) else []
    beneficiaires = _postes_beneficiaires([row[0] for row in rows])
    for poste_id, intitule, annee in rows:
        fin = date(annee, 12, 31)
        due = latest_due([fin - timedelta(days=90)], today, rattrapage)
        for beneficiaire_id, nom in beneficiaires.get(poste_id, []) if due else []:
            yield Echeance(
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


REGLES = [
    convention_cadre,
    fin_de_convention,
    fiche_en_retard,
    plan_sans_mise_a_jour,
    mesure_indicateur,
    poste_vacant,
    fin_de_contrat,
    fin_de_cofinancement,
]

LIBELLES = {
    "convention_cadre": "Convention-cadre attendue",
    "fin_de_convention": "Fin de convention",
    "fiche_en_retard": "Fiche action en retard",
    "plan_sans_mise_a_jour": "Plan d'action sans mise à jour",
    "mesure_indicateur": "Mesure d'indicateur attendue",
    "poste_vacant": "Poste vacant",
    "fin_de_contrat": "Fin de contrat",
    "fin_de_cofinancement": "Fin de cofinancement",
}


def due_today(today: date, rattrapage: timedelta = RATTRAPAGE) -> Iterator[Echeance]:
    """Each rule on its own: one that fails (a stored value it cannot read) is logged and
    the others' reminders still go."""
    for regle in REGLES:
        try:
            dues = list(regle(today, rattrapage))
        except Exception:
            logger.exception("Reminder rule %s failed on %s", regle.__name__, today)
            continue
        yield from dues
