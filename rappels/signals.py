"""A save that may end a reminder's situation closes it at once (rappels/sweep.py ``resolve``),
once its transaction commits: the measure entered, the convention signed, the date moved, the
post filled. Only the beneficiaries concerned are looked at; the sweep catches the rest
(changes made by ``QuerySet.update`` or ``bulk_create``, which send no signal)."""

import threading

from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.utils import timezone

from actions.models import FicheAction, Indicateur, Mesure
from communes.models import Beneficiaire, MembreBeneficiaire
from conventions.models import Convention
from postes.models import CofinancementAnnee, LigneCofinancement, Occupation, Poste

_pending = threading.local()


def schedule(beneficiaire_ids) -> None:
    """Resolve these beneficiaries' reminders after the commit; one pass for a whole
    transaction however many saves it holds (an import saves hundreds of fiches)."""
    ids = {pk for pk in beneficiaire_ids if pk}
    if not ids:
        return
    if not hasattr(_pending, "ids"):
        _pending.ids = set()
    _pending.ids |= ids
    transaction.on_commit(_run)


def _run() -> None:
    ids, _pending.ids = getattr(_pending, "ids", set()), set()
    if ids:
        from .sweep import resolve

        resolve(timezone.localdate(), beneficiaires=ids)


def _poste_beneficiaires(poste_id) -> list[int]:
    through = Poste.beneficiaires.through.objects.filter(poste_id=poste_id)
    return list(through.values_list("beneficiaire_id", flat=True))


def _beneficiaires(instance) -> list[int]:
    if isinstance(instance, Beneficiaire):  # its adhésion date entered or corrected
        return [instance.pk]
    if isinstance(instance, (Convention, MembreBeneficiaire, FicheAction)):
        return [instance.beneficiaire_id]
    if isinstance(instance, Indicateur):
        return list(
            FicheAction.objects.filter(pk=instance.fiche_id).values_list(
                "beneficiaire_id", flat=True
            )
        )
    if isinstance(instance, Mesure):
        return list(
            Indicateur.objects.filter(pk=instance.indicateur_id).values_list(
                "fiche__beneficiaire_id", flat=True
            )
        )
    if isinstance(instance, Poste):
        return _poste_beneficiaires(instance.pk)
    if isinstance(instance, (Occupation, CofinancementAnnee)):
        return _poste_beneficiaires(instance.poste_id)
    if isinstance(instance, LigneCofinancement):
        poste_ids = CofinancementAnnee.objects.filter(pk=instance.annee_id).values("poste_id")
        through = Poste.beneficiaires.through.objects.filter(poste_id__in=poste_ids)
        return list(through.values_list("beneficiaire_id", flat=True))
    return []


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
]


def changed(sender, instance, **kwargs) -> None:
    schedule(_beneficiaires(instance))


def postes_changed(sender, instance, action, pk_set=None, **kwargs) -> None:
    if not action.startswith("post_"):
        return
    if isinstance(instance, Poste):  # pk_set: the beneficiaries added or removed
        schedule([*_poste_beneficiaires(instance.pk), *(pk_set or [])])
    else:  # a beneficiary's posts changed
        schedule([instance.pk])


for model in SOURCES:
    label = model._meta.label
    post_save.connect(changed, sender=model, dispatch_uid=f"rappels-{label}-save")
    post_delete.connect(changed, sender=model, dispatch_uid=f"rappels-{label}-delete")
m2m_changed.connect(postes_changed, sender=Poste.beneficiaires.through, dispatch_uid="rappels-p")
