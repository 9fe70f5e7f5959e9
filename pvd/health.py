"""Is the service healthy? Each component checked apart, each failure named by its cause.

``/healthz`` (liveness) asks the database only. ``/readyz`` (readiness, for a load balancer)
asks only what serving pages needs: the database, and Redis where ``REDIS_URL`` is set (the
cache and the jobs' queue). A dead worker, a stopped beat or an SMTP outage never turn it
503, since pages are still served: they show on « Santé du service » (``service_report``)
and national staff are e-mailed once per incident (``watch``).

Causes are told apart: the database down makes every other check meaningless and says so; a
dead worker runs no periodic task, so the beat cannot be judged (« inconnu ») rather than
reported down; a task that fails records its cause (``failure_cause``: SMTP, database,
Redis) and shows « en échec » with it, not « en retard ». Without a beat at all (``make
run``: no Redis, tasks run in the web process) the page says that the periodic tasks are not
running.
"""

import logging
import smtplib
import traceback
from dataclasses import dataclass, field
from datetime import datetime

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.mail import get_connection, send_mail
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from kombu.exceptions import OperationalError as BrokerError

from .bounds import une_ligne
from .french import duree
from .jobs import beat_period
from .models import Heartbeat, Incident, Role, User

logger = logging.getLogger(__name__)

OK = "ok"
DOWN = "indisponible"
NOT_USED = "non utilisé"  # no REDIS_URL: tasks run inside the web process (development)
NOT_RUNNING = "arrêté"  # no beat: periodic tasks are not scheduled at all
UNKNOWN = "inconnu"
WORKER_PING_TIMEOUT = 1.0  # seconds
SMTP_TIMEOUT = 3  # seconds
# A job's page asks whether a worker answers on each poll: the answer is kept this long.
WORKERS_ANSWER_TTL = 20  # seconds
WORKERS_KEY = "health:workers-answer"

LABELS = {
    "database": "Base de données",
    "redis": "Redis",
    "worker": "Worker",
    "beat": "Beat",
    "smtp": "Serveur de courriel (SMTP)",
}
NOT_RUNNING_TEXT = (
    "Les tâches périodiques ne tournent pas : ce service fonctionne sans beat ni worker "
    "(pas de REDIS_URL, les tâches s'exécutent dans le serveur web, comme avec « make run »). "
    "Aucun rappel, aucune purge ni reprise des travaux interrompus n'est lancé "
    "automatiquement."
)


@dataclass
class Check:
    name: str
    status: str
    detail: str = ""

    @property
    def down(self) -> bool:
        return self.status == DOWN

    @property
    def label(self) -> str:
        return LABELS[self.name]


def moment(value: datetime, now: datetime) -> str:
    """« le 1er décembre 2026 à 14:05 (il y a 2 heures) », in the portal's time zone."""
    local = timezone.localtime(value)
    jour = "1er" if local.day == 1 else str(local.day)
    text = f"le {jour} {date_format(local, 'F Y')} à {local:%H:%M}"
    return f"{text} (il y a {duree(now - value)})" if now > value else text


def periodic_tasks_run() -> bool:
    """Whether anything schedules the periodic tasks: not without Redis (no beat, no
    worker; CELERY_TASK_ALWAYS_EAGER runs tasks inside the web process)."""
    return not settings.CELERY_TASK_ALWAYS_EAGER


# Causes ---------------------------------------------------------------------------------------


def failure_cause(exc: BaseException) -> tuple[str, str]:
    """(cause, detail) of a task's failure: « SMTP », « base de données », « Redis » or
    « erreur » (a fault of the task itself), and the exception, bounded."""
    detail = f"{type(exc).__name__} : {str(exc)[:250]}"
    files = [frame.filename for frame in traceback.extract_tb(exc.__traceback__)]
    if isinstance(exc, smtplib.SMTPException) or any(f.endswith("smtplib.py") for f in files):
        return "SMTP", detail
    if isinstance(exc, DatabaseError):
        return "base de données", detail
    if isinstance(exc, redis.RedisError | BrokerError):
        return "Redis", detail
    return "erreur", detail


