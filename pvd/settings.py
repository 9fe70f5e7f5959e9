"""Settings of the Portail PVD, read from the environment (see .env.example)."""

import warnings
from pathlib import Path
from urllib.parse import urlsplit

import environ
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def strict_bool(name: str, default: bool) -> bool:
    """A boolean variable that refuses anything but a clear yes or no."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use true or false.")


DEBUG = strict_bool("DEBUG", False)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is false.")
    SECRET_KEY = "django-insecure-local-development-only-never-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The refused form is told in French, in the portal's layout (templates/403_csrf.html).
CSRF_FAILURE_VIEW = "portail.views.csrf_failure"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "widget_tweaks",
    "dsfr",
    "django_filters",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "csp",
    "auditlog",
    "pvd",
    "communes",
    "conventions",
    "actions",
    "postes",
    # --- governance: instances, meetings, decisions (gouvernance/) ---
    "gouvernance",
    "carte",
    # --- reminders and notifications (rappels/) ---
    "rappels",
    "tableaux",
    "club",
    # --- open data (/opendata/) and the API (/api/v1/), read the apps above ---
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "opendata",
    "api",
    # --- the site shell: home, access pages, journal, public pages (imports every app) ---
    "portail",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "pvd.middleware.SecurityHeadersMiddleware",
    "pvd.middleware.MalformedUrlMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Pages and data (text only) gzipped for the browsers that ask (static files: WhiteNoise,
    # above, sends its own .br/.gz). BREACH (guessing a secret in a compressed page that
    # also reflects the attacker's input) is answered by Django itself: the CSRF token is
    # masked anew in every response, and this middleware pads each response by a random
    # length (« Heal The Breach », Django 4.2). The map's data comes already compressed.
    "pvd.middleware.GZipTextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "pvd.middleware.TrustedIpAuditlogMiddleware",
    "pvd.middleware.HtmxLoginRedirectMiddleware",
    "pvd.middleware.SessionLifetimeMiddleware",
    "pvd.middleware.MfaRequiredMiddleware",
]

ROOT_URLCONF = "portail.urls"
WSGI_APPLICATION = "pvd.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "pvd.context_processors.portal",
            ],
        },
    },
]
FORM_RENDERER = "pvd.renderers.FormRenderer"
# Mark optional fields, as the DSFR now advises (django-dsfr's next major default).
DSFR_MARK_OPTIONAL_FIELDS = True
warnings.filterwarnings("ignore", message="Transitional Django setting DSFR_MARK_OPTIONAL_FIELDS")

# Embedded default: a SQLite file next to manage.py. Production and CI: PostgreSQL.
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    if strict_bool("DATABASE_POOL", False):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = True
    else:
        DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
        DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # The read-models' compiled queries sent together (pvd/db.py ``ensemble``) are prepared
    # on each connection after five runs, as psycopg does by default (Django turns it off for
    # poolers): PostgreSQL keeps their plans. Off behind a pooler that cannot keep prepared
    # statements (PgBouncer in transaction mode before 1.21). Django's own queries are bound
    # in the client and never prepared.
    if strict_bool("DATABASE_PREPARED_STATEMENTS", True):
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "pvd.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 12},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "portail:home"

# django-allauth: e-mail login, accounts are opened by ANCT (no self sign-up).
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_ADAPTER = "pvd.adapters.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "pvd.forms.LoginForm",
    "reset_password": "pvd.forms.ResetPasswordForm",
    "reset_password_from_key": "pvd.forms.ResetPasswordKeyForm",
    "change_password": "pvd.forms.ChangePasswordForm",
}
ACCOUNT_LOGOUT_ON_PASSWORD_CHANGE = False
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_SESSION_REMEMBER = None
# A password-reset request for an unknown address sends nothing (no « sign up » invitation).
ACCOUNT_EMAIL_UNKNOWN_ACCOUNTS = False
# allauth's default limits (login_failed: 10 per minute per IP, 5 per 5 min per account)
# stay on; set explicitly so they are reviewed with the code. Their counters are kept in the
# database (pvd/ratelimits.py): a Redis outage lifts none of them.
ACCOUNT_RATE_LIMITS = {
    "login": "30/m/ip",
    "login_failed": "10/m/ip,5/300s/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
    "change_password": "5/m/user",
}

# The client address (login rate limits, audit trail) is REMOTE_ADDR unless the portal runs
# behind that many reverse proxies, each appending to X-Forwarded-For (README « Derrière un
# proxy »). 0: X-Forwarded-For is ignored, a forged header changes nothing.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)
ALLAUTH_TRUSTED_PROXY_COUNT = TRUSTED_PROXY_COUNT

# Multi-factor authentication (allauth.mfa): an authenticator app (TOTP) and recovery codes,
# offered to everyone, required for the accounts named by pvd.mfa.mfa_required.
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Portail PVD"
# A code of the previous or next 30 seconds is accepted too: phones' clocks drift.
MFA_TOTP_TOLERANCE = 1
# Addresses are set by ANCT staff, nobody signs up: an unverified address cannot be squatted.
MFA_ALLOW_UNVERIFIED_EMAIL = True
PVD_MFA_ENFORCED = strict_bool("PVD_MFA_ENFORCED", True)
# Codes are checked with their reuse and attempt limits held in the database (pvd/mfa.py).
MFA_FORMS = {
    "authenticate": "pvd.mfa.MfaAuthenticateForm",
    "reauthenticate": "pvd.mfa.MfaReauthenticateForm",
}

# Sessions end after 2 hours without a request, and 12 hours after login in any case
# (pvd.middleware.SessionLifetimeMiddleware renews the expiry at most every 5 minutes).
SESSION_COOKIE_AGE = 2 * 60 * 60
# In the database (django_session), read by a plain SELECT (pvd/sessions.py).
SESSION_ENGINE = "pvd.sessions"
SESSION_MAX_LIFETIME = 12 * 60 * 60

LANGUAGE_CODE = "fr-fr"
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True
USE_THOUSAND_SEPARATOR = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded and generated documents are private: served only through views that check rights
# (pvd/files.py). App code reaches them through the storage API only (FieldFile.open(),
# default_storage), never by a path on disk, so that they can live on an object store shared
# by every instance (README « Plusieurs instances »): the local directory MEDIA_ROOT by default
# (`make run`), an S3-compatible bucket when AWS_STORAGE_BUCKET_NAME is set.
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(BASE_DIR / "media")))
# How long a signed URL of the object store stays valid (seconds).
AWS_QUERYSTRING_EXPIRE = env.int("AWS_QUERYSTRING_EXPIRE", default=60)


def s3_storage(bucket: str, endpoint_url: str = "", region: str = "", addressing_style: str = ""):
    """django-storages' S3 backend on a private bucket (the equivalent of its AWS_* settings)."""
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "endpoint_url": endpoint_url or None,
            "region_name": region or None,
            # Keys: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, read by boto3 from the
            # environment (never written in settings).
            # AWS_S3_FILE_OVERWRITE = False: a name already taken gets a suffix, a stored
            # version (a convention's PDF) is never replaced by another one.
            "file_overwrite": False,
            # AWS_DEFAULT_ACL = None: no ACL sent, the bucket's own (private) applies;
            # AWS_QUERYSTRING_AUTH: every URL the store gives is signed and short-lived.
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": AWS_QUERYSTRING_EXPIRE,
            "client_config": Config(
                signature_version="s3v4",
                # "path" for most non-AWS stores (SeaweedFS, MinIO, Garage); "": boto3 decides.
                s3={"addressing_style": addressing_style or None},
                # Recent boto3 sends and checks CRC checksums by default, which S3-compatible
                # stores refuse or do not return: only when the operation requires one.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        },
    }


AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
if AWS_STORAGE_BUCKET_NAME:
    _DEFAULT_STORAGE = s3_storage(
        AWS_STORAGE_BUCKET_NAME,
        endpoint_url=env.str("AWS_S3_ENDPOINT_URL", default=""),
        region=env.str("AWS_S3_REGION_NAME", default=""),
        addressing_style=env.str("AWS_S3_ADDRESSING_STYLE", default=""),
    )
else:
    _DEFAULT_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
# How a download leaves the portal once its rights are checked: streamed through the portal
# (default), or, with an object store the browsers can reach, a redirect to its signed URL.
PVD_FILES_REDIRECT = strict_bool("PVD_FILES_REDIRECT", False)
STORAGES = {
    "default": _DEFAULT_STORAGE,
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# Redis, Celery and background jobs -------------------------------------------------------
# Redis is the cache and the Celery broker (allauth's rate limits are kept in the database,
# pvd/ratelimits.py). When it is down the portal must keep serving: the cache degrades to
# « nothing cached » (pvd.cache), and asking for a PDF or an export fails at once with
# « Service momentanément indisponible » (pvd.jobs.enqueue_on_commit). Every Redis wait is
# bounded, so that a Redis that accepts connections and never answers (frozen) costs a
# request at most REDIS_TIMEOUT for the cache (pvd.cache then leaves Redis alone for a few
# seconds) plus BROKER_TIMEOUT to publish a job's task: 1.5 s. A healthy Redis answers in a
# millisecond.
REDIS_URL = env.str("REDIS_URL", default="")
# How many application instances (hosts or containers running gunicorn) serve the portal.
# Above one, they must share their cache (rate limits, dashboards' versions, perimeters) and
# their broker: each keeping its own in-process cache, they would disagree. Sessions stay in
# PostgreSQL, files on the shared store (README « Plusieurs instances »).
PVD_INSTANCES = env.int("PVD_INSTANCES", default=1)
if PVD_INSTANCES > 1 and not REDIS_URL:
    raise ImproperlyConfigured(
        f"PVD_INSTANCES={PVD_INSTANCES} : REDIS_URL est obligatoire avec plusieurs instances "
        "(cache, limites de connexion et versions des tableaux de bord partagés). "
        "REDIS_URL is required when more than one instance is configured."
    )
REDIS_TIMEOUT = 0.5  # seconds, to connect and to answer (cache, health checks)
BROKER_TIMEOUT = 1  # seconds, to connect and to answer (Celery broker)
REDIS_CACHE_OPTIONS = {"socket_connect_timeout": REDIS_TIMEOUT, "socket_timeout": REDIS_TIMEOUT}
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "pvd.cache.DegradingRedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": REDIS_CACHE_OPTIONS,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# How long a job may run, and when the reaper gives up on it. These numbers go together:
# - JOB_TIME_LIMITS: the worker stops a job task after its limit (a soft limit 30 s before
#   lets the task record its own failure message). A convention PDF renders in seconds; the
#   national XLSX export of the national bench data (330 000 rows) took 174 s on the shared
#   2-core machine, hence 15 minutes.
# - JOB_STALLED_MARGIN: a job started longer ago than its limit plus this margin cannot still
#   be running (its worker died: OOM, deploy, crash), so pvd.tasks.fail_stalled_jobs, run
#   every JOB_REAPER_PERIOD by the beat, marks it failed: a PDF version within about 7
#   minutes, no longer 30 to 45.
# - The broker's visibility timeout is the longest limit plus the margin: a message a dead
#   worker took (acks_late) is handed to another worker only once no live worker can still
#   be on it; the re-run finds the row failed, or finishes it (tasks run twice harmlessly).
# - JOB_QUEUED_LIMIT: a job no worker ever started (no worker, message lost) fails after it.
# - docker-compose.yml gives the worker a stop_grace_period above the longest limit, so that
#   a deploy lets running jobs finish.
JOB_TIME_LIMITS = {
    "conventions.DocumentConvention": 5 * 60,
    "actions.ExportPlan": 15 * 60,
    "tableaux.Bilan": 5 * 60,
    # The territories of the whole country (35 000 communes), then the lists, in one go.
    "communes.MiseAJourReferentiel": 15 * 60,
    # The rollout goes through the one-by-one forms, about 0.2 s a row on the shared 2-core
    # machine: some 3 000 people of the programme in about 10 minutes.
    "pvd.Deploiement": 15 * 60,
    "gouvernance.Releve": 5 * 60,
    "opendata.Publication": 10 * 60,
}
JOB_STALLED_MARGIN = 60
JOB_QUEUED_LIMIT = 30 * 60
JOB_REAPER_PERIOD = 60

# The programme's figures for national readers (tableaux/cache.py) are computed once per
# this many seconds and the page says when; 0 computes them on every visit.
PROGRAMME_CACHE_TIMEOUT = env.int("PROGRAMME_CACHE_TIMEOUT", default=600)
# « Où en est ma ville ? » and the préfecture's table are cached until a change to what they
# read (tableaux/cache.py), and at most this many seconds (changes made without signals).
DASHBOARD_CACHE_TIMEOUT = env.int("DASHBOARD_CACHE_TIMEOUT", default=600)

# Celery: a real Redis broker when REDIS_URL is set, tasks run in-process otherwise.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or "cache+memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 15 * 60  # other tasks; a job task has its own limit (above)
CELERY_BROKER_CONNECTION_TIMEOUT = BROKER_TIMEOUT
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": max(JOB_TIME_LIMITS.values()) + JOB_STALLED_MARGIN,
    "socket_connect_timeout": BROKER_TIMEOUT,
    # Synchronous commands (a publish); the worker's BRPOP is read by its event loop.
    "socket_timeout": BROKER_TIMEOUT,
    # A connection that went quiet (Redis restarted, NAT dropped it) is found and replaced.
    "socket_keepalive": True,
    "health_check_interval": 10,
    # A command that timed out is not sent again: twice the wait, and a publish could be
    # duplicated.
    "retry_on_timeout": False,
    # Publishing (a web request) tries once: the job fails at once rather than the page hang.
    "max_retries": 0,
}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = BROKER_TIMEOUT
CELERY_REDIS_SOCKET_TIMEOUT = 5
CELERY_REDIS_SOCKET_KEEPALIVE = True
CELERY_REDIS_BACKEND_HEALTH_CHECK_INTERVAL = 10
CELERY_REDIS_RETRY_ON_TIMEOUT = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A worker that always comes back (README « Mise en production »): it reconnects for as long
# as Redis is away (no limit on retries), through kombu's Redis transport with the fix of
# pvd/broker.py (a job running when Redis drops no longer makes the worker exit). A job
# running when the connection drops is not cancelled: it writes its result to PostgreSQL,
# not through Redis, so the requester gets it; its acknowledgement is lost, its message comes
# back after the visibility timeout and the second run changes nothing (Job.store_result).
if REDIS_URL:
    CELERY_BROKER_TRANSPORT = "pvd.broker:Transport"
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TIMEZONE = TIME_ZONE
# One beat sends the schedule, whatever is started: the one holding a PostgreSQL advisory lock
# (pvd/beat.py); another waits and takes over when it is gone.
CELERY_BEAT_SCHEDULER = "pvd.beat:GuardedScheduler"
# Each periodic task records its last success (pvd.models.Heartbeat, /readyz) against the
# period given here.
CELERY_BEAT_SCHEDULE = {
    "clear-expired-sessions": {
        "task": "pvd.tasks.clear_expired_sessions",
        "schedule": 24 * 60 * 60,
    },
    "fail-stalled-jobs": {
        "task": "pvd.tasks.fail_stalled_jobs",
        "schedule": JOB_REAPER_PERIOD,
    },
    # Incidents (SMTP, failing or late tasks…) recorded, national staff told once (pvd/health.py).
    "watch-service": {
        "task": "pvd.tasks.watch_service",
        "schedule": 5 * 60,
    },
    "purge-actions-exports": {
        "task": "actions.tasks.purge_exports",
        "schedule": 60 * 60,
    },
    # France's figures for the national home, recomputed before they expire (tableaux/cache.py).
    "refresh-programme-figures": {
        "task": "tableaux.tasks.refresh_programme",
        "schedule": max(PROGRAMME_CACHE_TIMEOUT // 2, 60),
    },
    # The map's data for national readers, each territory's recomputed once stale
    # (carte/precalcul.py): served stale meanwhile, never recomputed for a reader.
    "refresh-carte": {
        "task": "carte.tasks.refresh_carte",
        "schedule": max(PROGRAMME_CACHE_TIMEOUT // 2, 60),
    },
    # The whole country's posts list figures, recomputed once stale (postes/chiffres.py):
    # served stale meanwhile, a write queues the same refresh.
    "precompute-postes-chiffres": {
        "task": "postes.tasks.precompute_chiffres",
        "schedule": max(PROGRAMME_CACHE_TIMEOUT // 2, 60),
    },
    # The national rollout's invitations, INVITATIONS_PAR_MINUTE a minute (portail/deploiement.py).
    "send-rollout-invitations": {
        "task": "portail.tasks.envoyer_invitations",
        "schedule": 60,
    },
    "end-roles-of-departed-chefs-de-projet": {
        "task": "postes.tasks.end_roles_of_departed",
        "schedule": 60 * 60,
    },
    # Open-data files (/opendata/), one dated file per data set and day.
    "publish-opendata": {
        "task": "opendata.tasks.publish_opendata",
        "schedule": 24 * 60 * 60,
    },
    # Changed fiches sent to the national projects hub (api/hub.py), when configured.
    "push-hub": {
        "task": "api.tasks.push_hub",
        "schedule": 10 * 60,
    },
    # --- reminders (rappels/sweep.py): every hour, so a missed run is caught the same day ---
    "sweep-reminders": {
        "task": "rappels.tasks.sweep_reminders",
        "schedule": 60 * 60,
    },
}
CELERY_TASK_DEFAULT_QUEUE = "celery"
# End of Redis, Celery and background jobs -----------------------------------------------

EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="Portail PVD <ne-pas-repondre@pvd.example>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# The portal's address as written in e-mails (links, one-click unsubscribe).
PVD_BASE_URL = env.str("PVD_BASE_URL", default="http://localhost:8000")
# The national rollout sends its invitations in batches: at most this many a minute (an SMTP
# relay limits senders), each one retried by the following minutes this many times at most.
INVITATIONS_PAR_MINUTE = env.int("INVITATIONS_PAR_MINUTE", default=30)
INVITATIONS_TENTATIVES = 5

# Production hardening (python manage.py check --deploy reports no issue with these).
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = strict_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = strict_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = strict_bool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# The map's base layer: a tile URL template ({z}/{x}/{y}); by default the State's base map,
# IGN Géoplateforme's « Plan IGN » (WMTS served as XYZ tiles, Web Mercator), with its
# attribution. Its host is allowed in the CSP's img-src only when set. Empty (tests, offline):
# the map draws its points and départements on a plain background.
IGN_PLAN_TILE_URL = (
    "https://data.geopf.fr/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
    "&LAYER=GEOGRAPHICALGRIDSYSTEMS.PLANIGNV2&STYLE=normal&TILEMATRIXSET=PM&FORMAT=image/png"
    "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}"
)
MAP_TILE_URL = env.str("MAP_TILE_URL", default=IGN_PLAN_TILE_URL)
MAP_TILE_ATTRIBUTION = env.str("MAP_TILE_ATTRIBUTION", default="© IGN – Plan IGN")
MAP_TILE_ORIGINS = [f"{u.scheme}://{u.netloc}" for u in [urlsplit(MAP_TILE_URL)] if u.netloc]
# Content-Security-Policy (django-csp): scripts and styles from the portal's own static files,
# or inline only with the per-response nonce; no framing; no plug-ins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'", NONCE],
        "img-src": ["'self'", "data:", *MAP_TILE_ORIGINS],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), payment=(), usb=(), interest-cohort=()"
)
# django-dsfr would mark message texts safe: they quote user text (a fiche's title).
DSFR_CONTENT_IS_SAFE = False

AUDITLOG_INCLUDE_ALL_MODELS = False
# Flash messages live in the session: no extra cookie (see the privacy page).
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

# Shown on the public pages (legal notice, privacy, accessibility).
CONTACT_EMAIL = env.str("CONTACT_EMAIL", default="")
HOSTING_NOTICE = env.str("HOSTING_NOTICE", default="")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # WeasyPrint and fontTools describe every font they load: keep their warnings only.
    "loggers": {
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
    },
}

