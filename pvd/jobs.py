"""How long work runs: one protocol for every background job (PDF versions, exports…).

A job is a row (``Job``: status, error, file, who asked and when). The working module
requests it with ``Model.request(**fields)``: the row is created and its task queued once
the transaction commits (``enqueue_on_commit``; a broker that does not answer fails the row
at once). The task, built on ``JobTask``, loads the row by id and calls one plain function
of the working module, which hands its work to ``Model.run``: the one runner loads the row
still « en cours », calls the work, stores its result once (``Model.store_result``) or fails
the row with a message the requester reads. The beat
runs ``pvd.tasks.fail_stalled_jobs`` every minute: a job whose worker died is marked
failed. ``tasks.py`` imports the working module, never the reverse: the model names its
task by its dotted path (``TASK``).

Timing (see settings, « Redis, Celery and background jobs »): a job task is stopped after
its kind's limit in ``JOB_TIME_LIMITS``; a job started longer ago than that plus
``JOB_STALLED_MARGIN`` cannot still be running, so the reaper fails it. A job never started after
``JOB_QUEUED_LIMIT`` (no worker, message lost) fails too.

Progress (``Progress``): a long job records how far it got every ``PROGRESS_SECONDS`` of
work, whatever the number of rows: one write every few seconds, not one per so many rows.
"""

import logging
import time
from collections.abc import Callable, Iterable
from datetime import timedelta

import botocore.exceptions
from celery.contrib.django.task import DjangoTask
from django.apps import apps
from django.conf import settings
from django.core.files.base import File
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)

# Storage and I/O hiccups (the object store out of reach included): worth a retry of the task;
# anything else is a real failure.
TRANSIENT_ERRORS = (
    OSError,
    ConnectionError,
    botocore.exceptions.ConnectionError,
    botocore.exceptions.HTTPClientError,
)
UNAVAILABLE = "Service momentanément indisponible, réessayez dans quelques minutes."
# What the person waiting reads once no worker answers (the job stays queued: a worker that
# comes back takes it). Shown within a minute: a job older than NOTICE_AFTER asks whether a
# worker answers (an answer kept pvd.health.WORKERS_ANSWER_TTL seconds) on each 2-second poll.
NO_WORKER = "Aucun service de génération ne répond ; votre demande sera traitée à son retour."
NOTICE_AFTER = timedelta(seconds=20)


# How often a long job records its progress: about as often as the waiting page asks for it
# (every 2 seconds), and a bounded number of writes however many rows the job writes.
PROGRESS_SECONDS = 2.0


