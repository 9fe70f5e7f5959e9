"""The background-job protocol (pvd/jobs.py), its reaper, heartbeats and /readyz."""

import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from actions.models import ExportPlan
from communes.models import MiseAJourReferentiel
from conventions.models import Convention, DocumentConvention
from conventions.tasks import generate_convention_pdf
from gouvernance.models import Releve
from opendata.models import Publication
from pvd.jobs import Job, JobRefused, job_models
from pvd.models import Deploiement, Heartbeat
from pvd.tasks import clear_expired_sessions, fail_stalled_jobs
from tableaux.models import Bilan

ROOT = Path(__file__).resolve().parents[2]
MARGIN = timedelta(seconds=settings.JOB_STALLED_MARGIN)
LIMIT = timedelta(seconds=DocumentConvention.time_limit()) + MARGIN
EXPORT_LIMIT = timedelta(seconds=ExportPlan.time_limit()) + MARGIN


@pytest.fixture
def convention(ussel_la_courtine):
    return Convention.objects.create(
        beneficiaire=ussel_la_courtine, type=Convention.Type.CADRE, titre="Convention-cadre"
    )


def document(convention, version: int, **fields) -> DocumentConvention:
    doc = DocumentConvention.objects.create(convention=convention, version=version)
    DocumentConvention.objects.filter(pk=doc.pk).update(**fields)
    return doc


def statut(job: Job) -> str:
    job.refresh_from_db()
    return job.statut


def test_every_long_task_is_a_job():
    assert set(job_models()) == {
        DocumentConvention,
        ExportPlan,
        Bilan,
        MiseAJourReferentiel,
        Deploiement,
        Releve,
        Publication,
    }
    for model in job_models():
        assert model.TASK and model.STALLED and "{error}" in model.FAILED_AFTER_RETRIES


def test_reaper_fails_jobs_of_every_kind_whose_worker_died(convention, national):
    now = timezone.now()
    killed_pdf = document(convention, 1, started_at=now - LIMIT - timedelta(seconds=1))
    running_pdf = document(convention, 2, started_at=now - LIMIT + timedelta(seconds=30))
    killed_export = ExportPlan.objects.create(perimetre="national", requested_by=national)
    ExportPlan.objects.filter(pk=killed_export.pk).update(
        started_at=now - EXPORT_LIMIT - timedelta(seconds=1)
    )
    long_export = ExportPlan.objects.create(perimetre="national", requested_by=national)
    ExportPlan.objects.filter(pk=long_export.pk).update(started_at=now - LIMIT * 2)

    assert fail_stalled_jobs() == 2

    assert statut(killed_pdf) == statut(killed_export) == Job.Statut.ECHEC
    assert killed_pdf.erreur == DocumentConvention.STALLED and killed_pdf.finished_at
    assert killed_export.erreur == ExportPlan.STALLED
    assert statut(running_pdf) == Job.Statut.EN_COURS
    assert statut(long_export) == Job.Statut.EN_COURS  # an export may run longer than a PDF


def test_reaper_waits_longer_for_a_job_still_in_the_queue(convention):
    now = timezone.now()
    queued = document(convention, 1, requested_at=now - timedelta(minutes=10))
    lost = document(
        convention, 2, requested_at=now - timedelta(seconds=settings.JOB_QUEUED_LIMIT + 1)
    )

    assert fail_stalled_jobs() == 1

    assert statut(queued) == Job.Statut.EN_COURS
    assert statut(lost) == Job.Statut.ECHEC


def test_a_killed_job_is_failed_within_minutes_not_half_an_hour():
    # Time limit + margin + one reaper period: how long a PDF version may say « en cours ».
    worst = LIMIT.total_seconds() + settings.JOB_REAPER_PERIOD
    assert worst <= 8 * 60
    schedule = {e["task"]: e["schedule"] for e in settings.CELERY_BEAT_SCHEDULE.values()}
    assert schedule["pvd.tasks.fail_stalled_jobs"] == settings.JOB_REAPER_PERIOD
    # A message a dead worker held comes back only once no live worker can still be on it.
    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert visibility >= max(EXPORT_LIMIT, LIMIT).total_seconds()


def test_each_job_task_runs_under_its_kind_time_limit():
    from actions.tasks import build_export_plan

    for task, model in (
        (generate_convention_pdf, DocumentConvention),
        (build_export_plan, ExportPlan),
    ):
        assert task.time_limit == model.time_limit()
        assert task.soft_time_limit < task.time_limit
        # Sent with the message, so the worker applies it.
        assert task._get_exec_options()["time_limit"] == model.time_limit()


def test_worker_stop_grace_period_exceeds_the_longest_job():
    compose = (ROOT / "docker-compose.yml").read_text()
    worker = compose.split("\n  worker:\n", 1)[1].split("\n  beat:\n", 1)[0]
    minutes = int(re.search(r"stop_grace_period: (\d+)m\n", worker).group(1))
    assert minutes * 60 > max(settings.JOB_TIME_LIMITS.values())


