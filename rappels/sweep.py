"""The daily sweep: record the reminders due today, then send what each person asked for.

1. ``record``: every rule's due items × their recipients are inserted with
   ``ON CONFLICT DO NOTHING`` against the unique (rule, object, due date, recipient): a
   second sweep, racing or re-run, inserts nothing twice.
2. ``send_immediate``: each pending e-mail is claimed by a conditional update
   (``email_le`` NULL → now) before it is sent, and released if sending fails: two workers
   never send the same one, and a re-run after a crash sends only the rest.
3. ``send_digests``: one digest per person and period, claimed the same way on its row.
"""

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from pvd.policy import reminder_recipients

from . import emails
from .models import Frequence, Rappel, Recapitulatif
from .preferences import frequences
from .regles import LIBELLES, RATTRAPAGE, due_today

logger = logging.getLogger(__name__)

BATCH = 1000


@dataclass
class Report:
    due: int = 0
    recorded: int = 0
    emails: int = 0
    digests: int = 0
    errors: list[str] = field(default_factory=list)


def record(today: date, rattrapage: timedelta = RATTRAPAGE) -> tuple[int, int]:
    """(due items, new sendings recorded)."""
    dues = list(due_today(today, rattrapage))
    audiences = {a for due in dues for a in due.audiences}
    recipients = reminder_recipients(audiences, {due.beneficiaire_id for due in dues})
    rows = []
    for due in dues:
        users = set().union(*(recipients[due.beneficiaire_id][a] for a in due.audiences))
        rows += [
            Rappel(
                regle=due.regle,
                categorie=due.categorie,
                objet=due.objet,
                echeance=due.echeance,
                destinataire_id=user_id,
                beneficiaire_id=due.beneficiaire_id,
                message=due.message,
                lien=due.lien,
            )
            for user_id in sorted(users)
        ]
    before = Rappel.objects.count()
    Rappel.objects.bulk_create(rows, ignore_conflicts=True, batch_size=BATCH)
    return len(dues), Rappel.objects.count() - before


def _pending(today: date):
    since = timezone.now() - RATTRAPAGE - timedelta(days=7)
    return Rappel.objects.filter(
        email_le__isnull=True, recapitulatif__isnull=True, created_at__gte=since
    )


def claim(rappel_id: int) -> bool:
    """Take the right to send this e-mail: only one sweep's update changes the row."""
    return bool(
        Rappel.objects.filter(pk=rappel_id, email_le__isnull=True).update(email_le=timezone.now())
    )


def release(rappel_id: int) -> None:
    Rappel.objects.filter(pk=rappel_id).update(email_le=None)


def send_immediate(today: date) -> int:
    pending = list(_pending(today).values_list("pk", "destinataire_id", "categorie"))
    prefs = frequences({user_id for _, user_id, _ in pending})
    ids = [pk for pk, user_id, cat in pending if prefs[user_id][cat] == Frequence.IMMEDIAT]
    sent = 0
    for rappel in Rappel.objects.filter(pk__in=ids).select_related("destinataire", "beneficiaire"):
        if not claim(rappel.pk):
            continue  # another sweep took it
        try:
            emails.build(
                rappel.destinataire,
                [rappel],
                [rappel.categorie],
                f"[PVD] {LIBELLES.get(rappel.regle, 'Rappel')} – {rappel.beneficiaire.nom}",
                "Un rappel du portail Petites villes de demain :",
            ).send()
        except Exception:
            release(rappel.pk)
            raise
        sent += 1
    return sent


def period_of(frequence: str, today: date) -> str | None:
    if frequence == Frequence.QUOTIDIEN:
        return today.isoformat()
    if frequence == Frequence.HEBDOMADAIRE:
        year, week, _ = today.isocalendar()
        return f"{year}-S{week:02d}"
    return None


def digest_items(user_id: int, categories: list[str], today: date):
    return _pending(today).filter(destinataire_id=user_id, categorie__in=categories)


def send_digests(today: date) -> int:
    pending = list(_pending(today).values_list("destinataire_id", "categorie").distinct())
    prefs = frequences({user_id for user_id, _ in pending})
    wanted: dict[tuple[int, str], list[str]] = {}
    for user_id, categorie in pending:
        period = period_of(prefs[user_id][categorie], today)
        if period:
            wanted.setdefault((user_id, period), []).append(categorie)
    sent = 0
    for (user_id, period), categories in sorted(wanted.items()):
        if send_digest(user_id, period, categories, today):
            sent += 1
    return sent


def send_digest(user_id: int, period: str, categories: list[str], today: date) -> bool:
    try:
        with transaction.atomic():
            digest, _ = Recapitulatif.objects.get_or_create(destinataire_id=user_id, periode=period)
    except IntegrityError:  # a racing sweep created it between our read and our insert
        digest = Recapitulatif.objects.get(destinataire_id=user_id, periode=period)
    if not Recapitulatif.objects.filter(pk=digest.pk, envoye_le__isnull=True).update(
        envoye_le=timezone.now()
    ):
        return False  # already sent (or being sent) for this period
    try:
        items = list(
            digest_items(user_id, categories, today).select_related("destinataire", "beneficiaire")
        )
        if not items:
            Recapitulatif.objects.filter(pk=digest.pk).update(envoye_le=None)
            return False
        label = "quotidien" if "S" not in period else "hebdomadaire"
        emails.build(
            items[0].destinataire,
            items,
            categories,
            f"[PVD] Votre récapitulatif {label} : {len(items)} rappel(s)",
            "Les rappels du portail Petites villes de demain, par bénéficiaire :",
        ).send()
    except Exception:
        Recapitulatif.objects.filter(pk=digest.pk).update(envoye_le=None)
        raise
    Rappel.objects.filter(pk__in=[r.pk for r in items], recapitulatif__isnull=True).update(
        recapitulatif=digest
    )
    return True


def digest_preview(user, today: date | None = None):
    """The e-mail the user's next digest would be, from their pending reminders (or None)."""
    today = today or timezone.localdate()
    prefs = frequences([user.pk])[user.pk]
    categories = [c for c, f in prefs.items() if period_of(f, today)]
    items = list(
        digest_items(user.pk, categories, today).select_related("destinataire", "beneficiaire")
    )
    if not items:
        return None
    return emails.build(
        user,
        items,
        categories,
        f"[PVD] Votre récapitulatif : {len(items)} rappel(s)",
        "Les rappels du portail Petites villes de demain, par bénéficiaire :",
    )


def sweep(today: date | None = None) -> Report:
    today = today or timezone.localdate()
    report = Report()
    report.due, report.recorded = record(today)
    report.emails = send_immediate(today)
    report.digests = send_digests(today)
    logger.info(
        "Reminders sweep %s: %s due, %s recorded, %s e-mails, %s digests",
        today,
        report.due,
        report.recorded,
        report.emails,
        report.digests,
    )
    return report
