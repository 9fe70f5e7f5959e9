"""The daily sweep: record the reminders due today, then send what each person asked for.

1. ``record``: every rule's due items × their recipients are inserted with
   ``ON CONFLICT DO NOTHING`` against the unique (rule, object, due date, recipient), in one
   statement: a second sweep, racing or re-run, inserts nothing twice.
2. ``send_immediate``: the pending e-mails are claimed at once for a lease
   (``email_reserve_le``, rows locked with ``select_for_update(skip_locked=True)``), sent,
   then marked sent (``email_le``) one by one; released at once if sending fails. Two workers
   never send the same one; a re-run after a crash sends only the rest; a claim whose worker
   was killed outright is taken again by the first sweep after its lease (``LEASE``) ends;
   and the claims a long run is still sending are renewed every ``RENEW_EVERY``.
3. ``send_digests``: one digest per person and period, claimed the same way on its row
   (``reserve_le``, then ``envoye_le``); an unsent digest whose lease ended is claimed again,
   whatever its period.

Queries: a fixed number per rule and per step, whatever the data (tests/rappels/
test_scale.py), plus the one « sent » mark per e-mail or digest that goes out.

Exactly once, except in one window no database can close: a worker killed after the SMTP
server took an e-mail and before its ``email_le`` was written sends that one e-mail again
after the lease (at most one per killed worker, since each is marked right after it goes).
We chose at-least-once there, not at-most-once: a reminder lost is a deadline missed, a
reminder twice is a nuisance; and the second copy carries the same Message-ID (the row's),
so that mail clients and servers can recognise it.

No e-mail stops the others: one whose sending raises (an address the server refuses, a
header the mail library rejects…) is logged, released and marked on its row (``email_echecs``,
``email_erreur``; ``echecs``, ``erreur`` on a digest), and the run goes on; the next sweeps
try it again, up to ``MAX_ATTEMPTS``. « Santé du service » counts them. Only a failure of
the mail server itself (down, gone away) stops the run: every e-mail would fail alike, none
is counted against, and the next sweep sends them all.
"""

import logging
import smtplib
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.core.mail import get_connection
from django.db import connection, transaction
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from pvd.french import compte
from pvd.jobs import Progress
from pvd.policy import reminder_recipients

from . import emails, inbox
from .models import Frequence, Rappel, Recapitulatif
from .preferences import frequences
from .regles import LIBELLES, OUVERTES, RATTRAPAGE, Territoires, due_today

logger = logging.getLogger(__name__)

BATCH = 1000  # ids in one IN list, on a database other than PostgreSQL (SQLite's limit)
# How long a claim holds: far beyond the seconds a batch takes to send, so that only a dead
# worker's claims expire; the next sweep after it (hourly, or one run by hand) sends them.
LEASE = timedelta(minutes=15)
# The claims a run is still sending are renewed this often (by time, whatever their number).
RENEW_EVERY = LEASE / 3
# An e-mail (or digest) whose sending failed this many times is no longer tried; it stays
# counted on « Santé du service ».
MAX_ATTEMPTS = 5
# Refusals that concern one e-mail; any other OSError means the mail server cannot be reached.
REFUSED_BY_SERVER = (
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPDataError,
)


def server_unreachable(exc: Exception) -> bool:
    return isinstance(exc, OSError) and not isinstance(exc, REFUSED_BY_SERVER)


def error_text(exc: Exception) -> str:
    return _fit(f"{type(exc).__name__}: {exc}", ERROR_MAX)


@contextmanager
def _sent_marks_without_disk_wait() -> Iterator[None]:
    """Each e-mail is marked sent in its own commit; PostgreSQL need not wait for the disk
    for those (``synchronous_commit`` off for this session, while sending): a database crash
    could forget the last marks of a fraction of a second, whose e-mails would then go again
    after the lease, the same window as a worker killed between sending and marking."""
    if connection.vendor != "postgresql":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit TO OFF")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET synchronous_commit")


def _free(now, field: str = "email_reserve_le") -> Q:
    """Not claimed, or claimed by a worker whose lease ended."""
    return Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lt": now - LEASE})


@dataclass
class Report:
    due: int = 0
    recorded: int = 0
    resolved: int = 0
    emails: int = 0
    digests: int = 0
    errors: list[str] = field(default_factory=list)


MESSAGE_MAX = Rappel._meta.get_field("message").max_length
# What an e-mail shows of a reminder: its territory's name (Rappel.territoire_nom).
RELATED = ("destinataire", "beneficiaire", "departement", "region")
ERROR_MAX = Rappel._meta.get_field("email_erreur").max_length