# Checks ---------------------------------------------------------------------------------------


def check_database() -> Check:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError as exc:
        logger.warning("Health: the database does not answer: %s", exc)
        return Check("database", DOWN, "la base de données ne répond pas")
    return Check("database", OK)


def check_redis() -> Check:
    if not settings.REDIS_URL:
        return Check("redis", NOT_USED)
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=settings.REDIS_TIMEOUT,
        socket_timeout=settings.REDIS_TIMEOUT,
    )
    try:
        client.ping()
    except redis.RedisError as exc:
        logger.warning("Health: Redis does not answer: %s", exc)
        return Check("redis", DOWN, "Redis ne répond pas")
    finally:
        client.close()
    return Check("redis", OK)


def check_worker(redis_check: Check) -> Check:
    """At least one Celery worker answers a ping through the broker."""
    if not periodic_tasks_run():
        return Check("worker", NOT_USED, "les tâches s'exécutent dans le serveur web")
    if redis_check.down:
        return Check("worker", DOWN, "le courtier Redis ne répond pas")
    from .celery import app

    try:
        replies = app.control.inspect(timeout=WORKER_PING_TIMEOUT).ping() or {}
    except Exception as exc:  # the broker went away between the two checks
        logger.warning("Health: worker ping failed: %s", exc)
        replies = {}
    if not replies:
        return Check("worker", DOWN, "aucun worker ne répond")
    count = len(replies)
    return Check("worker", OK, f"{count} worker{'s' if count > 1 else ''} en service")


def workers_answer() -> bool:
    """Whether a worker answers, remembered a few seconds (a job's page asks on each poll)."""
    if not periodic_tasks_run():
        return True  # tasks run in the web process: there is no worker to wait for
    answer = cache.get(WORKERS_KEY)
    if answer is None:
        redis_check = check_redis()
        # One missed ping (a worker busy starting a task) is not a dead worker: asked twice.
        answer = not check_worker(redis_check).down or (
            not redis_check.down and not check_worker(redis_check).down
        )
        cache.set(WORKERS_KEY, answer, WORKERS_ANSWER_TTL)
    return answer


def check_smtp() -> Check:
    if settings.EMAIL_BACKEND != "django.core.mail.backends.smtp.EmailBackend":
        return Check("smtp", NOT_USED, "les courriels ne partent pas par SMTP (développement)")
    mailer = get_connection(timeout=SMTP_TIMEOUT)
    try:
        mailer.open()
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning("Health: the SMTP server does not answer: %s", exc)
        return Check("smtp", DOWN, f"le serveur de courriel refuse ou ne répond pas ({exc})")
    finally:
        mailer.close()
    return Check("smtp", OK)


def beat_witness() -> str:
    """The most frequent periodic task: its heartbeat says whether the beat runs."""
    entries = settings.CELERY_BEAT_SCHEDULE.values()
    return min(entries, key=lambda entry: beat_period(entry["task"]))["task"]


def check_beat(heartbeats: dict[str, Heartbeat], worker: Check, now) -> Check:
    if not periodic_tasks_run():
        return Check("beat", NOT_RUNNING, "aucune tâche périodique n'est planifiée")
    if worker.down:
        return Check("beat", UNKNOWN, "sans worker, aucune tâche périodique ne peut s'exécuter")
    task = beat_witness()
    heartbeat = heartbeats.get(task)
    if heartbeat is None or heartbeat.last_success is None:
        return Check("beat", DOWN, f"le beat n'a encore lancé aucune tâche ({task} : jamais)")
    if heartbeat.is_late(now) and not heartbeat.failing:
        when = moment(heartbeat.last_success, now)
        return Check(
            "beat", DOWN, f"le beat ne lance plus les tâches ({task} : dernier succès {when})"
        )
    return Check("beat", OK)


# Periodic tasks ---------------------------------------------------------------------------------


