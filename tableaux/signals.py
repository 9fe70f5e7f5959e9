"""A change to what the dashboards read gives them a new version (tableaux/cache.py).

The read-models whose output is cached under that version declare the models they read
(``READS`` in tableaux/lecture.py, and carte/choroplethe.py through carte/apps.py); their
writes are connected by ``watch`` from those declarations, never listed by hand.
tests/tableaux/test_dashboard_sources.py renders each cached fragment and fails if it reads
a table no declaration names.
"""

from collections.abc import Iterable

from django.db.models import Model
from django.db.models.signals import m2m_changed, post_delete, post_save

from actions.signals import plan_imported

from .cache import new_version
from .lecture import READS as LECTURE_READS

# label -> model: the models whose writes give the dashboards a new version.
WATCHED: dict[str, type[Model]] = {}

# Models the cached dashboards read whose changes need no signal, with the reason.
UNWATCHED = {
    "communes.Region": "territorial reference data, changed by the importers only (TIMEOUT)",
    "communes.Departement": "territorial reference data, changed by the importers only (TIMEOUT)",
    "communes.Commune": "territorial reference data, changed by the importers only (TIMEOUT)",
    "communes.EPCI": "territorial reference data, changed by the importers only (TIMEOUT)",
}

UID = "tableaux-{label}-{kind}"


def changed(sender, **kwargs) -> None:
    new_version()


def watch(models: Iterable[type[Model]]) -> None:
    """Connect a new dashboards' version to every write of these models (for the
    through model of a many-to-many field, to changes of its links)."""
    for model in models:
        label = model._meta.label
        if model._meta.auto_created:
            uid = UID.format(label=label, kind="m2m")
            m2m_changed.connect(changed, sender=model, dispatch_uid=uid)
        else:
            post_save.connect(
                changed, sender=model, dispatch_uid=UID.format(label=label, kind="save")
            )
            post_delete.connect(
                changed, sender=model, dispatch_uid=UID.format(label=label, kind="del")
            )
        WATCHED[label] = model


def connected_senders() -> set[str]:
    """The labels of the models this module's receiver is connected to, read back from the
    signals themselves."""
    labels = set()
    for signal, kind in ((post_save, "save"), (post_delete, "del"), (m2m_changed, "m2m")):
        for (uid, _sender), *_ in signal.receivers:
            prefix, _, rest = str(uid).partition("-")
            if prefix == "tableaux" and rest.endswith(f"-{kind}"):
                labels.add(rest.removesuffix(f"-{kind}"))
    return labels


watch(LECTURE_READS)  # carte/apps.py watches the choropleth's own READS
# The Excel import writes a plan's fiches, lines and indicators in bulk, without their signals.
plan_imported.connect(changed, dispatch_uid="tableaux-plan-imported")
