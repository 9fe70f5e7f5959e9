"""Which models the audit trail follows (django-auditlog): who changed what, and when."""

from collections import defaultdict
from collections.abc import Iterator
from functools import partial

from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.apps import apps
from django.core.exceptions import FieldDoesNotExist, ValidationError
from django.db import models

from .models import Role, User

auditlog.register(User, exclude_fields=["password", "last_login"])
auditlog.register(Role, m2m_fields={"departements", "communes"})
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
