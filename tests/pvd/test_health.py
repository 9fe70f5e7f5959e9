"""Honest health: /readyz answers for serving pages only, « Santé du service » names each
failure's real cause, agrees with its rows, and national staff are told once per incident."""

import smtplib
from datetime import UTC, datetime, timedelta

import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from pvd import health
from pvd.french import duree
from pvd.jobs import HeartbeatTask
from pvd.mfa import MFA_VIA_IDP_SESSION_KEY
from pvd.models import Heartbeat, Incident
from pvd.tasks import fail_stalled_jobs

pytestmark = pytest.mark.django_db

CLOSED_PORT = 1  # nothing listens there: connections are refused at once


@pytest.fixture
def production(settings):
    """Periodic tasks scheduled, as in production (the tests run tasks in-process). Celery
    reads this setting too: a test that runs a task here calls ``apply()``."""
    settings.CELERY_TASK_ALWAYS_EAGER = False


@pytest.fixture
def worker_answers(monkeypatch):
    monkeypatch.setattr(health, "check_worker", lambda redis: health.Check("worker", health.OK))


@pytest.fixture
def beat_runs():
    Heartbeat.objects.create(
        task="pvd.tasks.fail_stalled_jobs", last_success=timezone.now(), period=timedelta(minutes=1)
    )


def santé(client) -> str:
    response = client.get(reverse("rappels:sante"))
    assert response.status_code == 200
    return response.content.decode()


def national_fully_logged_in(client_for, national):
    client = client_for(national)
    session = client.session
    session[MFA_VIA_IDP_SESSION_KEY] = True
    session.save()
    return client


# /readyz -----------------------------------------------------------------------------------------