def _fit(text: str, size: int) -> str:
    """A long beneficiary name and a long title must not make the whole sweep's insert fail."""
    return text if len(text) <= size else text[: size - 1] + "…"


LIEN_MAX = Rappel._meta.get_field("lien").max_length
OBJET_MAX = Rappel._meta.get_field("objet").max_length


def _rows(due, user_ids) -> list[Rappel]:
    return [
        Rappel(
            regle=due.regle,
            categorie=due.categorie,
            objet=due.objet,
            echeance=due.echeance,
            destinataire_id=user_id,
            beneficiaire_id=due.beneficiaire_id,
            departement_id=due.departement_id,
            region_id=due.region_id,
            message=_fit(due.message, MESSAGE_MAX),
            lien=due.lien,
        )
        for user_id in sorted(user_ids)
    ]


def _readable(dues) -> list:
    """The due items a row can hold: one that cannot (a link or key too long) is logged and
    left out, so that it does not make the whole insert fail."""
    kept = []
    for due in dues:
        if len(due.lien) > LIEN_MAX or len(due.objet) > OBJET_MAX:
            logger.error("Reminder %s %s skipped: link or key too long", due.regle, due.objet)
            continue
        kept.append(due)
    return kept


def _postgresql() -> bool:
    return connection.vendor == "postgresql"


def _insert(rows: list[Rappel]) -> list[int]:
    """Insert the sendings not recorded yet, in one statement however many (PostgreSQL:
    arrays unnested, ``ON CONFLICT DO NOTHING``): the recipients of those inserted."""
    if not rows:
        return []
    if not _postgresql():
        before = set(Rappel.objects.values_list("pk", flat=True))
        Rappel.objects.bulk_create(rows, ignore_conflicts=True)
        return list(Rappel.objects.exclude(pk__in=before).values_list("destinataire_id", flat=True))
    columns = ("regle", "categorie", "objet", "echeance", "destinataire_id", "beneficiaire_id")
    columns += ("departement_id", "region_id", "message", "lien")
    types = ("text", "text", "text", "date", "bigint", "bigint", "text", "text", "text", "text")
    table = Rappel._meta.db_table
    sql = (
        f"INSERT INTO {table} ({', '.join(columns)}, created_at, email_echecs, email_erreur) "
        f"SELECT {', '.join(columns)}, now(), 0, '' FROM unnest("
        + ", ".join(f"%s::{t}[]" for t in types)
        + f") AS v({', '.join(columns)}) ON CONFLICT DO NOTHING RETURNING destinataire_id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [[getattr(row, c) for row in rows] for c in columns])
        return [user_id for (user_id,) in cursor.fetchall()]


def record(
    today: date, rattrapage: timedelta = RATTRAPAGE, situations: list | None = None
) -> tuple[int, int]:
    """(due items, new sendings recorded). A reminder closed and due again is reopened.
    A fixed number of queries: the recipients of every audience (one query each), one insert,
    one update to reopen."""
    if situations is None:
        situations = list(due_today(today, OUVERTES))
    dues = _readable(d for d in situations if d.echeance >= today - rattrapage)
    audiences = {a for due in dues for a in due.audiences}
    recipients = reminder_recipients(
        audiences, {due.beneficiaire_id for due in dues if due.beneficiaire_id is not None}
    )
    rows = []
    for due in dues:
        users = set().union(*(recipients[due.beneficiaire_id][a] for a in due.audiences))
        users |= set(due.destinataires)
        rows += _rows(due, users)
    inserted = _insert(rows)
    reopened = _reopen({(d.regle, d.objet, d.echeance) for d in dues})
    inbox.forget(set(inserted) | reopened)
    return len(dues), len(inserted)


def _reopen(keys: set[tuple[str, str, date]]) -> set[int]:
    """Closed reminders whose situation is open again at the same date (a date moved back),
    in one update: their recipients."""
    if not keys:
        return set()
    if not _postgresql():
        closed = Rappel.objects.filter(
            resolu_le__isnull=False, echeance__gte=min(key[2] for key in keys)
        ).values_list("pk", "regle", "objet", "echeance", "destinataire_id")
        ids, users = [], set()
        for pk, regle, objet, echeance, user_id in closed:
            if (regle, objet, echeance) in keys:
                ids.append(pk)
                users.add(user_id)
        Rappel.objects.filter(pk__in=ids).update(resolu_le=None)
        return users
    regles, objets, echeances = zip(*keys, strict=True)
    table = Rappel._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS r SET resolu_le = NULL "
            "FROM unnest(%s::text[], %s::text[], %s::date[]) AS k(regle, objet, echeance) "
            "WHERE r.resolu_le IS NOT NULL AND r.echeance >= %s AND r.regle = k.regle "
            "AND r.objet = k.objet AND r.echeance = k.echeance RETURNING r.destinataire_id",
            [list(regles), list(objets), list(echeances), min(echeances)],
        )
        return {user_id for (user_id,) in cursor.fetchall()}


