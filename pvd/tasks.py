from celery import shared_task
from django.core import management


@shared_task
def ping(value: str = "pong") -> str:
    """Round trip through the broker, used to check that a worker answers."""
    return value


@shared_task
def clear_expired_sessions() -> None:
    management.call_command("clearsessions")
