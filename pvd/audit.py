"""Which models the audit trail follows (django-auditlog): who changed what, and when."""

import ipaddress
import os
from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from functools import cache as once
from typing import NamedTuple

from allauth.account import signals as allauth_signals
from allauth.mfa import signals as mfa_signals
from auditlog.cid import get_cid
from auditlog.diff import get_field_value, model_instance_diff, track_field
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.apps import apps
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import DEFAULT_DB_ALIAS, connections, models
from django.db.models import F, Q, QuerySet
from django.db.models.signals import pre_save
from django.dispatch import receiver
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.encoding import smart_str
from django.utils.formats import number_format
from django.utils.text import capfirst

from . import policy
from .db import DansLaSousRequete
from .french import date_longue, euros
from .models import Role, User

auditlog.register(User, exclude_fields=["password", "last_login", "perimeter_version"])
auditlog.register(Role, m2m_fields={"departements", "communes", "beneficiaires", "financeurs"})
# A ProConnect identity attached to an account (first login) or detached by ANCT.
auditlog.register(
    apps.get_model("socialaccount", "SocialAccount"), include_fields=["user", "provider", "uid"]
)
for model_name in (
    "Region",
    "Departement",
    "EPCI",
    "Commune",
    "Beneficiaire",
    "MembreBeneficiaire",
    "IdentifiantPVD",
    "DecisionStatut",
):
    auditlog.register(apps.get_model("communes", model_name), exclude_fields=["nom_recherche"])

for model_name in (
    "Convention",
    "Partie",
    "SecteurIntervention",
    "DocumentConvention",
    "ScanSigne",
):
    auditlog.register(apps.get_model("conventions", model_name))

for model_name in (
    "Axe",
    "FicheAction",
    "LigneFinancement",
    "Indicateur",
    "Mesure",
    "PointAvancement",
):
    auditlog.register(apps.get_model("actions", model_name))
auditlog.register(apps.get_model("postes", "Poste"), m2m_fields={"beneficiaires", "communes"})
for model_name in (
    "ChangementEtat",
    "Occupation",
    "RegleCofinancement",
    "CofinancementAnnee",
    "LigneCofinancement",
):
    auditlog.register(apps.get_model("postes", model_name))

auditlog.register(apps.get_model("actions", "Financeur"))
for model_name in ("Instance", "Membre", "Reunion", "PointOrdreDuJour", "Presence", "Suite"):
    auditlog.register(apps.get_model("gouvernance", model_name))
auditlog.register(
    apps.get_model("gouvernance", "Decision"), m2m_fields={"fiches", "conventions", "lignes"}
)

# The project's models the journal does not follow, each with its reason
# (tests/pvd/test_registries.py fails on a model in neither list).
AUDIT_EXEMPT = {
    "pvd.ImportRun": "it is itself the record of an import: who ran it, when, what it changed",
    "pvd.Heartbeat": "written by the periodic tasks, not by people",
    "pvd.Incident": "written by the service's own health checks, not by people",
    "pvd.EnvoiFormulaire": "a form's one-time token; the object it created is audited itself",
    "pvd.CodeMfaUtilise": "a used second-factor code, kept to refuse its reuse (security)",
    "pvd.Deploiement": "a job row (a rollout spreadsheet, who, when, its report); the "
    "accounts, roles and posts it creates are audited themselves",
    "pvd.Invitation": "written by the invitations sweep: when an e-mail went out",
    "pvd.EchecsMfa": "a count of wrong second-factor codes (security, not data)",
    "pvd.CompteurLimite": "allauth's count of attempts (wrong passwords, resets): security, "
    "not data; the failures and lockouts themselves are journaled as security events",
    "actions.ExportPlan": "a generated file (a job row); the request is not a change of data",
    "communes.MiseAJourReferentiel": "a job row that keeps who asked, when, the files and the "
    "report; what the import changed is traced by its ImportRun",
    "tableaux.Bilan": "a generated file (a job row); the request is not a change of data",
    "gouvernance.Releve": "a generated file (a job row): the decisions it shows are audited",
    "rappels.Rappel": "written by the reminders sweep; reading one is not a change of data",
    "rappels.Recapitulatif": "the record of a digest sent by the sweep",
    "rappels.Preference": "a person's own e-mail preferences, not programme data",
    "club.MessageClub": "a message between two people, kept to count the sender's messages "
    "(rate limit); not programme data",
    "opendata.Publication": "a generated file (a job row) of data already audited",
    "api.UtilisationCle": "it is itself the record of a key's use: which key, what, when",
    "api.EnvoiFiche": "where a fiche stands with the projects hub, written by the push task",
}