def resolve(
    today: date,
    beneficiaires: Collection[int] | None = None,
    situations: list | None = None,
    territoires: Territoires | None = None,
) -> int:
    """Close the open reminders whose situation is over or whose due date moved: they leave
    the unread count and no e-mail carries them. A moved date gives its reminder, at the new
    date, to the same people (however old the new date: the situation is still open).
    ``beneficiaires``: only theirs (a save); ``territoires``: only those of the instances of
    these départements and régions (a save); else the whole country (the sweep).
    A fixed number of queries: one read of the open reminders, one update, one insert."""
    if situations is None:
        situations = list(due_today(today, OUVERTES, beneficiaires, territoires))
    current = {(d.regle, d.objet, d.beneficiaire_id): d for d in situations}
    ouverts = Rappel.objects.ouverts()
    if territoires is not None:
        departements, regions = territoires
        ouverts = ouverts.filter(Q(departement_id__in=departements) | Q(region_id__in=regions))
    elif beneficiaires is not None:
        ouverts = ouverts.filter(beneficiaire_id__in=beneficiaires)
    closed, users, moved = [], set(), {}
    for pk, regle, objet, echeance, beneficiaire_id, user_id in ouverts.values_list(
        "pk", "regle", "objet", "echeance", "beneficiaire_id", "destinataire_id"
    ):
        due = current.get((regle, objet, beneficiaire_id))
        if due is None or due.echeance != echeance:
            closed.append(pk)
            users.add(user_id)
        if due is not None and due.echeance != echeance:
            moved.setdefault(due, set()).add(user_id)
    if not closed:
        return 0
    now = timezone.now()
    batch = len(closed) if _postgresql() else BATCH
    with transaction.atomic():
        for start in range(0, len(closed), batch):
            Rappel.objects.filter(pk__in=closed[start : start + batch]).update(resolu_le=now)
        replacements = [row for due, user_ids in moved.items() for row in _rows(due, user_ids)]
        users.update(_insert(replacements))
        users.update(_reopen({(d.regle, d.objet, d.echeance) for d in moved}))
    inbox.forget(users)
    return len(closed)


def _pending(today: date):
    """Reminders no e-mail carried yet, nor carries now (an e-mail claim under its lease)."""
    now = timezone.now()
    since = now - RATTRAPAGE - timedelta(days=7)
    return Rappel.objects.ouverts().filter(
        _free(now),
        email_le__isnull=True,
        recapitulatif__isnull=True,
        created_at__gte=since,
        email_echecs__lt=MAX_ATTEMPTS,
    )


def claim(rappel_ids, with_time: bool = False):
    """Take the right to send these e-mails for a lease: rows another worker holds (locked,
    or claimed within the lease) or already sent are skipped. The ids claimed (and the time
    of the claim, ``with_time``)."""
    now = timezone.now()
    with transaction.atomic():
        claimed = list(
            Rappel.objects.ouverts()
            .filter(
                _free(now), pk__in=rappel_ids, email_le__isnull=True, email_echecs__lt=MAX_ATTEMPTS
            )
            .select_for_update(skip_locked=True)
            .values_list("pk", flat=True)
        )
        Rappel.objects.filter(pk__in=claimed).update(email_reserve_le=now)
    return (claimed, now) if with_time else claimed


def release(rappel_ids) -> None:
    Rappel.objects.filter(pk__in=rappel_ids, email_le__isnull=True).update(email_reserve_le=None)


def mark_failed(rappel_pk: int, exc: Exception) -> None:
    """Released for the next sweep, with one more failure counted."""
    logger.exception("Reminder e-mail %s not sent", rappel_pk, exc_info=exc)
    Rappel.objects.filter(pk=rappel_pk, email_le__isnull=True).update(
        email_reserve_le=None, email_echecs=F("email_echecs") + 1, email_erreur=error_text(exc)
    )


