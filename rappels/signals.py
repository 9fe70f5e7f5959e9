"""A save that may end a reminder's situation closes it at once (rappels/sweep.py ``resolve``),
once its transaction commits: the measure entered, the convention signed, the date moved, the
post filled. Only the beneficiaries concerned are looked at; the sweep catches the rest
(changes made by ``QuerySet.update`` or ``bulk_create``, which send no signal)."""

import threading

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone

from actions.models import FicheAction, Indicateur, Mesure
from actions.signals import plan_imported
from communes.models import Beneficiaire, MembreBeneficiaire
from conventions.models import Convention
from gouvernance.models import Instance, Releve, Reunion, Suite
from postes.models import CofinancementAnnee, LigneCofinancement, Occupation, Poste

_pending = threading.local()


def schedule(kind: str, ids) -> None:
    """Resolve the reminders of these objects' beneficiaries after the commit: one pass for a
    whole transaction however many saves it holds (an import saves hundreds of fiches), and
    no query at save time (the beneficiaries are looked up then)."""
    ids = {pk for pk in ids if pk}
    if not ids:
        return
    if not hasattr(_pending, "ids"):
        _pending.ids = {}
    _pending.ids.setdefault(kind, set()).update(ids)
    transaction.on_commit(_run)


def _run() -> None:
    pending, _pending.ids = getattr(_pending, "ids", {}), {}
    beneficiaires = _beneficiaires(pending)
    territoires = _territoires(pending)
    if beneficiaires or territoires:
        from .sweep import resolve

        if beneficiaires:
            resolve(timezone.localdate(), beneficiaires=beneficiaires)
        if territoires:
            resolve(timezone.localdate(), territoires=territoires)


def _territoires(pending: dict[str, set[int]]) -> tuple[set[str], set[str]] | None:
    """The départements and régions of the instances (without beneficiary: CLCT…) saved or
    deleted, or whose meetings, relevés or follow-ups were saved; None when there are none."""
    paths = {"reunion": "instance__", "suite": "decision__reunion__instance__"}
    models = {"reunion": Reunion, "suite": Suite}
    departements = set(pending.get("departement", ()))
    regions = set(pending.get("region", ()))
    for kind, prefix in paths.items():
        if ids := pending.get(kind):
            rows = (
                models[kind]
                .objects.filter(pk__in=ids, **{f"{prefix}beneficiaire__isnull": True})
                .values_list(f"{prefix}departement_id", f"{prefix}region_id")
            )
            for departement_id, region_id in rows:
                departements.add(departement_id)
                regions.add(region_id)
    departements.discard(None)
    regions.discard(None)
    return (departements, regions) if departements or regions else None


def _beneficiaires(pending: dict[str, set[int]]) -> set[int]:
    """The beneficiaries of the objects saved: one query per kind of object."""
    found = set(pending.get("beneficiaire", ()))
    if ids := pending.get("fiche"):
        found.update(
            FicheAction.objects.filter(pk__in=ids).values_list("beneficiaire_id", flat=True)
        )
    if ids := pending.get("indicateur"):
        found.update(
            Indicateur.objects.filter(pk__in=ids).values_list("fiche__beneficiaire_id", flat=True)
        )
    poste_ids = set(pending.get("poste", ()))
    if ids := pending.get("annee"):
        poste_ids.update(
            CofinancementAnnee.objects.filter(pk__in=ids).values_list("poste_id", flat=True)
        )
    if poste_ids:
        through = Poste.beneficiaires.through.objects.filter(poste_id__in=poste_ids)
        found.update(through.values_list("beneficiaire_id", flat=True))
    if ids := pending.get("reunion"):
        found.update(
            Reunion.objects.filter(pk__in=ids).values_list("instance__beneficiaire_id", flat=True)
        )
    if ids := pending.get("suite"):
        found.update(
            Suite.objects.filter(pk__in=ids).values_list(
                "decision__reunion__instance__beneficiaire_id", flat=True
            )
        )
    return {pk for pk in found if pk}


def _what(instance) -> tuple[str, list[int]]:
    """Which object a save touches, as (kind, ids) for ``_beneficiaires``."""
    if isinstance(instance, Beneficiaire):  # its adhésion date entered or corrected
        return "beneficiaire", [instance.pk]
    if isinstance(instance, (Convention, MembreBeneficiaire, FicheAction)):
        return "beneficiaire", [instance.beneficiaire_id]
    if isinstance(instance, Indicateur):
        return "fiche", [instance.fiche_id]
    if isinstance(instance, Mesure):
        return "indicateur", [instance.indicateur_id]
    if isinstance(instance, Poste):
        return "poste", [instance.pk]
    if isinstance(instance, (Occupation, CofinancementAnnee)):
        return "poste", [instance.poste_id]
    if isinstance(instance, LigneCofinancement):
        return "annee", [instance.annee_id]
    if isinstance(instance, Instance):  # its frequency changed (the next due date), deleted
        if instance.beneficiaire_id:
            return "beneficiaire", [instance.beneficiaire_id]
        if instance.departement_id:
            return "departement", [instance.departement_id]
        return "region", [instance.region_id]
    if isinstance(instance, Reunion):  # held (the instance's next due date), cancelled
        return "reunion", [instance.pk]
    if isinstance(instance, Releve):  # the relevé published
        return "reunion", [instance.reunion_id]
    if isinstance(instance, Suite):  # marked done, its due date moved
        return "suite", [instance.pk]
    return "beneficiaire", []


SOURCES = [
    Beneficiaire,
    Convention,
    MembreBeneficiaire,
    FicheAction,
    Indicateur,
    Mesure,
    Poste,
    Occupation,
    CofinancementAnnee,
    LigneCofinancement,
    Instance,
    Reunion,
    Releve,
    Suite,
]


def changed(sender, instance, **kwargs) -> None:
    schedule(*_what(instance))


def postes_changed(sender, instance, action, pk_set=None, **kwargs) -> None:
    if not action.startswith("post_"):
        return
    if isinstance(instance, Poste):  # pk_set: the beneficiaries added or removed
        schedule("poste", [instance.pk])
        schedule("beneficiaire", pk_set or [])
    else:  # a beneficiary's posts changed
        schedule("beneficiaire", [instance.pk])


for model in SOURCES:
    label = model._meta.label
    post_save.connect(changed, sender=model, dispatch_uid=f"rappels-{label}-save")
    post_delete.connect(changed, sender=model, dispatch_uid=f"rappels-{label}-delete")
m2m_changed.connect(postes_changed, sender=Poste.beneficiaires.through, dispatch_uid="rappels-p")


def plan_was_imported(sender, beneficiaire, **kwargs) -> None:
    """The Excel import writes a plan's fiches and indicators in bulk, without their signals."""
    schedule("beneficiaire", [beneficiaire.pk])


plan_imported.connect(plan_was_imported, dispatch_uid="rappels-plan-imported")