# Rows written in bulk ------------------------------------------------------------------------
# bulk_create, bulk_update and deletes without signals write no journal entry by themselves.
# A writer that uses them for speed (the Excel import of a plan) journals its rows here: the
# entries auditlog's receivers write for one save of each, with the same changes, in one
# statement for thousands of rows.


def journal_bulk(
    actor: User | None,
    created: Iterable[models.Model] = (),
    updated: Iterable[tuple[models.Model, models.Model, Collection[str] | None]] = (),
    deleted: Iterable[models.Model] = (),
) -> int:
    """Journal rows created, updated (``(before, after, fields or None for all)``) and
    deleted in bulk, by ``actor``, from the request's address as auditlog's middleware sets
    it; the number of entries. Models the journal does not follow, and updates that changed
    nothing, are skipped."""
    rows = [
        *((LogEntry.Action.CREATE, None, new, None) for new in created),
        *((LogEntry.Action.UPDATE, old, new, fields) for old, new, fields in updated),
        *((LogEntry.Action.DELETE, old, None, None) for old in deleted),
    ]
    # auditlog's middleware gives an entry the request's address (and its actor, if none)
    # on pre_save, which a bulk insert does not send: it is sent once, for all of them.
    probe = LogEntry(actor=actor, actor_email=actor.email if actor else None, cid=get_cid())
    pre_save.send(
        sender=LogEntry, instance=probe, raw=False, using=DEFAULT_DB_ALIAS, update_fields=None
    )
    connection = connections[DEFAULT_DB_ALIAS]
    common = {
        "actor": probe.actor_id,
        "actor_email": probe.actor_email,
        "cid": probe.cid,
        "remote_addr": probe.remote_addr,
        "remote_port": probe.remote_port,
        "timestamp": timezone.now(),
        "changes_text": "",
    }
    entries = []
    for action, old, new, fields in rows:
        instance = new if new is not None else old
        if not auditlog.contains(type(instance)):
            continue
        changes = _diff(old, new, fields)
        if not changes:
            continue
        pk = instance.pk
        entries.append(
            {
                **common,
                "content_type": ContentType.objects.get_for_model(instance).pk,
                "object_pk": str(pk),
                "object_id": pk if isinstance(pk, int) else None,
                "object_repr": smart_str(instance),
                "action": action,
                "changes": connection.ops.adapt_json_value(changes, None),
            }
        )
    if entries:
        _copy_insert(LogEntry, entries)
    return len(entries)


def _copy_insert(model: type[models.Model], rows: list[dict]) -> None:
    """Insert rows of database values, keyed on field names, with PostgreSQL's COPY:
    several times cheaper than bulk_create for thousands of journal entries (its array
    parameters escape their JSON one quote at a time); no primary key is read back."""
    connection = connections[DEFAULT_DB_ALIAS]
    names = list(rows[0])
    columns = ", ".join(connection.ops.quote_name(model._meta.get_field(n).column) for n in names)
    table = connection.ops.quote_name(model._meta.db_table)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row([row[name] for name in names])


def _diff(old: models.Model | None, new: models.Model | None, fields) -> dict | None:
    """auditlog's ``model_instance_diff``. For a row created or deleted, the same changes
    of its own fields, computed on its one side: the absent side reads « None » for every
    field (for thousands of rows: half the reads, and none of the exceptions auditlog takes
    to find that out). Reverse relations, which auditlog records as « app.Model.None » and
    the history never shows (``_changes``), are left out."""
    instance = new if old is None else old
    model_fields = auditlog.get_model_fields(type(instance))
    if (
        (old is not None and new is not None)
        or settings.AUDITLOG_STORE_JSON_CHANGES
        or (model_fields["mask_fields"])
    ):
        return model_instance_diff(old, new, fields_to_check=fields)
    changes = {}
    for name, attname, kind, model_field in _tracked_fields(type(instance)):
        # auditlog's get_field_value, without its function calls where it reads the
        # attribute as it is (the fields of most rows).
        if kind == PLAIN:
            value = getattr(instance, attname)
            if type(value) is not str:
                value = smart_str(value)
                if type(value).__name__ == "__proxy__":
                    value = str(value)
        elif kind == FOREIGN_KEY:
            value = smart_str(getattr(instance, attname), strings_only=True)
        else:
            value = get_field_value(instance, model_field)
        if value != "None":  # as auditlog compares it with the absent side's « None »
            value = smart_str(value)
            changes[name] = ("None", value) if old is None else (value, "None")
    return changes or None