def send_immediate(today: date) -> int:
    """Claim every pending e-mail at once, send them, each marked sent right after it goes: a
    failure releases what was claimed but unsent, and a worker killed outright leaves claims
    that the next sweep takes after the lease. The claims still being sent are renewed every
    ``RENEW_EVERY`` (by time, not per e-mail): a long run never outlives its lease."""
    pending = list(_pending(today).values_list("pk", "destinataire_id", "categorie"))
    prefs = frequences({user_id for _, user_id, _ in pending})
    ids = [pk for pk, user_id, cat in pending if prefs[user_id][cat] == Frequence.IMMEDIAT]
    if not ids:
        return 0
    with _sent_marks_without_disk_wait():
        return _send_batch(ids, get_connection())


class _Renewal:
    """Every ``RENEW_EVERY`` of sending (``clock``), the claims not sent yet are taken again
    for a full lease, if they are still this worker's (claimed at ``since``)."""

    def __init__(self, model, field: str, since, clock=time.monotonic) -> None:
        self.model, self.field, self.since = model, field, since
        self.progress = Progress(self._renew, every=RENEW_EVERY.total_seconds(), clock=clock)
        self.pks: Collection[int] = ()

    def __call__(self, pks: Collection[int]) -> None:
        self.pks = pks
        self.progress(len(pks))

    def _renew(self, _count: int) -> None:
        now = timezone.now()
        self.model.objects.filter(pk__in=list(self.pks), **{self.field: self.since}).update(
            **{self.field: now}
        )
        self.since = now


@dataclass(frozen=True, slots=True)
class _Destinataire:
    pk: int
    email: str


@dataclass(frozen=True, slots=True)
class _Shown:
    """What an e-mail shows of a reminder (the attributes of ``Rappel`` that
    ``emails.build`` reads), read as one tuple: thousands are sent, no model is built."""

    pk: int
    regle: str
    categorie: str
    echeance: date
    message: str
    lien: str
    recapitulatif_id: int | None
    destinataire: _Destinataire
    territoire_nom: str


SHOWN = ("pk", "regle", "categorie", "echeance", "message", "lien", "recapitulatif_id")
SHOWN_RELATED = ("destinataire_id", "destinataire__email")
TERRITOIRES = ("beneficiaire__nom", "departement__nom", "region__nom")


def _loaded(rappels) -> list[_Shown]:
    rows = rappels.values_list(*SHOWN, *SHOWN_RELATED, *TERRITOIRES)
    users: dict[int, _Destinataire] = {}
    shown = []
    for row in rows:
        pk, regle, categorie, echeance, message, lien, digest, user_id, email, b, d, r = row
        user = users.get(user_id) or users.setdefault(user_id, _Destinataire(user_id, email))
        # As Rappel.territoire_nom: the beneficiary's name, else the département's, the région's.
        nom = b if b is not None else d if d is not None else r
        shown.append(_Shown(pk, regle, categorie, echeance, message, lien, digest, user, nom))
    return shown


