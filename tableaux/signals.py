"""A change to what the dashboards read renews the versions of the territories it touches
(tableaux/cache.py).

The read-models whose output is cached under those versions declare the models they read
and, for each, its path to the beneficiary (``READS`` in tableaux/lecture.py, and
carte/choroplethe.py through carte/apps.py); their writes are connected by ``watch`` from
those declarations, never listed by hand, and the territories a write touches are read
along that path: the beneficiary, its département, its région and the programme (a path of
None: every territory). A save reads them before the write too, so that what moves from one
territory to another (a beneficiary changing département, a member commune or a post
changing beneficiary) renews both; a deletion reads them before the rows go.
tests/tableaux/test_dashboard_sources.py renders each cached fragment and fails if it reads
a table no declaration names.
"""

from collections.abc import Mapping

from django.db.models import Model
from django.db.models.signals import m2m_changed, post_save, pre_delete, pre_save

from actions.signals import plan_imported
from communes.models import Beneficiaire, Departement, Region
from gouvernance import pilotage

from .cache import (
    DASHBOARDS,
    PROGRAMME,
    TOUT,
    departement_scope,
    family_scope,
    region_scope,
    renew,
    scopes_of,
)
from .lecture import READS as LECTURE_READS

# label -> model: the models whose writes renew the dashboards' versions.
WATCHED: dict[str, type[Model]] = {}
# label -> the path from the model to the beneficiary ("": itself; None: every territory).
PATHS: dict[str, str | None] = {}
# label -> the families of read-models that read it (tableaux, carte): a write renews the
# versions of those only, so that a fiche changed leaves the map's fragments warm.
FAMILIES: dict[str, set[str]] = {}

# Models the cached dashboards read whose changes need no signal, with the reason.
UNWATCHED = {
    "communes.Region": "territorial reference data, changed by the importers only (TIMEOUT)",
    "communes.Departement": "territorial reference data, changed by the importers only (TIMEOUT)",
    "communes.Commune": "territorial reference data, changed by the importers only (TIMEOUT)",
    "communes.EPCI": "territorial reference data, changed by the importers only (TIMEOUT)",
    # The home's role cards (tableaux/dashboards.py role_cards) are keyed on the user's
    # perimeter version, which pvd/signals.py renews on any write to their roles.
    **{
        label: "a user's roles: in the key as their perimeter version (pvd/signals.py)"
        for label in (
            "pvd.Role",
            "pvd.Role_departements",
            "pvd.Role_communes",
            "pvd.Role_beneficiaires",
        )
    },
}

UID = "tableaux-{label}-{kind}"
BEFORE = "_tableaux_scopes_before"  # on a saved instance: the territories it had


def _holder(model: type[Model], path: str) -> str | None:
    """The prefix of the row on ``path`` just before the beneficiary when that row has a
    territory of its own (a département and a région, both optional: a governance instance
    of a beneficiary, a département or a région), None otherwise."""
    if not path:
        return None
    segments = path.split("__")[:-1]
    holder = model
    for segment in segments:
        holder = holder._meta.get_field(segment).related_model
    names = {field.name: field.related_model for field in holder._meta.fields if field.is_relation}
    if names.get("departement") is Departement and names.get("region") is Region:
        return "".join(f"{segment}__" for segment in segments)
    return None


def territories(model: type[Model], path: str | None, **filters) -> set[str]:
    """The scopes of the rows of ``model`` matching ``filters``, along ``path`` (one query);
    with those of the département or région of a row on the path that has its own."""
    if path is None:
        return {TOUT}
    prefix = f"{path}__" if path else ""
    fields = [path or "pk", f"{prefix}departement", f"{prefix}departement__region"]
    holder = _holder(model, path)
    if holder is not None:
        fields += [f"{holder}departement", f"{holder}departement__region", f"{holder}region"]
    rows = list(model._base_manager.filter(**filters).values_list(*fields))
    scopes = scopes_of(row[:3] for row in rows)
    for row in rows:
        own = {departement_scope(code) for code in row[3:4] if code}
        own |= {region_scope(code) for code in row[4:6] if code}
        scopes |= own | {PROGRAMME} if own else set()
    return scopes


