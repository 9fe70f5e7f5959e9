from celery import shared_task

from pvd import jobs

from . import sweep


@shared_task(base=jobs.HeartbeatTask)
def sweep_reminders() -> dict:
    """The reminders sweep (rappels/sweep.py); safe to run twice, or in two workers at once."""
    report = sweep.sweep()
    return {
        "due": report.due,
        "recorded": report.recorded,
        "resolved": report.resolved,
        "emails": report.emails,
    }
