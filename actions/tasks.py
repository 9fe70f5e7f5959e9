from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from pvd.jobs import HeartbeatTask, JobTask

from .exports import build_export

KEEP_EXPORTS = timedelta(days=7)


@shared_task(base=JobTask, job_model="actions.ExportPlan", max_retries=3)
def build_export_plan(export_id: int) -> None:
    build_export(export_id)


@shared_task(base=HeartbeatTask)
def purge_exports() -> int:
    """Delete the exports older than a week, with their files."""
    from .models import ExportPlan

    old = ExportPlan.objects.filter(requested_at__lt=timezone.now() - KEEP_EXPORTS)
    count = 0
    for export in old.iterator():
        if export.fichier:
            export.fichier.delete(save=False)
        export.delete()
        count += 1
    return count
