import logging
import time

from celery import shared_task

from pvd.jobs import HeartbeatTask, JobTask

from . import cache
from .bilan import generate_bilan as generate

logger = logging.getLogger(__name__)


@shared_task(base=JobTask, job_model="tableaux.Bilan", max_retries=5)
def generate_bilan(bilan_id: int) -> None:
    generate(bilan_id)


@shared_task(base=HeartbeatTask)
def refresh_programme() -> None:
    """Every territory's programme figures — France, each région, each département, and the
    partners' parts — recomputed before they age (beat: PROGRAMME_REFRESH)."""
    start = time.perf_counter()
    stored = cache.refresh_programme()
    logger.info(
        "Chiffres du programme recalculés en %.1f s : %s",
        time.perf_counter() - start,
        ", ".join(f"{level} {n}" for level, n in stored.items()),
    )


@shared_task(ignore_result=True)
def refresh_territory(level: str, code: str | None) -> None:
    """One territory's figures, stale since a change there or their age, recomputed for the
    next reader (queued by tableaux/cache.py, at most once a minute per territory)."""
    cache.refresh_territory(level, code)
