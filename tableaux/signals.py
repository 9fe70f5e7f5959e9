"""A change to what the dashboards read gives them a new version (tableaux/cache.py)."""

from django.db.models.signals import m2m_changed, post_delete, post_save

from actions.models import Axe, FicheAction, Financeur, Indicateur, LigneFinancement, Mesure
from communes.models import Beneficiaire, DecisionStatut, MembreBeneficiaire
from conventions.models import Convention
from postes.models import Occupation, Poste

from .cache import new_version

SOURCES = [
    FicheAction,
    Axe,
    LigneFinancement,
    Financeur,
    Indicateur,
    Mesure,
    Beneficiaire,
    MembreBeneficiaire,
    DecisionStatut,
    Convention,
    Poste,
    Occupation,
]


def changed(sender, **kwargs) -> None:
    new_version()


for model in SOURCES:
    post_save.connect(changed, sender=model, dispatch_uid=f"tableaux-{model._meta.label}-save")
    post_delete.connect(changed, sender=model, dispatch_uid=f"tableaux-{model._meta.label}-del")
m2m_changed.connect(changed, sender=Poste.beneficiaires.through, dispatch_uid="tableaux-postes")
