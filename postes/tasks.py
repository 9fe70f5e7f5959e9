from celery import shared_task
from django.utils import timezone

from pvd.jobs import HeartbeatTask

from .invitations import end_due_roles


@shared_task(base=HeartbeatTask)
def end_roles_of_departed() -> int:
    return end_due_roles(timezone.localdate())
