from celery import shared_task

from pvd.jobs import JobTask

from .pdf import generate_document


@shared_task(base=JobTask, job_model="conventions.DocumentConvention", max_retries=5)
def generate_convention_pdf(document_id: int) -> None:
    generate_document(document_id)