class _Mark:
    """« Sent » on one row, right after its e-mail went, in its own statement and commit (a
    worker killed on the next e-mail leaves this one marked): a plain parameterised UPDATE,
    without building an ORM query for each of thousands of e-mails."""

    def __init__(self, model, field: str) -> None:
        table = connection.ops.quote_name(model._meta.db_table)
        column = connection.ops.quote_name(model._meta.get_field(field).column)
        key = connection.ops.quote_name(model._meta.pk.column)
        self.sql = f"UPDATE {table} SET {column} = %s WHERE {key} = %s"

    def __call__(self, pk: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(self.sql, [timezone.now(), pk])


def _send_batch(ids, mailer) -> int:
    claimed, claimed_at = claim(ids, with_time=True)
    rappels = _loaded(Rappel.objects.filter(pk__in=claimed))
    unsent = set(claimed)
    renew = _Renewal(Rappel, "email_reserve_le", claimed_at)
    mark = _Mark(Rappel, "email_le")
    failed = 0
    try:
        # One connection to the mail server for the whole batch (not one per e-mail).
        mailer.open()
        for rappel in rappels:
            try:
                emails.build(
                    rappel.destinataire,
                    [rappel],
                    [rappel.categorie],
                    f"[PVD] {LIBELLES.get(rappel.regle, 'Rappel')} – {rappel.territoire_nom}",
                    "Un rappel du portail Petites villes de demain :",
                    connection=mailer,
                    message_id=emails.stable_message_id("rappel", rappel.pk),
                ).send()
            except Exception as exc:
                if server_unreachable(exc):
                    raise
                mark_failed(rappel.pk, exc)
                unsent.discard(rappel.pk)
                failed += 1
                continue
            mark(rappel.pk)
            unsent.discard(rappel.pk)
            renew(unsent)
    finally:
        mailer.close()
        if unsent:
            release(unsent)
    return len(claimed) - len(unsent) - failed


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
    """One digest per person and period: created once (unique), all claimed at once (the
    claims still being sent renewed by time), then sent, each marked right after it goes."""
    pending = list(_pending(today).values_list("pk", "destinataire_id", "categorie"))
    prefs = frequences({user_id for _, user_id, _ in pending})
    wanted: dict[tuple[int, str], list[int]] = {}
    for pk, user_id, categorie in pending:
        period = period_of(prefs[user_id][categorie], today)
        if period:
            wanted.setdefault((user_id, period), []).append(pk)
    # Digests a killed worker claimed and never sent: their reminders are attached to them.
    for key in Recapitulatif.objects.filter(
        envoye_le__isnull=True, reserve_le__lt=timezone.now() - LEASE
    ).values_list("destinataire_id", "periode"):
        wanted.setdefault(key, [])
    Recapitulatif.objects.bulk_create(
        [Recapitulatif(destinataire_id=u, periode=p) for u, p in wanted],
        ignore_conflicts=True,
    )
    if not wanted:
        return 0
    with _sent_marks_without_disk_wait():
        return _send_digest_batch(sorted(wanted), wanted, get_connection())


def _send_digest_batch(keys, wanted, mailer) -> int:
    claimed = claim_digests(keys, wanted)
    unsent = dict(claimed)
    failed = 0
    if not claimed:
        return 0
    renew = _Renewal(Recapitulatif, "reserve_le", next(iter(claimed.values())).reserve_le)
    mark = _Mark(Recapitulatif, "envoye_le")
    try:
        items = _loaded(Rappel.objects.filter(recapitulatif__in=[d.pk for d in claimed.values()]))
        mailer.open()
        by_digest: dict[int, list[Rappel]] = {}
        for item in items:
            by_digest.setdefault(item.recapitulatif_id, []).append(item)
        for key, digest in claimed.items():
            rows = by_digest.get(digest.pk, [])
            label = "hebdomadaire" if "S" in digest.periode else "quotidien"
            try:
                emails.build(
                    rows[0].destinataire,
                    rows,
                    sorted({r.categorie for r in rows}),
                    f"[PVD] Votre récapitulatif {label} : "
                    f"{compte(len(rows), 'rappel', 'rappels', '')}",
                    "Les rappels du portail Petites villes de demain, par bénéficiaire :",
                    connection=mailer,
                    message_id=emails.stable_message_id("recapitulatif", digest.pk),
                ).send()
            except Exception as exc:
                if server_unreachable(exc):
                    raise
                mark_digest_failed(digest, exc)
                del unsent[key]
                failed += 1
                continue
            mark(digest.pk)
            del unsent[key]
            renew([d.pk for d in unsent.values()])
    finally:
        mailer.close()
        if unsent:
            release_digests(unsent.values())
    return len(claimed) - len(unsent) - failed


def claim_digests(keys, wanted) -> dict[tuple[int, str], Recapitulatif]:
    """Claim the unsent, unclaimed digests of these (user, period) for a lease and attach
    their reminders to them."""
    users = {u for u, _ in keys}
    periods = {p for _, p in keys}
    now = timezone.now()
    with transaction.atomic():
        digests = {
            (d.destinataire_id, d.periode): d
            for d in Recapitulatif.objects.filter(
                _free(now, "reserve_le"),
                destinataire_id__in=users,
                periode__in=periods,
                envoye_le__isnull=True,
                echecs__lt=MAX_ATTEMPTS,
            ).select_for_update(skip_locked=True)
        }
        claimed = {key: digests[key] for key in keys if key in digests}
        _attach({pk: digest.pk for key, digest in claimed.items() for pk in wanted[key]})
        # Non-empty: given reminders now, or holding those of a claim whose worker died.
        nonempty = set(
            Rappel.objects.filter(recapitulatif__in=[d.pk for d in claimed.values()])
            .values_list("recapitulatif_id", flat=True)
            .distinct()
        )
        claimed = {k: d for k, d in claimed.items() if d.pk in nonempty}
        Recapitulatif.objects.filter(pk__in=[d.pk for d in claimed.values()]).update(reserve_le=now)
    for digest in claimed.values():
        digest.reserve_le = now
    return claimed


def _attach(digest_of: dict[int, int]) -> None:
    """Give each reminder its digest, in one update, if no other digest took it meanwhile."""
    if not digest_of:
        return
    if _postgresql():
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {Rappel._meta.db_table} AS r SET recapitulatif_id = v.digest "
                "FROM unnest(%s::bigint[], %s::bigint[]) AS v(pk, digest) "
                "WHERE r.id = v.pk AND r.recapitulatif_id IS NULL",
                [list(digest_of), list(digest_of.values())],
            )
        return
    # Elsewhere: a case per digest (not per row, which costs seconds to build).
    by_digest: dict[int, list[int]] = {}
    for pk, digest in digest_of.items():
        by_digest.setdefault(digest, []).append(pk)
    Rappel.objects.filter(pk__in=list(digest_of), recapitulatif__isnull=True).update(
        recapitulatif_id=Case(*(When(pk__in=pks, then=Value(d)) for d, pks in by_digest.items()))
    )


