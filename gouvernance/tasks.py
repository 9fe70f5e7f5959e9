from celery import shared_task

from pvd.jobs import JobTask

from .pdf import generate_releve as generate


@shared_task(base=JobTask, job_model="gouvernance.Releve", max_retries=5)
def generate_releve(releve_id: int) -> None:
    generate(releve_id)
