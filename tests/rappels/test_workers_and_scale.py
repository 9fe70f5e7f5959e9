"""Real Celery workers racing, and the sweep's query count at two data sizes."""

from datetime import timedelta

import pytest
from dateutil.relativedelta import relativedelta
from django.core import mail
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from actions.models import FicheAction
from conventions.models import Convention
from pvd.models import Heartbeat
from rappels.models import Rappel
from rappels.sweep import record

from .conftest import TODAY, set_adhesion


@pytest.mark.django_db(transaction=True)
def test_two_sweep_tasks_in_a_real_worker_send_each_reminder_once(cdp_ussel, ussel_la_courtine):
    from celery.contrib.testing.worker import start_worker

    from pvd.celery import app
    from rappels.tasks import sweep_reminders

    Convention.objects.filter(beneficiaire=ussel_la_courtine, type="cadre").delete()
    set_adhesion(ussel_la_courtine, timezone.localdate() - relativedelta(months=12))
    app.conf.task_always_eager = False
    try:
        with start_worker(
            app, pool="threads", concurrency=2, perform_ping_check=False, loglevel="WARNING"
        ):
            results = [sweep_reminders.delay() for _ in range(2)]
            for result in results:
                result.get(timeout=60)
    finally:
        app.conf.task_always_eager = True

    rows = Rappel.objects.filter(destinataire=cdp_ussel, regle="convention_cadre")
    assert rows.count() == 1
    assert [m.to for m in mail.outbox].count([cdp_ussel.email]) == 1
    assert Heartbeat.objects.filter(task="rappels.tasks.sweep_reminders").exists()


@pytest.mark.django_db
def test_the_sweep_query_count_does_not_grow_with_the_number_of_fiches(
    ussel_la_courtine, cdp_ussel
):
    def add_overdue_fiches(count: int) -> None:
        axe = ussel_la_courtine.axes.first()
        FicheAction.objects.bulk_create(
            [
                FicheAction(
                    beneficiaire=ussel_la_courtine,
                    axe=axe,
                    titre=f"Fiche {i}",
                    reference=f"Q{count}-{i}",
                    date_fin_prevue=TODAY - timedelta(days=3),
                )
                for i in range(count)
            ]
        )

    from actions.models import ensure_axes

    ensure_axes(ussel_la_courtine)
    add_overdue_fiches(5)
    with CaptureQueriesContext(connection) as small:
        _, recorded_small = record(TODAY)
    add_overdue_fiches(50)
    with CaptureQueriesContext(connection) as large:
        _, recorded_large = record(TODAY)

    assert recorded_small >= 5 and recorded_large >= 50
    assert len(large) == len(small)