def release_digests(digests) -> None:
    ids = [d.pk for d in digests]
    with transaction.atomic():
        Rappel.objects.filter(recapitulatif_id__in=ids).update(recapitulatif=None)
        Recapitulatif.objects.filter(pk__in=ids).update(reserve_le=None)


def mark_digest_failed(digest: Recapitulatif, exc: Exception) -> None:
    """Its reminders are given back (a later digest may carry them), one more failure counted."""
    logger.exception("Digest %s not sent", digest.pk, exc_info=exc)
    release_digests([digest])
    Recapitulatif.objects.filter(pk=digest.pk).update(
        echecs=F("echecs") + 1, erreur=error_text(exc)
    )


def failures() -> dict[str, int]:
    """For « Santé du service »: e-mails and digests whose sending failed and that are not
    sent yet (still retried, or given up after ``MAX_ATTEMPTS``)."""
    courriels = Rappel.objects.filter(email_echecs__gt=0, email_le__isnull=True)
    recapitulatifs = Recapitulatif.objects.filter(echecs__gt=0, envoye_le__isnull=True)
    return {
        "courriels": courriels.count(),
        "recapitulatifs": recapitulatifs.count(),
        "tentatives": MAX_ATTEMPTS,
        "abandonnes": courriels.filter(email_echecs__gte=MAX_ATTEMPTS).count()
        + recapitulatifs.filter(echecs__gte=MAX_ATTEMPTS).count(),
    }


def digest_preview(user, today: date | None = None):
    """The e-mail the user's next digest would be, from their pending reminders (or None)."""
    today = today or timezone.localdate()
    prefs = frequences([user.pk])[user.pk]
    categories = [c for c, f in prefs.items() if period_of(f, today)]
    items = list(digest_items(user.pk, categories, today).select_related(*RELATED))
    if not items:
        return None
    return emails.build(
        user,
        items,
        categories,
        f"[PVD] Votre récapitulatif : {compte(len(items), 'rappel', 'rappels', '')}",
        "Les rappels du portail Petites villes de demain, par bénéficiaire :",
    )


def sweep(today: date | None = None, beneficiaires: Collection[int] | None = None) -> Report:
    """The daily sweep; ``beneficiaires``: only their situations (the bench's smaller runs)."""
    today = today or timezone.localdate()
    report = Report()
    survey(today, report, beneficiaires)
    deliver(today, report)
    logger.info(
        "Reminders sweep %s: %s due, %s recorded, %s resolved, %s e-mails, %s digests",
        today,
        report.due,
        report.recorded,
        report.resolved,
        report.emails,
        report.digests,
    )
    return report


def survey(today: date, report: Report, beneficiaires: Collection[int] | None = None) -> None:
    """The sweep proper: the rules, the sendings recorded, the reminders resolved (a fixed
    number of queries per rule, whatever the data)."""
    situations = list(due_today(today, OUVERTES, beneficiaires))
    report.due, report.recorded = record(today, situations=situations)
    report.resolved = resolve(today, beneficiaires, situations=situations)


def deliver(today: date, report: Report) -> None:
    """The e-mails: the immediate ones, then the digests (one « sent » mark each)."""
    report.emails = send_immediate(today)
    report.digests = send_digests(today)
