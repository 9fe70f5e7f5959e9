from celery import shared_task
from celery.contrib.django.task import DjangoTask

from .pdf import TRANSIENT_ERRORS, generate_document, mark_failed


class ConventionPdfTask(DjangoTask):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        # Retries exhausted (or an unexpected error): the page must stop saying « en cours ».
        document_id = args[0] if args else kwargs.get("document_id")
        if document_id is not None:
            mark_failed(
                document_id,
                "La génération du PDF a échoué après plusieurs tentatives "
                f"({type(exc).__name__}). La version précédente reste disponible ; "
                "relancez la génération plus tard.",
            )


@shared_task(
    base=ConventionPdfTask,
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=5,
)
def generate_convention_pdf(document_id: int) -> None:
    generate_document(document_id)


@shared_task
def fail_stalled_generations() -> int:
    """A worker killed mid-render never reports: after 30 minutes, say it failed."""
    from datetime import timedelta

    from django.utils import timezone

    from .models import DocumentConvention

    stalled = DocumentConvention.objects.filter(
        statut=DocumentConvention.Statut.EN_COURS,
        requested_at__lt=timezone.now() - timedelta(minutes=30),
    )
    return stalled.update(
        statut=DocumentConvention.Statut.ECHEC,
        erreur="La génération n'a pas abouti (interrompue). "
        "La version précédente reste disponible ; relancez la génération.",
    )