def test_readyz_is_ready_without_worker_nor_beat(client, production):
    response = client.get(reverse("portail:readyz"))

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_readyz_is_503_when_redis_is_required_and_down(client, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{CLOSED_PORT}/0"

    response = client.get(reverse("portail:readyz"))

    assert response.status_code == 503
    assert response.json()["redis"] == "indisponible"


def test_readyz_is_503_when_the_database_does_not_answer(client, monkeypatch):
    down = health.Check("database", health.DOWN, "la base de données ne répond pas")
    monkeypatch.setattr(health, "check_database", lambda: down)

    response = client.get(reverse("portail:readyz"))

    assert response.status_code == 503
    assert response.json()["database"] == "indisponible"


def test_readyz_is_ready_when_only_smtp_is_down(client, settings, production):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", CLOSED_PORT

    assert client.get(reverse("portail:readyz")).status_code == 200


def test_readyz_details_only_for_national_staff_past_their_second_factor(
    client, client_for, national, prefecture_19, worker_answers, beat_runs, production, settings
):
    settings.PVD_MFA_ENFORCED = True
    assert "service" not in client.get(reverse("portail:readyz")).json()
    assert "service" not in client_for(prefecture_19).get(reverse("portail:readyz")).json()
    # National, but the second factor not passed in this session.
    assert "service" not in client_for(national).get(reverse("portail:readyz")).json()

    client = national_fully_logged_in(client_for, national)
    report = client.get(reverse("portail:readyz")).json()["service"]

    assert report["composants"]["worker"] == "ok" and report["composants"]["beat"] == "ok"
    tasks = {row["task"]: row for row in report["taches_periodiques"]}
    assert tasks["pvd.tasks.fail_stalled_jobs"]["etat"] == "À l'heure"
    assert tasks["actions.tasks.purge_exports"]["dernier_succes"] == "jamais"


# « Santé du service » -----------------------------------------------------------------------------


def test_without_beat_the_page_says_the_periodic_tasks_are_not_running(client_for, national):
    page = santé(client_for(national))  # the test settings run tasks in-process, like make run

    assert "Les tâches périodiques ne tournent pas" in page
    assert "Non planifiée" in page
    assert "En retard" not in page and "dégradé" not in page and "Tout fonctionne" not in page


def test_with_every_task_on_time_the_summary_says_so(
    client_for, national, production, worker_answers
):
    for name in sorted({e["task"] for e in health.settings.CELERY_BEAT_SCHEDULE.values()}):
        period = health.beat_period(name)
        Heartbeat.objects.create(task=name, last_success=timezone.now(), period=period)

    page = santé(client_for(national))

    assert "Tout fonctionne : chaque tâche périodique a abouti à temps." in page
    assert "En retard" not in page and "En échec" not in page and "jamais" not in page
    assert "Pas encore exécutée" not in page


def test_a_dead_worker_is_named_as_such_not_as_a_stopped_beat(
    client_for, national, production, beat_runs, monkeypatch
):
    dead = health.Check("worker", health.DOWN, "aucun worker ne répond")
    monkeypatch.setattr(health, "check_worker", lambda redis: dead)

    report = health.service_report()

    assert report.incidents == {"Worker": "aucun worker ne répond"}
    statuses = {check.name: check.status for check in report.checks}
    assert statuses["beat"] == "inconnu"
    assert "Worker : aucun worker ne répond" in santé(client_for(national))


def test_a_database_outage_is_named_alone(monkeypatch):
    down = health.Check("database", health.DOWN, "la base de données ne répond pas")
    monkeypatch.setattr(health, "check_database", lambda: down)

    report = health.service_report()

    assert report.incidents == {"Base de données": "la base de données ne répond pas"}


def test_a_sweep_failing_on_smtp_shows_failing_with_smtp_as_its_cause(
    client_for, national, production, worker_answers, beat_runs, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", CLOSED_PORT
    try:
        smtplib.SMTP("127.0.0.1", CLOSED_PORT, timeout=1)
    except OSError as exc:
        refused = exc
    task = HeartbeatTask()
    task.name = "rappels.tasks.sweep_reminders"
    task.on_failure(refused, "id", (), {}, None)

    heartbeat = Heartbeat.objects.get(task="rappels.tasks.sweep_reminders")
    assert heartbeat.failure_cause == "SMTP" and heartbeat.failing
    page = santé(client_for(national))
    assert "En échec" in page and "SMTP — échec le" in page
    assert "Serveur de courriel (SMTP) : le serveur de courriel refuse ou ne répond pas" in page
    assert "Beat : ok" in page  # the beat runs: it is not blamed


def test_causes_are_told_apart():
    from django.db import OperationalError
    from redis import ConnectionError as RedisConnectionError

    assert health.failure_cause(OperationalError("x"))[0] == "base de données"
    assert health.failure_cause(RedisConnectionError("x"))[0] == "Redis"
    assert health.failure_cause(smtplib.SMTPServerDisconnected("x"))[0] == "SMTP"
    assert health.failure_cause(ValueError("x"))[0] == "erreur"


def test_durations_and_times_are_french_and_local():
    assert duree(timedelta(days=1)) == "1 jour"
    assert duree(timedelta(hours=2)) == "2 heures"
    assert duree(timedelta(hours=1, minutes=30)) == "1 heure 30 minutes"
    assert duree(timedelta(days=1, minutes=5)) == "1 jour"
    assert duree(timedelta(seconds=60)) == "1 minute"
    at = datetime(2026, 12, 1, 13, 5, tzinfo=UTC)  # 14:05 in Paris
    assert health.moment(at, at) == "le 1er décembre 2026 à 14:05"
    assert health.moment(at, at + timedelta(hours=2)).endswith("(il y a 2 heures)")


# Alerts to national staff -------------------------------------------------------------------------


def test_national_staff_are_told_once_per_incident_and_again_for_a_new_one(
    national, production, worker_answers, beat_runs, monkeypatch
):
    dead = health.Check("worker", health.DOWN, "aucun worker ne répond")
    monkeypatch.setattr(health, "check_worker", lambda redis: dead)

    health.watch()
    health.watch()

    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == [national.email]
    assert "Worker : aucun worker ne répond" in mail.outbox[0].body
    incident = Incident.objects.get()
    assert incident.alerte_le is not None and incident.fin is None

    monkeypatch.setattr(health, "check_worker", lambda redis: health.Check("worker", health.OK))
    fail_stalled_jobs.apply()  # run here, whatever the settings say
    health.watch()  # the other tasks have not run yet: not an incident
    incident.refresh_from_db()
    assert incident.fin is not None and len(mail.outbox) == 1

    monkeypatch.setattr(health, "check_worker", lambda redis: dead)
    health.watch()
    assert len(mail.outbox) == 2


def test_an_alert_that_cannot_leave_is_sent_once_smtp_is_back(
    national, production, worker_answers, beat_runs, settings
):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", CLOSED_PORT

    health.watch()
    smtp = Incident.objects.get(composant="Serveur de courriel (SMTP)")
    assert smtp.alerte_le is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    health.alert_pending(timezone.now())
    smtp.refresh_from_db()
    assert smtp.alerte_le is not None and len(mail.outbox) == 1


# A job whose worker is gone -----------------------------------------------------------------------


@pytest.fixture
def no_worker(production, monkeypatch):
    from django.core.cache import cache

    cache.delete(health.WORKERS_KEY)
    dead = health.Check("worker", health.DOWN, "aucun worker ne répond")
    monkeypatch.setattr(health, "check_worker", lambda redis: dead)
    yield
    cache.delete(health.WORKERS_KEY)


def waiting_since(job, seconds: int):
    type(job).objects.filter(pk=job.pk).update(
        requested_at=timezone.now() - timedelta(seconds=seconds)
    )
    return job


@pytest.fixture
def export(national):
    from actions.models import ExportPlan

    return ExportPlan.objects.create(perimetre="national", requested_by=national)


def test_an_export_waiting_for_a_dead_worker_says_so_within_a_minute(
    client_for, national, export, no_worker
):
    from pvd.jobs import NO_WORKER

    client = client_for(national)
    url = reverse("actions:export-progress", args=[export.pk])
    waiting_since(export, 5)
    assert "l’export continue" in client.get(url).content.decode()

    waiting_since(export, 30)
    page = client.get(url).content.decode()

    assert NO_WORKER in page and "l’export continue" not in page
    assert "data-hx-trigger" in page  # still polling: a worker that comes back takes it
    assert Incident.objects.filter(composant="Worker", fin__isnull=True).count() == 1
    assert len(mail.outbox) == 1
    client.get(url)
    assert len(mail.outbox) == 1  # told once


def test_a_live_worker_gives_no_notice(client_for, national, export, production, worker_answers):
    from pvd.jobs import NO_WORKER

    waiting_since(export, 600)
    page = client_for(national).get(reverse("actions:export-progress", args=[export.pk]))

    assert NO_WORKER not in page.content.decode()


def test_without_workers_at_all_jobs_run_in_process_and_give_no_notice(national, export):
    waiting_since(export, 600)

    assert export.waiting_notice() == ""


def test_a_convention_pdf_and_a_bilan_waiting_for_a_dead_worker_say_so(
    client_for, cdp_ussel, ussel_la_courtine, no_worker
):
    from conventions.models import Convention, DocumentConvention
    from pvd.jobs import NO_WORKER
    from tableaux.models import Bilan

    convention = Convention.objects.create(
        beneficiaire=ussel_la_courtine, type=Convention.Type.CADRE, titre="Convention-cadre"
    )
    document = DocumentConvention.objects.create(convention=convention, version=1)
    bilan = Bilan.objects.create(beneficiaire=ussel_la_courtine, requested_by=cdp_ussel)
    waiting_since(document, 30)
    waiting_since(bilan, 30)

    page = client_for(cdp_ussel).get(reverse("conventions:documents", args=[convention.pk]))
    assert NO_WORKER in page.content.decode()
    bilans = reverse("tableaux:bilans", args=[ussel_la_courtine.pk])
    page = client_for(cdp_ussel).get(bilans).content.decode()
    assert NO_WORKER in page and "data-hx-trigger" in page


def test_the_bilans_stop_polling_once_ready_and_stay_in_their_territory(
    client_for, cdp_ussel, prefecture_36, ussel_la_courtine
):
    from tableaux.models import Bilan

    bilan = Bilan.objects.create(beneficiaire=ussel_la_courtine, requested_by=cdp_ussel)
    url = reverse("tableaux:bilans", args=[ussel_la_courtine.pk])
    assert "data-hx-trigger" in client_for(cdp_ussel).get(url).content.decode()

    Bilan.objects.filter(pk=bilan.pk).update(statut=Bilan.Statut.ECHEC, erreur="Échec.")
    assert "data-hx-trigger" not in client_for(cdp_ussel).get(url).content.decode()
    assert client_for(prefecture_36).get(url).status_code == 404


def test_a_failed_export_offers_to_run_it_again(client_for, national, export):
    from pvd.jobs import Job

    type(export).mark_failed(export.pk, "Le traitement n'a pas abouti (interrompu). Relancez-le.")

    page = client_for(national).get(reverse("actions:export-progress", args=[export.pk]))

    html = page.content.decode()
    assert "Relancer l’export" in html
    assert f'action="{reverse("actions:export-national")}"' in html
    assert type(export).objects.get(pk=export.pk).statut == Job.Statut.ECHEC