# --- API (/api/v1/, api/): read-only, a key per partner organisation, no session. ----------
REST_FRAMEWORK = {
    # Only the key: a session cookie is never accepted, so there is no CSRF surface.
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.authentication.CleApiAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "api.pagination.Pagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.problem_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "NUM_PROXIES": TRUSTED_PROXY_COUNT,
}
# Requests per client address without a key, per key with one (api/authentication.py).
PVD_API_THROTTLE_RATES = {
    "anonyme": env.str("PVD_API_THROTTLE_ANONYME", default="120/minute"),
    "cle": env.str("PVD_API_THROTTLE_CLE", default="600/minute"),
}
SPECTACULAR_SETTINGS = {
    "OAS_VERSION": "3.1.0",
    "TITLE": "API du portail Petites villes de demain",
    "DESCRIPTION": (
        "Lecture seule. Les jeux de données ouverts se lisent sans clé (Licence Ouverte 2.0) ; "
        "les autres points d'accès demandent la clé d'API de l'organisme partenaire, dans "
        "l'en-tête « Authorization: Bearer <clé> », et rendent ce que le compte de la clé lit "
        "sur le portail. Erreurs au format RFC 7807 (application/problem+json).\n\n"
        "Le même document se lit avec [Swagger UI](/api/v1/docs/) ou [Redoc](/api/v1/redoc/) ; "
        "il se télécharge à l'adresse [/api/v1/schema/](/api/v1/schema/) (OpenAPI 3.1)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    # Swagger UI and Redoc from drf-spectacular-sidecar: served by the portal, under its CSP
    # (Swagger's init script is a separate file; each page's <style> and Redoc's init script
    # carry the nonce, which Redoc passes on to the styles it injects).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- National projects hub (« API Collectivités »), api/hub.py: off unless both are set. ---
PVD_HUB_URL = env.str("PVD_HUB_URL", default="")
PVD_HUB_KEY = env.str("PVD_HUB_KEY", default="")
PVD_HUB_TIMEOUT = 10  # seconds, per request
PVD_HUB_BATCH = 200  # fiches sent per run of the beat task

# Where `make run`/`seed_demo` look for the official files when they are present.
REFERENCE_DATA_DIR = Path(
    env.str("REFERENCE_DATA_DIR", default=str(BASE_DIR.parent / "shared" / "pvd-reference-data"))
)

# --- ProConnect (State agents' OpenID Connect federation), see README « ProConnect ». --------
# Configured only from the environment: without the three variables, no button and no route.
PROCONNECT_CLIENT_ID = env.str("PROCONNECT_CLIENT_ID", default="")
PROCONNECT_CLIENT_SECRET = env.str("PROCONNECT_CLIENT_SECRET", default="")
# e.g. https://fca.integ01.dev-agentconnect.fr/api/v2/.well-known/openid-configuration
PROCONNECT_DISCOVERY_URL = env.str("PROCONNECT_DISCOVERY_URL", default="")
INSTALLED_APPS += [
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
]
SOCIALACCOUNT_ADAPTER = "pvd.adapters.SocialAccountAdapter"
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False  # matching by e-mail is the adapter's rule
SOCIALACCOUNT_AUTO_SIGNUP = False
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_STORE_TOKENS = False
SOCIALACCOUNT_REQUESTS_TIMEOUT = 10


def proconnect_apps(client_id: str, secret: str, discovery_url: str) -> list[dict]:
    """The SocialApp allauth builds from settings: none unless all three values are given."""
    if not (client_id and secret and discovery_url):
        return []
    return [
        {
            "provider_id": "proconnect",
            "name": "ProConnect",
            "client_id": client_id,
            "secret": secret,
            "settings": {
                "server_url": discovery_url,
                "scope": ["openid", "email", "given_name", "usual_name", "siret", "idp_id"],
                # amr is sent only when asked: it tells whether a second factor was used.
                "auth_params": {
                    "acr_values": "eidas1",
                    "claims": '{"id_token":{"amr":{"essential":true}}}',
                },
                "token_auth_method": "client_secret_post",
            },
        }
    ]


SOCIALACCOUNT_PROVIDERS = {
    "openid_connect": {
        "provider_class": "pvd.proconnect.ProConnectProvider",
        "APPS": proconnect_apps(
            PROCONNECT_CLIENT_ID, PROCONNECT_CLIENT_SECRET, PROCONNECT_DISCOVERY_URL
        ),
    }
}
