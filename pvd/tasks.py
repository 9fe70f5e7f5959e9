from celery import shared_task
from django.core import management

from . import jobs


@shared_task
def ping(value: str = "pong") -> str:
    """Round trip through the broker, used to check that a worker answers."""
    return value


@shared_task(base=jobs.HeartbeatTask)
def clear_expired_sessions() -> None:
    management.call_command("clearsessions")


@shared_task(base=jobs.HeartbeatTask)
def watch_service() -> int:
    """Open and close the service's incidents; national staff are e-mailed once for each."""
    from . import health

    return len(health.watch())


@shared_task(base=jobs.HeartbeatTask)
def fail_stalled_jobs() -> int:
    """A worker killed mid-job never reports: the reaper says the job failed."""
    return jobs.fail_stalled()
