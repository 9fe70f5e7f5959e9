from datetime import date

from celery import shared_task
from django.utils import timezone

from pvd.jobs import HeartbeatTask

from . import chiffres
from .invitations import end_due_roles


@shared_task(base=HeartbeatTask)
def end_roles_of_departed() -> int:
    return end_due_roles(timezone.localdate())


@shared_task(ignore_result=True)
def refresh_chiffres(ids: list[int], today: str, year: int, funders: list[str] | None) -> None:
    """The posts list's figures of these posts, served stale since a write, computed again
    for the next reader (queued by postes/chiffres.py, one pending at a time per entry)."""
    funders = None if funders is None else set(funders)
    chiffres.refresh(ids, date.fromisoformat(today), year, funders)


@shared_task(base=HeartbeatTask)
def precompute_chiffres() -> bool:
    """The whole country's posts figures computed before a reader asks (beat; a write)."""
    return chiffres.precompute()
