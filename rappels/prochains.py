"""A reader's reminders on their home: the latest unread notifications about the
beneficiaries they follow, in one query, whatever the number of reminders."""

from django.db.models import QuerySet
from django.utils.http import url_has_allowed_host_and_scheme

from .models import Rappel

NB_RAPPELS = 5  # on the home; the notifications page lists them all


def rappels(user, beneficiaires: QuerySet | list[int], limit: int = NB_RAPPELS) -> list[Rappel]:
    """The user's own unread reminders about ``beneficiaires`` (a queryset read through
    ``for_user``, or ids), the latest due first. A reminder about a beneficiary the user no
    longer follows (a role changed) is left for the notifications page."""
    rows = list(
        Rappel.objects.for_user(user)
        .non_lus()
        .filter(beneficiaire__in=beneficiaires)
        .only("message", "lien", "echeance", "categorie")
        .order_by("-echeance", "-pk")[:limit]
    )
    for rappel in rows:
        # The links are the portal's own paths (rappels/regles.py); never follow another.
        if not url_has_allowed_host_and_scheme(rappel.lien, None):
            rappel.lien = ""
    return rows
