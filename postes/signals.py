"""A write to what the posts list reads renews the posts' data version (postes/chiffres.py):
the list's counts, totals and rows kept in the cache are computed again."""

from django.db.models.signals import m2m_changed, post_delete, post_save

from communes.models import Beneficiaire

from . import chiffres
from .models import CofinancementAnnee, LigneCofinancement, Occupation, Poste

# What the list, its counts and its totals read: the posts, their beneficiaries (names,
# départements and so régions), their occupations and their co-financing.
READS = (Poste, Occupation, CofinancementAnnee, LigneCofinancement, Beneficiaire)
LINKS = (Poste.beneficiaires.through,)


def changed(sender, **kwargs) -> None:
    chiffres.renew()


def links_changed(sender, action, **kwargs) -> None:
    if action in ("post_add", "post_remove", "post_clear"):
        chiffres.renew()


for model in READS:
    label = model._meta.label
    post_save.connect(changed, sender=model, dispatch_uid=f"postes-chiffres-{label}-save")
    post_delete.connect(changed, sender=model, dispatch_uid=f"postes-chiffres-{label}-del")
for through in LINKS:
    m2m_changed.connect(
        links_changed, sender=through, dispatch_uid=f"postes-chiffres-{through._meta.label}"
    )
