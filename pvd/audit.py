"""Which models the audit trail follows (django-auditlog): who changed what, and when."""

import ipaddress
from collections import defaultdict
from collections.abc import Iterator
from functools import partial

from allauth.account import signals as allauth_signals
from allauth.mfa import signals as mfa_signals
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.apps import apps
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models
from django.dispatch import receiver

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

# The project's models the journal does not follow, each with its reason
# (tests/pvd/test_registries.py fails on a model in neither list).
AUDIT_EXEMPT = {
    "pvd.ImportRun": "it is itself the record of an import: who ran it, when, what it changed",
    "pvd.Heartbeat": "written by the periodic tasks, not by people",
    "pvd.Incident": "written by the service's own health checks, not by people",
    "actions.ExportPlan": "a generated file (a job row); the request is not a change of data",
    "tableaux.Bilan": "a generated file (a job row); the request is not a change of data",
    "rappels.Rappel": "written by the reminders sweep; reading one is not a change of data",
    "rappels.Recapitulatif": "the record of a digest sent by the sweep",
    "rappels.Preference": "a person's own e-mail preferences, not programme data",
}

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


def with_related_labels(entries: list[LogEntry]) -> list[LogEntry]:
    """Let `changes_display_dict` name related objects without one query per entry.

    auditlog loads each changed foreign key's object with its own query
    (`_get_changes_display_for_fk_field`): a journal page would cost one query per foreign key
    in its entries. Here the page's keys are loaded together, one query per related model.
    """
    wanted: dict[type[models.Model], set] = defaultdict(set)
    for entry in entries:
        for field, value in _foreign_key_changes(entry):
            wanted[field.related_model].add(value)
    labels = {
        model: {
            pk: str(obj) for pk, obj in model._default_manager.select_related().in_bulk(pks).items()
        }
        for model, pks in wanted.items()
    }
    for entry in entries:
        # An instance attribute takes precedence over auditlog's method of the same name.
        entry._get_changes_display_for_fk_field = partial(_related_label, labels)
    return entries


def _foreign_key_changes(entry: LogEntry) -> Iterator[tuple[models.Field, object]]:
    model = entry.content_type.model_class()
    if model is None:
        return
    for name, values in entry.changes_dict.items():
        try:
            field = model._meta.get_field(name)
        except FieldDoesNotExist:
            continue
        if not isinstance(field, models.ForeignKey) or field.choices:
            continue
        for value in values:
            pk = _pk(field, value)
            if pk is not None:
                yield field, pk


def _pk(field: models.ForeignKey, value) -> object | None:
    if value is None or str(value) == "None":
        return None
    try:
        return field.related_model._meta.pk.to_python(str(value))
    except ValidationError:
        return None


def _related_label(labels: dict, field: models.ForeignKey, value) -> str:
    pk = _pk(field, value)
    if pk is None:
        return str(value)
    label = labels.get(field.related_model, {}).get(pk)
    if label is None:
        return f"{field.related_model._meta.verbose_name} supprimé(e) ({value})"
    return label