PLAIN, FOREIGN_KEY, OTHER = "plain", "foreign key", "other"


@once
def _tracked_fields(model: type[models.Model]) -> list[tuple[str, str, str, models.Field]]:
    """The fields of its own auditlog's diff reads on a row of this model (its
    include/exclude lists), each as (name, attribute, how get_field_value reads it, field)."""
    fields = [f for f in model._meta.get_fields() if f.concrete and track_field(f)]
    registered = auditlog.get_model_fields(model)
    if registered["include_fields"]:
        fields = [f for f in fields if f.name in registered["include_fields"]]
    tracked = []
    for model_field in fields:
        if model_field.name in registered["exclude_fields"]:
            continue
        if isinstance(model_field, models.DateTimeField | models.JSONField):
            kind = OTHER
        elif (model_field.one_to_one or model_field.many_to_one) and hasattr(
            model_field, "rel_class"
        ):
            kind = OTHER if settings.AUDITLOG_USE_FK_STRING_REPRESENTATION else FOREIGN_KEY
        else:
            kind = PLAIN
        attname = model_field.attname if kind == FOREIGN_KEY else model_field.name
        tracked.append((model_field.name, attname, kind, model_field))
    return tracked


# Security events --------------------------------------------------------------------------
# Logins, failures, lockouts, logouts, password and MFA changes go into the same journal as
# the changes above, as « access » entries on the user concerned, with the trusted client IP.

EVENTS = {
    "login": "Connexion",
    "login_failed": "Échec de connexion",
    "lockout": "Blocage après trop d'échecs",
    "logout": "Déconnexion",
    "password": "Changement de mot de passe",
    "mfa": "Changement de double authentification",
}


def client_ip(request) -> str | None:
    """The client's address: REMOTE_ADDR, or the address the last trusted proxy saw
    (settings.TRUSTED_PROXY_COUNT proxies append to X-Forwarded-For; 0 ignores the header)."""
    ip = request.META.get("REMOTE_ADDR")
    count = settings.TRUSTED_PROXY_COUNT
    if count > 0:
        forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",")]
        forwarded = [p for p in forwarded if p]
        if len(forwarded) >= count:
            ip = forwarded[-count]
    try:
        return str(ipaddress.ip_address(ip)) if ip else None
    except ValueError:
        return None


def record_event(request, event: str, user=None, login: str = "") -> LogEntry:
    """One security event in the journal: who (user, or the address typed), when, from where."""
    current = getattr(request, "user", None)
    actor = current if current is not None and current.is_authenticated else None
    if actor is None and event == "login":
        actor = user
    return LogEntry.objects.create(
        content_type=ContentType.objects.get_for_model(User),
        object_pk=str(user.pk) if user else "",
        object_id=user.pk if user else None,
        object_repr=(user.email if user else login)[:254],
        action=LogEntry.Action.ACCESS,
        changes_text=EVENTS[event],
        actor=actor,
        remote_addr=client_ip(request),
        additional_data={"event": event},
    )


@receiver(allauth_signals.user_logged_in)
def _login(sender, request, user, **kwargs):
    record_event(request, "login", user)


@receiver(user_logged_out)
def _logout(sender, request, user, **kwargs):
    if user is not None and request is not None:
        record_event(request, "logout", user)


@receiver(allauth_signals.password_changed)
@receiver(allauth_signals.password_set)
@receiver(allauth_signals.password_reset)
def _password(sender, request, user, **kwargs):
    record_event(request, "password", user)


@receiver(mfa_signals.authenticator_added)
@receiver(mfa_signals.authenticator_removed)
@receiver(mfa_signals.authenticator_reset)
def _mfa(sender, request, user, **kwargs):
    record_event(request, "mfa", user)


# Readable history --------------------------------------------------------------------------
# auditlog stores raw values (« True », « 30000.00 », a foreign key's id, a choice's code).
# Pages and the journal show these rows instead: the field's label, the related object's name,
# Oui/Non, amounts in euros, a choice's label, and the object the entry is about.

ACTIONS = {
    LogEntry.Action.CREATE: "Création",
    LogEntry.Action.UPDATE: "Modification",
    LogEntry.Action.DELETE: "Suppression",
}
# Decimal fields holding amounts in euros (the others are rates, targets, measures, FTEs).
MONEY_PREFIXES = ("montant", "cout", "plafond")
LONGEST = 300


