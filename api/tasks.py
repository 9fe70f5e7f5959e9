from celery import shared_task

from pvd.jobs import HeartbeatTask

from . import hub


@shared_task(base=HeartbeatTask)
def push_hub() -> dict[str, int]:
    """Send the changed fiches to the national projects hub, when it is configured."""
    return hub.push()