@dataclass
class TaskRow:
    name: str
    task: str
    period: str
    state: str  # "ok", "never", "late", "failing", "not_running", "unknown"
    last_success: str = "jamais"
    next_run: str = "—"
    lateness: str = "—"
    cause: str = ""

    @property
    def problem(self) -> bool:
        return self.state in ("late", "failing")


STATE_LABELS = {
    "ok": "À l'heure",
    "never": "Pas encore exécutée",
    "late": "En retard",
    "failing": "En échec",
    "not_running": "Non planifiée",
    "unknown": "Inconnu",
}


def _task_row(name: str, entry: dict, heartbeat: Heartbeat | None, worker: Check, now) -> TaskRow:
    period = beat_period(entry["task"])
    row = TaskRow(name=name, task=entry["task"], period=duree(period), state="ok")
    last = heartbeat.last_success if heartbeat else None
    if last:
        row.last_success = moment(last, now)
        next_run = last + period
        row.next_run = moment(next_run, now) if next_run > now else "attendu"
        if now > next_run:
            row.lateness = duree(now - next_run)
    if not periodic_tasks_run():
        row.state = "not_running"
    elif heartbeat is not None and heartbeat.failing:
        row.state = "failing"
        row.cause = (
            f"{heartbeat.failure_cause} — échec {moment(heartbeat.last_failure, now)} : "
            f"{heartbeat.failure_detail}"
        )
    elif worker.down:
        row.state, row.cause = "unknown", "aucun worker ne répond"
    elif last is None:
        # Not a problem by itself: a daily task waits up to a day after a first deployment.
        row.state = "never"
    elif heartbeat.is_late(now):
        row.state, row.cause = "late", "n'a pas abouti à temps"
    return row


def task_rows(heartbeats: dict[str, Heartbeat], worker: Check, now) -> list[TaskRow]:
    return [
        _task_row(name, entry, heartbeats.get(entry["task"]), worker, now)
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
    ]


def queue_length() -> int | None:
    """Messages waiting in the default Celery queue (None without Redis, or Redis down)."""
    if not settings.REDIS_URL:
        return None
    client = redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=settings.REDIS_TIMEOUT,
        socket_timeout=settings.REDIS_TIMEOUT,
    )
    try:
        return client.llen(settings.CELERY_TASK_DEFAULT_QUEUE)
    except redis.RedisError:
        return None
    finally:
        client.close()


# The whole report -------------------------------------------------------------------------------


@dataclass
class Report:
    checks: list[Check]
    tasks: list[TaskRow] = field(default_factory=list)
    running: bool = True  # periodic tasks scheduled at all

    @property
    def incidents(self) -> dict[str, str]:
        """{component: cause} of everything failing, each named once by its real cause."""
        failing = {check.label: check.detail for check in self.checks if check.down}
        if any(check.name == "database" and check.down for check in self.checks):
            return failing  # nothing else can be judged
        for row in self.tasks:
            if row.problem:
                failing[f"Tâche {row.name}"] = row.cause
        return failing

    @property
    def ok(self) -> bool:
        return not self.incidents

    @property
    def summary(self) -> str:
        if self.incidents:
            causes = " ; ".join(f"{name} : {cause}" for name, cause in self.incidents.items())
            return f"Le service est dégradé. {causes}."
        if not self.running:
            return NOT_RUNNING_TEXT
        return "Tout fonctionne : chaque tâche périodique a abouti à temps."

    def as_json(self) -> dict:
        return {
            "composants": {check.name: check.status for check in self.checks},
            "details": {check.name: check.detail for check in self.checks if check.detail},
            "taches_periodiques": [
                {
                    "task": row.task,
                    "etat": STATE_LABELS[row.state],
                    "dernier_succes": row.last_success,
                    "cause": row.cause,
                }
                for row in self.tasks
            ],
            "resume": self.summary,
        }