@dataclass(frozen=True)
class Change:
    label: str
    before: str = ""
    after: str = ""
    # Many-to-many changes read as one sentence: « Communes couvertes, ajout : Ussel, Égletons ».
    text: str = ""


@dataclass
class HistoryRow:
    when: datetime
    who: str
    who_detail: str
    action: str
    objet: str
    is_creation: bool
    changes: list[Change] = field(default_factory=list)
    # The journal's entry itself (its address, its event), for the journal page only.
    entry: LogEntry | None = None


class Entry(NamedTuple):
    """What a history row shows of a journal entry, read as plain values (``ENTRY_COLUMNS``):
    neither the entry's other columns (the serialized object, the address) nor its author's
    account are built as objects for each row."""

    timestamp: datetime
    action: int
    content_type: ContentType
    object_repr: str
    changes_text: str
    changes: dict | None
    actor_email: str | None
    actor_id: int | None
    first_name: str | None
    last_name: str | None
    email: str | None


ENTRY_COLUMNS = (
    "timestamp",
    "action",
    "content_type_id",
    "object_repr",
    "changes_text",
    "changes",
    "actor_email",
    "actor_id",
    "actor__first_name",
    "actor__last_name",
    "actor__email",
)


def _entry(log_entry: LogEntry) -> Entry:
    actor = log_entry.actor
    return Entry(
        log_entry.timestamp,
        log_entry.action,
        log_entry.content_type,
        log_entry.object_repr,
        log_entry.changes_text,
        log_entry.changes,
        log_entry.actor_email,
        log_entry.actor_id,
        *((actor.first_name, actor.last_name, actor.email) if actor else (None, None, None)),
    )


def history(
    *targets: models.Model | QuerySet, limit: int = 100, known: Iterable[models.Model] = ()
) -> list[HistoryRow]:
    """The readable history of objects (instances, or QuerySets of them), newest first.
    ``known``: objects the page has already read (the object itself, its rows, the reader),
    named without a query when an entry points at them."""
    entries, labels = history_entries(*targets, limit=limit, known=known)
    return [history_row(entry, labels) for entry in entries]


def history_entries(
    *targets: models.Model | QuerySet, limit: int = 100, known: Iterable[models.Model] = ()
) -> tuple[list[Entry], dict[type[models.Model], dict]]:
    """``history``'s entries, newest first, and the names of the objects they point at
    (``labels``): each made a row by ``history_row``. A page that caches its rows keys each
    on ``entry_content``."""
    return entries_of(history_query(*targets, limit=limit), known)


def history_query(*targets: models.Model | QuerySet, limit: int = 100) -> QuerySet:
    """The values (``ENTRY_COLUMNS``) of the entries about these objects, newest first: what
    ``history_entries`` reads, as a query a page may prepare (pvd/db.py ``Preparee``: its
    targets then QuerySets with a slot, the fiche's rows)."""
    # Instances of one model are looked up together (``object_id IN (…)``): the rows a page
    # has already read cost no subquery.
    instances: dict[type[models.Model], list] = defaultdict(list)
    query = Q(pk__in=[])
    for target in targets:
        if isinstance(target, QuerySet):
            query |= _entries_q(target.model, target.values("pk"), array=True)
        else:
            instances[type(target)].append(target.pk)
    for model, pks in instances.items():
        query |= _entries_q(model, pks)
    entries = LogEntry.objects.filter(query).order_by("-timestamp", "-pk")
    return entries.values_list(*ENTRY_COLUMNS)[:limit]


def entries_of(
    values: Iterable[tuple], known: Iterable[models.Model] = ()
) -> tuple[list[Entry], dict[type[models.Model], dict]]:
    """``history_entries`` of the rows of ``history_query``, however they were read."""
    values = list(values)
    # The content types of the targets, read once per process (ContentType's cache).
    type_ids = {row[2] for row in values}
    content_types = {type_id: ContentType.objects.get_for_id(type_id) for type_id in type_ids}
    entries = [
        Entry(when, action, content_types[type_id], *rest)
        for when, action, type_id, *rest in values
    ]
    return entries, _related_labels(entries, known)


