from celery import shared_task

from pvd.jobs import HeartbeatTask, JobTask

from . import publication


@shared_task(base=JobTask, job_model="opendata.Publication", max_retries=3)
def build_publication(publication_id: int) -> None:
    publication.build_publication(publication_id)


@shared_task(base=HeartbeatTask)
def publish_opendata() -> int:
    """A fresh dated file of every open data set (beat: once a day)."""
    return len(publication.request_all())
