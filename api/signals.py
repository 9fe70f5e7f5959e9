"""A fiche changed (itself or its financing): mark it for the projects hub (api/hub.py)."""

from django.db import transaction
from django.db.models.signals import m2m_changed, post_save
from django.dispatch import receiver

from actions.models import FicheAction, LigneFinancement

from . import hub
from .models import EnvoiFiche


@receiver(post_save, sender=FicheAction)
@receiver(post_save, sender=LigneFinancement)
def mark_for_hub(sender, instance, **kwargs) -> None:
    if not hub.configured():
        return
    fiche_id = instance.pk if sender is FicheAction else instance.fiche_id
    transaction.on_commit(lambda: EnvoiFiche.marquer([fiche_id]))


@receiver(m2m_changed, sender=FicheAction.communes.through)
def mark_for_hub_on_communes(sender, instance, action, **kwargs) -> None:
    if action.startswith("post_") and isinstance(instance, FicheAction):
        mark_for_hub(FicheAction, instance)