def _entries_q(model: type[models.Model], pks: QuerySet | list, array: bool = False) -> Q:
    """The entries about these objects. ``array``: ``pks``, a QuerySet of a few rows (an
    object's own), read first as an array (``DansLaSousRequete``): on PostgreSQL the index on
    the entries' object id then finds them, where ``IN (subquery)`` in a disjunction filters
    every entry of the model."""
    content_type = ContentType.objects.get_for_model(model)
    integer = isinstance(model._meta.pk, models.IntegerField | models.AutoField)
    if array and integer:
        return Q(content_type=content_type) & Q(DansLaSousRequete(F("object_id"), pks))
    if integer:
        return Q(content_type=content_type, object_id__in=pks)
    return Q(content_type=content_type, object_pk__in=pks)


def readable_for_user_q(user: User) -> Q:
    """The journal entries a user may read: everything for national staff; for the others,
    the entries about objects they read (`Model.objects.for_user`, or the object their row
    belongs to), the security events and accounts staying national."""
    if policy.is_national(user):
        return Q()
    query = Q(pk__in=[])
    for model in auditlog.get_models():
        readable_objects = _readable_objects(model, user)
        if readable_objects is not None:
            query |= _entries_q(model, readable_objects.values("pk"))
    return query


def _readable_objects(model: type[models.Model], user: User, depth: int = 0) -> QuerySet | None:
    manager = model._default_manager
    if hasattr(manager, "for_user") and model not in (User, Role):
        return manager.for_user(user)
    if depth >= 2:
        return None
    # A row of a readable object: a fiche's financing line, a convention's party, a post's
    # occupation.
    for parent in model._meta.get_fields():
        if isinstance(parent, models.ForeignKey) and not parent.null:
            parents = _readable_objects(parent.related_model, user, depth + 1)
            if parents is not None:
                return model._default_manager.filter(**{f"{parent.name}__in": parents.values("pk")})
    return None


def readable(entries: list[LogEntry], known: Iterable[models.Model] = ()) -> list[HistoryRow]:
    """Journal entries as rows people read; related objects are named with one query per
    related model for the whole list (none for the ``known`` objects, already read)."""
    values = [_entry(entry) for entry in entries]
    labels = _related_labels(values, known)
    rows = [history_row(entry, labels) for entry in values]
    for row, entry in zip(rows, entries, strict=True):
        row.entry = entry
    return rows


def history_row(entry: Entry, labels: dict) -> HistoryRow:
    """An entry as the row people read (``labels``: from ``history_entries``)."""
    if entry.actor_id is not None:
        full_name = f"{entry.first_name} {entry.last_name}".strip()  # User.get_full_name()
        who = full_name or entry.email
        who_detail = entry.email if full_name else ""
    else:
        who, who_detail = entry.actor_email or "Système / import", ""
    model = entry.content_type.model_class()
    nom = capfirst(model._meta.verbose_name) if model else capfirst(entry.content_type.name)
    if entry.action == LogEntry.Action.ACCESS:
        action, changes = entry.changes_text or "Accès", []
    else:
        action = ACTIONS.get(entry.action, "Modification")
        changes = _changes(entry, model, labels) if model else []
    return HistoryRow(
        when=entry.timestamp,
        who=who,
        who_detail=who_detail,
        action=action,
        objet=f"{nom} « {entry.object_repr} »",
        is_creation=entry.action == LogEntry.Action.CREATE,
        changes=changes,
    )


def _changes(entry: Entry, model: type[models.Model], labels: dict) -> list[Change]:
    changes = []
    for name, values in (entry.changes or {}).items():
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        label = capfirst(str(getattr(model_field, "verbose_name", name)))
        if isinstance(values, dict):
            if values.get("type") == "m2m":
                objets = ", ".join(str(o) for o in values.get("objects", []))
                # « ajout » / « retrait »: no agreement with the field's gender to get wrong.
                verbe = "ajout" if values.get("operation") == "add" else "retrait"
                changes.append(Change(label, text=f"{label}, {verbe} : {objets}"))
            continue
        # Reverse relations and many-to-many fields without their own entries print as
        # « app.Model.None »: nothing a reader can use.
        if not model_field.concrete or model_field.many_to_many or len(values) != 2:
            continue
        # Bookkeeping the model keeps by itself (« modifiée le », a version counter).
        if model_field.primary_key or (not model_field.editable and not model_field.choices):
            continue
        before, after = (_display(model_field, value, labels) for value in values)
        if before != after:
            changes.append(Change(label, before, after))
    return changes


def _empty(value) -> bool:
    return value is None or str(value) in ("None", "")


