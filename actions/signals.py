"""A change to a plan gives it a new version, so its page's cached fragment is not served
again (actions/plan_cache.py)."""

from django.db.models.signals import post_delete, post_save
from django.dispatch import Signal, receiver

from .models import Axe, FicheAction, Financeur, LigneFinancement
from .plan_cache import CATALOGUE, new_plan_version

# Sent once by the Excel import (actions/excel.py), which writes a plan's rows in bulk
# without their own signals, with ``beneficiaire``: what a save of the plan triggers (its
# version here, the dashboards' version, the reminders' resolution) connects to it too.
plan_imported = Signal()


@receiver([post_save, post_delete], sender=FicheAction)
@receiver([post_save, post_delete], sender=Axe)
def fiche_or_axe_changed(sender, instance, **kwargs) -> None:
    new_plan_version(instance.beneficiaire_id)


@receiver([post_save, post_delete], sender=LigneFinancement)
def ligne_changed(sender, instance, **kwargs) -> None:
    try:
        fiche = instance.fiche  # loaded with the line by the forms and the import
    except FicheAction.DoesNotExist:
        return  # deleted with its fiche, whose own signal counts
    new_plan_version(fiche.beneficiaire_id)


@receiver([post_save, post_delete], sender=Financeur)
def catalogue_changed(sender, **kwargs) -> None:
    new_plan_version(CATALOGUE)


@receiver(plan_imported)
def plan_was_imported(sender, beneficiaire, **kwargs) -> None:
    new_plan_version(beneficiaire.pk)