def test_a_job_is_marked_started_then_ready_with_its_file(convention, cdp_ussel):
    from conventions.pdf import request_generation

    before = timezone.now()
    doc = request_generation(convention, cdp_ussel)
    assert doc.statut == Job.Statut.EN_COURS and doc.started_at is None
    generate_convention_pdf.delay(doc.pk)  # eager in tests

    doc.refresh_from_db()
    assert doc.statut == Job.Statut.PRET
    assert before <= doc.started_at <= doc.finished_at
    assert doc.fichier.name.endswith(f"convention-{convention.pk}-v1.pdf")


def test_the_result_is_stored_once(convention):
    doc = document(convention, 1)

    assert DocumentConvention.store_result(doc.pk, ContentFile(b"%PDF-1"), sha256="a" * 64)
    assert not DocumentConvention.store_result(doc.pk, ContentFile(b"%PDF-2"), sha256="b" * 64)

    doc.refresh_from_db()
    assert doc.statut == Job.Statut.PRET and doc.sha256 == "a" * 64
    assert doc.fichier.read() == b"%PDF-1"


def test_a_job_the_reaper_failed_stays_failed_when_its_message_comes_back(convention):
    doc = document(convention, 1, started_at=timezone.now() - LIMIT * 2)
    fail_stalled_jobs()

    generate_convention_pdf.delay(doc.pk)  # the redelivered message of the dead worker

    doc.refresh_from_db()
    assert doc.statut == Job.Statut.ECHEC and not doc.fichier


def test_a_ready_job_cannot_fail(convention):
    doc = document(convention, 1, statut=Job.Statut.PRET)

    assert not DocumentConvention.mark_failed(doc.pk, "trop tard")

    assert statut(doc) == Job.Statut.PRET


# The one runner (Job.run) ----------------------------------------------------------------------

FAILED = "Échec ({error}) — {detail}"


def test_run_stores_the_work_once_and_a_second_run_changes_nothing(convention):
    doc = document(convention, 1)
    calls = []

    def work(job):
        calls.append(job.pk)
        return ContentFile(b"%PDF-1.7"), {"sha256": "abc"}

    assert DocumentConvention.run(doc.pk, work, failed=FAILED)
    assert not DocumentConvention.run(doc.pk, work, failed=FAILED)

    doc.refresh_from_db()
    assert (doc.statut, doc.sha256, doc.fichier.read()) == (Job.Statut.PRET, "abc", b"%PDF-1.7")
    assert calls == [doc.pk]


def test_run_fails_the_row_with_the_kinds_message_on_an_error(convention):
    doc = document(convention, 1)

    def work(job):
        raise ValueError("colonne inconnue")

    assert not DocumentConvention.run(doc.pk, work, failed=FAILED)

    doc.refresh_from_db()
    assert doc.statut == Job.Statut.ECHEC
    assert doc.erreur == "Échec (ValueError) — ValueError : colonne inconnue"


def test_run_fails_a_refused_job_with_the_refusals_own_words(convention):
    doc = document(convention, 1)

    def work(job):
        raise JobRefused("Le demandeur n'a plus le droit.")

    DocumentConvention.run(doc.pk, work, failed=FAILED)

    doc.refresh_from_db()
    assert (doc.statut, doc.erreur) == (Job.Statut.ECHEC, "Le demandeur n'a plus le droit.")


def test_run_lets_an_io_hiccup_through_so_that_the_task_retries(convention):
    doc = document(convention, 1)

    def work(job):
        raise ConnectionError("stockage")

    with pytest.raises(ConnectionError):
        DocumentConvention.run(doc.pk, work, failed=FAILED)
    assert statut(doc) == Job.Statut.EN_COURS


def test_the_job_tasks_use_the_one_runner():
    for path in ("actions/exports.py", "conventions/pdf.py", "tableaux/bilan.py"):
        text = (ROOT / path).read_text(encoding="utf-8")
        assert ".run(" in text and "mark_failed" not in text and "store_result" not in text


# Heartbeats of periodic tasks ------------------------------------------------------------------


def test_each_periodic_task_records_its_last_success_and_period(db):
    fail_stalled_jobs.delay()
    clear_expired_sessions.delay()

    beats = {beat.task: beat for beat in Heartbeat.objects.all()}
    assert beats["pvd.tasks.fail_stalled_jobs"].period == timedelta(minutes=1)
    assert beats["pvd.tasks.clear_expired_sessions"].period == timedelta(days=1)
    now = timezone.now()
    assert not beats["pvd.tasks.fail_stalled_jobs"].is_late(now)
    assert beats["pvd.tasks.fail_stalled_jobs"].is_late(now + timedelta(minutes=3))


# Readiness ---------------------------------------------------------------------------------------


def test_healthz_stays_the_database_liveness_check(client, db):
    response = client.get(reverse("portail:healthz"))
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


@pytest.mark.django_db(transaction=True)
def test_the_service_report_sees_a_live_worker_and_beat(settings):
    from celery.contrib.testing.worker import start_worker

    from pvd import health
    from pvd.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = False  # as in production: a worker and a beat
    Heartbeat.objects.create(
        task="pvd.tasks.fail_stalled_jobs", last_success=timezone.now(), period=timedelta(minutes=1)
    )
    app.conf.task_always_eager = False
    try:
        with start_worker(app, perform_ping_check=False, loglevel="WARNING"):
            report = health.service_report()
    finally:
        app.conf.task_always_eager = True

    statuses = {check.name: check.status for check in report.checks}
    assert statuses["worker"] == statuses["beat"] == "ok"