def _display(model_field: models.Field, value, labels: dict) -> str:
    if _empty(value):
        return "—"
    text = str(value)
    if model_field.choices:
        choices = {str(key): label for key, label in model_field.flatchoices}
        return str(choices.get(text, text))
    if isinstance(model_field, models.BooleanField):
        return "Oui" if text == "True" else "Non"
    if isinstance(model_field, models.ForeignKey):
        pk = _pk(model_field, text)
        label = labels.get(model_field.related_model, {}).get(pk)
        if label is None:
            return f"{capfirst(model_field.related_model._meta.verbose_name)} supprimé, n° {text}"
        return label
    if isinstance(model_field, models.DecimalField | models.FloatField | models.IntegerField):
        return _number(model_field, text)
    if isinstance(model_field, models.DateTimeField):
        moment = parse_datetime(text)
        if moment is None:
            return text
        if timezone.is_naive(moment):
            moment = timezone.make_aware(moment, UTC)
        return timezone.localtime(moment).strftime("%d/%m/%Y à %H:%M")
    if isinstance(model_field, models.DateField):
        day = parse_date(text[:10])
        return date_longue(day) if day else text
    if isinstance(model_field, models.FileField):
        return os.path.basename(text)
    return text if len(text) <= LONGEST else text[: LONGEST - 1] + "…"


def _number(model_field: models.Field, text: str) -> str:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return text
    if model_field.name.startswith(MONEY_PREFIXES):
        return euros(value)
    if value == value.to_integral_value():
        value = value.quantize(Decimal(1))
    return number_format(value)


def _related_labels(
    entries: list[Entry], known: Iterable[models.Model] = ()
) -> dict[type[models.Model], dict]:
    wanted: dict[type[models.Model], set] = defaultdict(set)
    for entry in entries:
        for related_model, pk in _pointed_at(entry):
            wanted[related_model].add(pk)
    labels: dict[type[models.Model], dict] = defaultdict(dict)
    for obj in known:
        # ``_meta``: the model of a lazy object too (``request.user``).
        model = obj._meta.model
        if obj.pk in wanted.get(model, ()):
            labels[model][obj.pk] = str(obj)
            wanted[model].discard(obj.pk)
    for model, pks in wanted.items():
        if pks:
            found = model._default_manager.select_related().in_bulk(pks)
            labels[model].update((pk, str(obj)) for pk, obj in found.items())
    return labels


def _pointed_at(entry: Entry) -> Iterator[tuple[type[models.Model], object]]:
    """The objects an entry's changes point at (a foreign key's value before and after), each
    as (model, primary key)."""
    model = entry.content_type.model_class()
    if model is None or entry.action == LogEntry.Action.ACCESS:
        return
    foreign_keys = _foreign_keys(model)
    for name, values in (entry.changes or {}).items():
        model_field = foreign_keys.get(name)
        if model_field is not None and isinstance(values, list):
            for value in values:
                pk = _pk(model_field, value)
                if pk is not None:
                    yield model_field.related_model, pk


@once
def _foreign_keys(model: type[models.Model]) -> dict[str, models.ForeignKey]:
    """A model's foreign keys (but those with choices, shown by their label), by the names
    ``_meta.get_field`` finds them by: an entry's changes name its fields."""
    return {
        name: model_field
        for model_field in model._meta.concrete_fields
        if isinstance(model_field, models.ForeignKey) and not model_field.choices
        for name in (model_field.name, model_field.attname)
    }


def entry_content(entry: Entry, labels: dict) -> tuple:
    """Everything the row of an entry shows depends on, but the code that renders it: the
    entry (its author's name included) and the names of the objects it points at. A row
    cached under it is never stale."""
    return (
        _plain(entry),
        tuple(
            (related_model._meta.label, pk, labels.get(related_model, {}).get(pk))
            for related_model, pk in _pointed_at(entry)
        ),
    )


def history_content(entries: list[Entry], labels: dict) -> tuple:
    """Everything the rows of these entries show depend on, but the code that renders them
    (``entry_content`` of them all, read at once): the entries and the names of all the
    objects they point at."""
    return (
        [_plain(entry) for entry in entries],
        sorted((model._meta.label, sorted(names.items())) for model, names in labels.items()),
    )


def _plain(entry: Entry) -> tuple:
    """The entry's values, its content type by id (its ``repr`` names no object)."""
    return (*entry[:2], entry.content_type.pk, *entry[3:])


def _pk(model_field: models.ForeignKey, value) -> object | None:
    if _empty(value):
        return None
    try:
        return model_field.related_model._meta.pk.to_python(str(value))
    except ValidationError:
        return None