class Progress:
    """Tells ``report`` how far the work got, at most once per ``every`` seconds of ``clock``
    (``time.monotonic``; a test gives its own): ``progress(done)`` may be called on each row.
    """

    def __init__(
        self,
        report: Callable[[int], object],
        every: float = PROGRESS_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.report, self.every, self.clock = report, every, clock
        self.next_at = clock() + every

    def __call__(self, done: int) -> None:
        now = self.clock()
        if now >= self.next_at:
            self.report(done)
            self.next_at = now + self.every


class JobRefused(Exception):
    """The work will not be done, for a reason the requester reads as is (no retry)."""


# What a job's work returns: the file to store, and the row's fields to set with it.
Result = tuple[File, dict]


class JobQuerySet(models.QuerySet):
    def stalled(self, now) -> "JobQuerySet":
        """Still « en cours » although no worker can be on it any more."""
        started_before = now - timedelta(
            seconds=self.model.time_limit() + settings.JOB_STALLED_MARGIN
        )
        queued_before = now - timedelta(seconds=settings.JOB_QUEUED_LIMIT)
        return self.filter(statut=Job.Statut.EN_COURS).filter(
            Q(started_at__lt=started_before)
            | Q(started_at__isnull=True, requested_at__lt=queued_before)
        )


class Job(models.Model):
    """The shape of every background job; a subclass names its file and its messages."""

    class Statut(models.TextChoices):
        EN_COURS = "en_cours", "En cours"
        PRET = "pret", "Prêt"
        ECHEC = "echec", "Échec"

    statut = models.CharField(
        "statut", max_length=20, choices=Statut.choices, default=Statut.EN_COURS
    )
    fichier = models.FileField("fichier", blank=True)
    erreur = models.TextField("erreur", blank=True)
    requested_by = models.ForeignKey(
        "pvd.User",
        verbose_name="demandé par",
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
    )
    requested_at = models.DateTimeField("demandé le", auto_now_add=True)
    started_at = models.DateTimeField("commencé le", null=True, blank=True)
    finished_at = models.DateTimeField("terminé le", null=True, blank=True)

    objects = JobQuerySet.as_manager()

    # The dotted path of the task that does the job (named, not imported: tasks.py imports
    # the working module, never the reverse).
    TASK = ""
    # What the requester reads when the job fails without a message of its own.
    FAILED_AFTER_RETRIES = "Le traitement a échoué après plusieurs tentatives ({error})."
    STALLED = "Le traitement n'a pas abouti (interrompu). Relancez-le."

    class Meta:
        abstract = True

    def result_filename(self) -> str:
        raise NotImplementedError

    def waiting_notice(self) -> str:
        """For the person waiting on a job still « en cours »: ``NO_WORKER`` when no worker
        answers (and the incident is recorded for national staff), else nothing."""
        if self.statut != self.Statut.EN_COURS or self.pk is None:
            return ""
        since = self.started_at or self.requested_at
        if since is None or timezone.now() - since < NOTICE_AFTER:
            return ""
        from . import health

        if health.workers_answer():
            return ""
        health.when_no_worker_answers()
        return NO_WORKER

    @classmethod
    def time_limit(cls) -> int:
        """Seconds a task of this kind may run (settings.JOB_TIME_LIMITS)."""
        return settings.JOB_TIME_LIMITS[cls._meta.label]

    @classmethod
    def request(cls, **fields) -> "Job":
        """Record the job and queue its task once the transaction commits."""
        with transaction.atomic():
            job = cls.objects.create(statut=cls.Statut.EN_COURS, **fields)
            enqueue_on_commit(job)
        return job

    @classmethod
    def mark_started(cls, pk: int) -> None:
        cls.objects.filter(pk=pk, statut=cls.Statut.EN_COURS).update(started_at=timezone.now())

    @classmethod
    def mark_failed(cls, pk: int, message: str) -> bool:
        """Only a job still in progress can fail: a ready one stays ready."""
        return bool(
            cls.objects.filter(pk=pk, statut=cls.Statut.EN_COURS).update(
                statut=cls.Statut.ECHEC, erreur=message, finished_at=timezone.now()
            )
        )

    @classmethod
    def run(
        cls,
        pk: int,
        work: Callable[["Job"], Result],
        *,
        failed: str,
        related: Iterable[str] = (),
    ) -> bool:
        """Do a job's work once, from its task: True when its result was stored.

        The row is loaded (with ``related``) only while still « en cours »: a second run of
        the task, or a run after the reaper, changes nothing. ``work(job)`` returns the file
        and the fields to store. A storage or I/O hiccup propagates, so that the task retries;
        a ``JobRefused`` fails the row with its own message; any other error is logged and
        fails the row with ``failed``, formatted with ``{error}`` (the exception's class) and
        ``{detail}`` (its class and text, bounded).
        """
        job = cls.objects.select_related(*related).filter(pk=pk).first()
        if job is None or job.statut != cls.Statut.EN_COURS:
            return False
        try:
            content, fields = work(job)
        except TRANSIENT_ERRORS:
            raise  # the task retries
        except JobRefused as refusal:
            cls.mark_failed(pk, str(refusal))
            return False
        except Exception as exc:
            logger.exception("%s %s failed", cls._meta.label, pk)
            error = type(exc).__name__
            cls.mark_failed(pk, failed.format(error=error, detail=f"{error} : {str(exc)[:300]}"))
            return False
        try:
            return cls.store_result(pk, content, **fields)
        finally:
            content.close()

    @classmethod
    def store_result(cls, pk: int, content: File, **fields) -> bool:
        """Save the file and mark the job ready, once: a second run of the task changes nothing."""
        with transaction.atomic():
            job = cls.objects.select_for_update().get(pk=pk)
            if job.statut != cls.Statut.EN_COURS:
                return False  # another run of the task got there first, or the reaper
            name = job.result_filename()
            field = job.fichier
            # A run that stopped after writing the file left it behind: replace it, so that
            # the job keeps its plain name and no orphan file piles up.
            path = field.field.generate_filename(job, name)
            if field.storage.exists(path):
                field.storage.delete(path)
            field.save(name, content, save=False)
            for field_name, value in fields.items():
                setattr(job, field_name, value)
            job.statut = cls.Statut.PRET
            job.erreur = ""
            job.finished_at = timezone.now()
            job.save(update_fields=["fichier", "statut", "erreur", "finished_at", *fields])
        return True


def job_models() -> list[type[Job]]:
    return [model for model in apps.get_models() if issubclass(model, Job)]


def enqueue_on_commit(job: Job) -> None:
    """Send the job's task once the row is committed; if the broker is down, fail it at once.

    The requester then reads « Service momentanément indisponible » (``job.statut`` is
    « échec » when this returns outside a transaction) instead of a row « en cours » that no
    task will ever pick up.
    """

    def send() -> None:
        task = import_string(job.TASK)
        try:
            # No publish retries: the broker's own timeouts (settings) bound the wait.
            task.apply_async((job.pk,), retry=False)
        except Exception:
            logger.exception("Could not queue %s for %s %s", task.name, job._meta.label, job.pk)
            if type(job).mark_failed(job.pk, UNAVAILABLE):
                job.statut, job.erreur = Job.Statut.ECHEC, UNAVAILABLE

    transaction.on_commit(send)


class JobTask(DjangoTask):
    """Base of every job task: ``job_model`` names the row, the first argument is its id.

    The row is marked started when a worker picks it up, and failed when the task gives up
    (retries exhausted, time limit, unexpected error): the page stops saying « en cours ».
    """

    job_model: str = ""
    acks_late = True
    ignore_result = True  # the row is the result: nothing to store in Redis
    autoretry_for = TRANSIENT_ERRORS
    retry_backoff = True

    def model(self) -> type[Job]:
        return apps.get_model(self.job_model)

    # Read by apply_async (sent with the message) and by the worker.
    @property
    def time_limit(self) -> int:
        return self.model().time_limit()

    @property
    def soft_time_limit(self) -> int:
        return self.model().time_limit() - 30

    def __call__(self, *args, **kwargs):
        if args:
            self.model().mark_started(args[0])
        return super().__call__(*args, **kwargs)

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        if args:
            model = self.model()
            model.mark_failed(args[0], model.FAILED_AFTER_RETRIES.format(error=type(exc).__name__))


def failed_since(since) -> int:
    """Jobs of every kind that failed since then (« Santé du service »)."""
    return sum(
        model.objects.filter(statut=Job.Statut.ECHEC, finished_at__gte=since).count()
        for model in job_models()
    )


def fail_stalled(now=None) -> int:
    """Fail the jobs of every kind that a killed worker (or a lost message) left « en cours »."""
    now = now or timezone.now()
    count = 0
    for model in job_models():
        count += model.objects.stalled(now).update(
            statut=Job.Statut.ECHEC, erreur=model.STALLED, finished_at=now
        )
    return count


# Periodic tasks -------------------------------------------------------------------------------


def beat_period(task_name: str) -> timedelta | None:
    """The period the beat schedule (settings) gives a task, if it schedules it."""
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        if entry["task"] == task_name:
            schedule = entry["schedule"]
            return schedule if isinstance(schedule, timedelta) else timedelta(seconds=schedule)
    return None


class HeartbeatTask(DjangoTask):
    """Base of every periodic task: each success is recorded with its expected period, each
    failure with its cause (SMTP, database, Redis…), for « Santé du service »."""

    def on_success(self, retval, task_id, args, kwargs) -> None:
        from .models import Heartbeat

        period = beat_period(self.name)
        if period is not None:
            Heartbeat.objects.update_or_create(
                task=self.name, defaults={"last_success": timezone.now(), "period": period}
            )

    def on_failure(self, exc, task_id, args, kwargs, einfo) -> None:
        from .health import failure_cause
        from .models import Heartbeat

        period = beat_period(self.name)
        if period is None:
            return
        cause, detail = failure_cause(exc)
        fields = {"last_failure": timezone.now(), "failure_cause": cause}
        fields["failure_detail"] = detail[:300]
        try:
            Heartbeat.objects.update_or_create(
                task=self.name, defaults={**fields, "period": period}
            )
        except Exception:  # the database itself may be the cause: the log keeps it
            logger.exception("Could not record the failure of %s", self.name)