def service_report(now=None) -> Report:
    """Every component and every periodic task, for « Santé du service »."""
    now = now or timezone.now()
    database = check_database()
    redis_check = check_redis()
    if database.down:
        return Report([database, redis_check], running=periodic_tasks_run())
    heartbeats = {heartbeat.task: heartbeat for heartbeat in Heartbeat.objects.all()}
    worker = check_worker(redis_check)
    checks = [database, redis_check, worker, check_beat(heartbeats, worker, now), check_smtp()]
    return Report(checks, task_rows(heartbeats, worker, now), running=periodic_tasks_run())


def readiness() -> tuple[bool, dict]:
    """(ready, report) for a load balancer: only what serving pages needs."""
    checks = [check_database(), check_redis()]
    ready = not any(check.down for check in checks)
    report: dict = {"status": OK if ready else "erreur"}
    report.update({check.name: check.status for check in checks})
    return ready, report


def may_read_details(request) -> bool:
    """National staff, fully logged in (second factor passed where it is required, as the
    MFA middleware requires it for every page)."""
    from . import policy
    from .mfa import owes_second_factor

    user = request.user
    if not (user.is_authenticated and policy.is_national(user)):
        return False
    return not owes_second_factor(request)


# Alerts -----------------------------------------------------------------------------------------


def watch(report: Report | None = None, now=None) -> list[Incident]:
    """Record what is failing as incidents, close the recovered ones, and e-mail national
    staff about each new incident once. Returns the incidents opened now."""
    now = now or timezone.now()
    report = report or service_report(now)
    failing = report.incidents
    Incident.objects.filter(fin__isnull=True).exclude(composant__in=failing).update(fin=now)
    opened = [
        incident
        for composant, cause in failing.items()
        if (incident := open_incident(composant, cause, now)) is not None
    ]
    alert_pending(now)
    return opened


def open_incident(composant: str, cause: str, now) -> Incident | None:
    """The incident, if it was not open yet (None when it already was)."""
    try:
        with transaction.atomic():
            incident, created = Incident.objects.get_or_create(
                composant=composant, fin__isnull=True, defaults={"cause": cause[:300], "debut": now}
            )
    except IntegrityError:  # another process opened it first
        return None
    return incident if created else None


def alert_pending(now) -> None:
    pending = list(Incident.objects.filter(fin__isnull=True, alerte_le__isnull=True))
    if pending:
        alert_national_staff(pending, now)


def national_staff_emails() -> list[str]:
    return list(
        User.objects.filter(is_active=True, roles__kind=Role.Kind.NATIONAL)
        .exclude(email="")
        .values_list("email", flat=True)
        .distinct()
    )


def alert_national_staff(incidents: list[Incident], now) -> None:
    """One e-mail for the incidents not yet told; if it cannot leave (SMTP is down), the
    next watch tries again, and the page shows them meanwhile."""
    recipients = national_staff_emails()
    if not recipients:
        return
    lines = [
        f"- {incident.composant} : {incident.cause} (constaté {moment(incident.debut, now)})"
        for incident in incidents
    ]
    url = settings.PVD_BASE_URL.rstrip("/") + reverse("rappels:sante")
    count = len(incidents)
    subject = une_ligne(f"[Portail PVD] {count} incident{'s' if count > 1 else ''} de service")
    body = "\n".join(
        ["Le service du portail PVD est dégradé :", "", *lines, "", f"Santé du service : {url}"]
    )
    try:
        send_mail(subject, body, None, recipients, fail_silently=False)
    except (OSError, smtplib.SMTPException) as exc:
        logger.warning("Health: the incident alert could not be sent: %s", exc)
        return
    Incident.objects.filter(pk__in=[incident.pk for incident in incidents]).update(alerte_le=now)


def when_no_worker_answers() -> None:
    """A job's page found no worker: the incident is recorded and told now (the periodic
    watch runs on a worker, so it cannot see this one)."""
    now = timezone.now()
    if open_incident(LABELS["worker"], "aucun worker ne répond", now) is not None:
        alert_pending(now)
