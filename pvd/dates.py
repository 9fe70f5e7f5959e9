"""Dates of events that already happened (a signature, a decision, a recruitment step): never
in the future. Planned dates (an end of contract, a start) are free."""

from datetime import date

from django.core.exceptions import ValidationError
from django.utils import timezone


def date_passee(value: date | None) -> None:
    """Validator: an event that happened is dated today at the latest."""
    if value and value > timezone.localdate():
        raise ValidationError(
            "Cette date est dans le futur : indiquez la date à laquelle l'événement a eu lieu "
            "(aujourd'hui au plus tard).",
            code="date_future",
        )
