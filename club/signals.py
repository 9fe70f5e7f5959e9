"""A région, a département or a funder saved or deleted renews the version of the Club's
kept select options (club/filters.py: ``listes_gardees``), now and again once the write is
committed: a page read in between would otherwise keep the old list under the new version."""

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from .filters import LISTES, renew_lists


def lists_changed(**kwargs) -> None:
    renew_lists()
    transaction.on_commit(renew_lists)


def connect() -> None:
    for nom, queryset in LISTES.items():
        model = queryset().model
        for signal, kind in ((post_save, "save"), (post_delete, "delete")):
            signal.connect(lists_changed, sender=model, dispatch_uid=f"club-listes-{nom}-{kind}")
