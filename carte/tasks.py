import logging
import time

from celery import shared_task

from pvd.jobs import HeartbeatTask

from . import precalcul

logger = logging.getLogger(__name__)


@shared_task(base=HeartbeatTask)
def refresh_carte() -> None:
    """The map's data for the readers who see everything, each territory's that is stale or
    missing recomputed (beat: carte/precalcul.py)."""
    start = time.perf_counter()
    stored = precalcul.refresh_stale()
    logger.info(
        "Données de la carte recalculées en %.1f s : %s",
        time.perf_counter() - start,
        ", ".join(f"{nom} {n}" for nom, n in stored.items()),
    )


@shared_task(ignore_result=True)
def refresh_donnees(nom: str, level: str, code: str | None) -> None:
    """One territory's data, stale since a change or its age, recomputed for the next reader
    (queued by carte/precalcul.py, at most once a minute per data and territory)."""
    precalcul.refresh(nom, level, code)
