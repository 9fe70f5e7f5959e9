from datetime import timedelta

from celery import shared_task
from celery.contrib.django.task import DjangoTask
from django.utils import timezone

from .exports import TRANSIENT_ERRORS, build_export, mark_failed

KEEP_EXPORTS = timedelta(days=7)
STALLED_AFTER = timedelta(minutes=30)


class ExportPlanTask(DjangoTask):
    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        # Retries exhausted (or an unexpected error): the page must stop saying « en cours ».
        export_id = args[0] if args else kwargs.get("export_id")
        if export_id is not None:
            mark_failed(
                export_id,
                f"L'export a échoué après plusieurs tentatives ({type(exc).__name__}). "
                "Relancez-le plus tard.",
            )


@shared_task(
    base=ExportPlanTask,
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=True,
    max_retries=3,
)
def build_export_plan(export_id: int) -> None:
    build_export(export_id)


@shared_task
def purge_exports() -> int:
    """Fail the exports a killed worker left « en cours »; delete those older than a week."""
    from .models import ExportPlan

    now = timezone.now()
    ExportPlan.objects.filter(
        statut=ExportPlan.Statut.EN_COURS, requested_at__lt=now - STALLED_AFTER
    ).update(
        statut=ExportPlan.Statut.ECHEC,
        erreur="L'export n'a pas abouti (interrompu). Relancez-le.",
        finished_at=now,
    )
    old = ExportPlan.objects.filter(requested_at__lt=now - KEEP_EXPORTS)
    count = 0
    for export in old.iterator():
        if export.fichier:
            export.fichier.delete(save=False)
        export.delete()
        count += 1
    return count