def _of(sender, instance) -> set[str]:
    path = PATHS[sender._meta.label]
    if path is None:
        return {TOUT}
    if instance.pk is None:
        return set()
    return territories(sender, path, pk=instance.pk)


def before_save(sender, instance, **kwargs) -> None:
    """The territories an existing row leaves, read before the write."""
    if not instance._state.adding and instance.pk is not None:
        setattr(instance, BEFORE, _of(sender, instance))


def _renew(sender, scopes: set[str]) -> None:
    families = FAMILIES[sender._meta.label]
    renew({family_scope(family, scope) for family in families for scope in scopes})


def saved(sender, instance, **kwargs) -> None:
    _renew(sender, _of(sender, instance) | instance.__dict__.pop(BEFORE, set()))


def before_delete(sender, instance, **kwargs) -> None:
    _renew(sender, _of(sender, instance))


def links_changed(sender, instance, action, pk_set=None, **kwargs) -> None:
    """A many-to-many link added or removed: the beneficiaries of those links; all of the
    instance's links, before they are cleared."""
    if action not in ("post_add", "pre_remove", "pre_clear"):
        return
    fields = [field for field in sender._meta.fields if field.is_relation]
    own = next(field for field in fields if isinstance(instance, field.related_model))
    filters = {own.name: instance.pk}
    if action != "pre_clear":
        other = next(field for field in fields if field is not own)
        filters[f"{other.name}__in"] = pk_set or ()
    _renew(sender, territories(sender, PATHS[sender._meta.label], **filters))


def watch(models: Mapping[type[Model], str | None], family: str = DASHBOARDS) -> None:
    """Connect the renewal of the touched territories' versions, for this family of
    read-models, to every write of these models (for the through model of a many-to-many
    field, to changes of its links), with each model's path to the beneficiary."""
    for model, path in models.items():
        label = model._meta.label
        if label in PATHS and PATHS[label] != path:
            raise ValueError(f"{label}: two paths to the beneficiary ({PATHS[label]!r}, {path!r})")
        if model._meta.auto_created:
            uid = UID.format(label=label, kind="m2m")
            m2m_changed.connect(links_changed, sender=model, dispatch_uid=uid)
        else:
            for signal, receiver, kind in (
                (pre_save, before_save, "before"),
                (post_save, saved, "save"),
                (pre_delete, before_delete, "del"),
            ):
                uid = UID.format(label=label, kind=kind)
                signal.connect(receiver, sender=model, dispatch_uid=uid)
        WATCHED[label] = model
        PATHS[label] = path
        FAMILIES.setdefault(label, set()).add(family)


def connected_senders() -> set[str]:
    """The labels of the models this module's receivers are connected to, read back from
    the signals themselves (a model counts once its saves, deletions or links are)."""
    labels = set()
    for signal, kind in ((post_save, "save"), (pre_delete, "del"), (m2m_changed, "m2m")):
        for (uid, _sender), *_ in signal.receivers:
            prefix, _, rest = str(uid).partition("-")
            if prefix == "tableaux" and rest.endswith(f"-{kind}"):
                labels.add(rest.removesuffix(f"-{kind}"))
    return labels


def plan_was_imported(sender, beneficiaire, **kwargs) -> None:
    renew(territories(Beneficiaire, "", pk=beneficiaire.pk))


watch(LECTURE_READS)  # carte/apps.py watches the choropleth's own READS
watch(pilotage.READS, family=pilotage.FAMILLE)
# The Excel import writes a plan's fiches, lines and indicators in bulk, without their signals.
plan_imported.connect(plan_was_imported, dispatch_uid="tableaux-plan-imported")
