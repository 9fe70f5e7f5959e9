from celery import shared_task

from pvd.jobs import HeartbeatTask, JobTask

from . import cache
from .bilan import generate_bilan as generate


@shared_task(base=JobTask, job_model="tableaux.Bilan", max_retries=5)
def generate_bilan(bilan_id: int) -> None:
    generate(bilan_id)


@shared_task(base=HeartbeatTask)
def refresh_programme() -> None:
    """France's figures, recomputed before they expire (beat: PROGRAMME_REFRESH)."""
    cache.refresh_programme()
