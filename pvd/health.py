"""Is the service ready? Database, Redis, a worker and the beat, each checked apart.

``/healthz`` (liveness) asks the database only: restarting the web container cures nothing
when Redis or the worker is down. ``/readyz`` (readiness, for the orchestrator and national
staff) asks everything, each check bounded to about a second.
"""

import logging
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import DatabaseError, connection
from django.utils import timezone

from .jobs import beat_period
from .models import Heartbeat

logger = logging.getLogger(__name__)

OK = "ok"
DOWN = "indisponible"
NOT_USED = "non utilisé"  # no REDIS_URL: tasks run inside the web process (development)
WORKER_PING_TIMEOUT = 1.0  # seconds


@dataclass
class Check:
    name: str
    status: str
    detail: str = ""

    @property
    def down(self) -> bool:
        return self.status == DOWN


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("Readiness: the database does not answer: %s", exc)
        return Check("database", DOWN)
    return Check("database", OK)


def check_redis() -> Check:
    if not settings.REDIS_URL:
        return Check("redis", NOT_USED)
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=settings.REDIS_TIMEOUT,
        socket_timeout=settings.REDIS_TIMEOUT,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        logger.warning("Readiness: Redis does not answer: %s", exc)
        return Check("redis", DOWN)
    finally:
        client.close()
    return Check("redis", OK)


def check_worker(redis_check: Check) -> Check:
    """At least one Celery worker answers a ping through the broker."""
    if redis_check.status == NOT_USED:
        return Check("worker", NOT_USED)
    if redis_check.down:
        return Check("worker", DOWN, "le courtier Redis ne répond pas")
    from .celery import app

    try:
        replies = app.control.inspect(timeout=WORKER_PING_TIMEOUT).ping() or {}
    except Exception as exc:  # the broker went away between the two checks
        logger.warning("Readiness: worker ping failed: %s", exc)
        replies = {}
    if not replies:
        return Check("worker", DOWN, "aucun worker ne répond")
    return Check("worker", OK, f"{len(replies)} worker{'s' if len(replies) > 1 else ''}")


def beat_witness() -> str:
    """The most frequent periodic task: its heartbeat says whether the beat runs."""
    entries = settings.CELERY_BEAT_SCHEDULE.values()
    return min(entries, key=lambda entry: beat_period(entry["task"]))["task"]


def check_beat(heartbeats: dict[str, Heartbeat], now) -> Check:
    if not settings.REDIS_URL:
        return Check("beat", NOT_USED)
    task = beat_witness()
    heartbeat = heartbeats.get(task)
    if heartbeat is None:
        return Check("beat", DOWN, f"{task} n'a jamais abouti")
    if heartbeat.is_late(now):
        return Check("beat", DOWN, f"{task} n'a pas abouti depuis le {heartbeat.last_success}")
    # Any scheduled task that ran once and then stopped (twice its period without a success).
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        other = heartbeats.get(entry["task"])
        if other is not None and other.is_late(now):
            late = f"{other.task} n'a pas abouti depuis le {other.last_success}"
            return Check("beat", DOWN, late)
    return Check("beat", OK)


def periodic_tasks(heartbeats: dict[str, Heartbeat], now) -> list[dict]:
    """Each scheduled task with its last success: the material of a « Santé du service » page."""
    rows = []
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        heartbeat = heartbeats.get(entry["task"])
        rows.append(
            {
                "task": entry["task"],
                "period_seconds": int(beat_period(entry["task"]).total_seconds()),
                "last_success": heartbeat.last_success.isoformat() if heartbeat else None,
                "late": heartbeat is None or heartbeat.is_late(now),
            }
        )
    return rows


def task_rows(now) -> list[dict]:
    """For the « Santé du service » page: last run, next run and lateness of each task."""
    heartbeats = {heartbeat.task: heartbeat for heartbeat in Heartbeat.objects.all()}
    rows = []
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        period = beat_period(entry["task"])
        heartbeat = heartbeats.get(entry["task"])
        last = heartbeat.last_success if heartbeat else None
        next_run = last + period if last else None
        rows.append(
            {
                "name": name,
                "task": entry["task"],
                "period": period,
                "last_success": last,
                "next_run": next_run,
                "lateness": (now - next_run) if next_run and now > next_run else None,
                "late": heartbeat is None or heartbeat.is_late(now),
            }
        )
    return rows


def queue_length() -> int | None:
    """Messages waiting in the default Celery queue (None without Redis, or Redis down)."""
    if not settings.REDIS_URL:
        return None
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=settings.REDIS_TIMEOUT,
        socket_timeout=settings.REDIS_TIMEOUT,
    )
    try:
        return client.llen(settings.CELERY_TASK_DEFAULT_QUEUE)
    except redis.RedisError:
        return None
    finally:
        client.close()


def readiness(*, details: bool = False) -> tuple[bool, dict]:
    """(ready, report): ready when no component is down."""
    now = timezone.now()
    database = check_database()
    redis_check = check_redis()
    heartbeats = {}
    if not database.down:
        heartbeats = {heartbeat.task: heartbeat for heartbeat in Heartbeat.objects.all()}
    beat = (
        Check("beat", DOWN, "base de données indisponible")
        if database.down
        else check_beat(heartbeats, now)
    )
    checks = [database, redis_check, check_worker(redis_check), beat]
    ready = not any(check.down for check in checks)
    report: dict = {"status": OK if ready else "erreur"}
    for check in checks:
        report[check.name] = check.status
    if details:
        report["details"] = {check.name: check.detail for check in checks if check.detail}
        if not database.down:
            report["taches_periodiques"] = periodic_tasks(heartbeats, now)
    return ready, report
