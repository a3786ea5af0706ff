"""Tocsin settings. Every value comes from the environment once, here; README.md lists them all.

The defaults run with no server at all: SQLite (WAL mode, since web, worker and beat share the
file) and kombu's filesystem transport as the Celery broker. `DATABASE_URL` and `REDIS_URL` switch
to PostgreSQL and Redis.
"""

import re
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("TOCSIN_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
VAR_DIR.mkdir(parents=True, exist_ok=True)

INSECURE_DEFAULT_SECRET_KEY = "insecure-dev-key-do-not-use-in-production"  # noqa: S105

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=INSECURE_DEFAULT_SECRET_KEY)
if not DEBUG and SECRET_KEY in ("", INSECURE_DEFAULT_SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY is missing or still the development default. With DEBUG off Tocsin refuses "
        "to start: set SECRET_KEY to a long random value (for example the output of "
        "`python -c 'import secrets; print(secrets.token_urlsafe(50))'`)."
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
SITE_URL = env.str("SITE_URL", default="http://localhost:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[SITE_URL])


def _number(name: str, cast, default):
    """`cast` is env.int or env.float; a malformed value stops start-up with its name."""
    try:
        return cast(name, default=default)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {env.str(name)!r}.") from None


def _positive_int(name: str, default: int) -> int:
    value = _number(name, env.int, default)
    if value <= 0:
        raise ImproperlyConfigured(f"{name} must be a positive whole number, got {value}.")
    return value


def _non_negative_float(name: str, default: float) -> float:
    value = _number(name, env.float, default)
    if value < 0:
        raise ImproperlyConfigured(f"{name} must not be negative, got {value}.")
    return value


# Tocsin's own knobs.
PING_BODY_LIMIT = _positive_int("PING_BODY_LIMIT", 100 * 1024)
# Email pings (apps/checks/email_pings.py): with a domain set, `manage.py smtpd_pings` accepts
# mail to <check uuid>@domain and <ping key>+<slug>@domain, and check pages show the address.
PING_EMAIL_DOMAIN = env.str("PING_EMAIL_DOMAIN", default="").strip().lower()
PING_EMAIL_HOST = env.str("PING_EMAIL_HOST", default="0.0.0.0")  # noqa: S104 (a listener)
PING_EMAIL_PORT = _positive_int("PING_EMAIL_PORT", 2525)
PING_EMAIL_MAX_SIZE = _positive_int("PING_EMAIL_MAX_SIZE", 1024 * 1024)
PINGS_KEPT_PER_CHECK = _positive_int("PINGS_KEPT_PER_CHECK", 100)
SWEEP_INTERVAL = _non_negative_float("SWEEP_INTERVAL", 5.0) or 5.0
CLOCK_SKEW_ALLOWANCE = timedelta(seconds=_non_negative_float("CLOCK_SKEW_ALLOWANCE", 5.0))
SWEEP_BATCH_SIZE = _positive_int("SWEEP_BATCH_SIZE", 200)
ACTION_TOKEN_MAX_AGE = timedelta(days=_positive_int("ACTION_TOKEN_MAX_AGE_DAYS", 7))
# The lease of a delivery being sent: the sending run renews it every third of this while the
# request is in flight; a delivery whose lease lapsed (its worker died) is sent again.
OUTBOX_STALE_AFTER = timedelta(seconds=_positive_int("OUTBOX_STALE_AFTER", 15))
# Deliveries one run sends at once (threads of the delivery task, sharing keep-alive connections).
DELIVERY_CONCURRENCY = _positive_int("DELIVERY_CONCURRENCY", 16)
NOTIFICATION_MAX_ATTEMPTS = _positive_int("NOTIFICATION_MAX_ATTEMPTS", 8)
# Failed deliveries are retried after NOTIFICATION_RETRY_BASE, doubling up to the cap (jittered).
NOTIFICATION_RETRY_BASE = timedelta(seconds=_positive_int("NOTIFICATION_RETRY_BASE", 10))
NOTIFICATION_RETRY_CAP = timedelta(seconds=_positive_int("NOTIFICATION_RETRY_CAP", 3600))
# Grouping defaults for teams that have not chosen (the team's notification settings win).
NOTIFICATION_GROUP_WAIT = timedelta(seconds=_non_negative_float("NOTIFICATION_GROUP_WAIT", 30.0))
NOTIFICATION_GROUP_INTERVAL = timedelta(
    seconds=_non_negative_float("NOTIFICATION_GROUP_INTERVAL", 300.0)
)
# How often beat puts due groups into messages and hands due retries to workers.
NOTIFICATION_FLUSH_INTERVAL = _non_negative_float("NOTIFICATION_FLUSH_INTERVAL", 5.0) or 5.0
# A target that fails for good is reported to the team's admins at most once per interval.
NOTIFICATION_FAILURE_REPORT_INTERVAL = timedelta(
    seconds=_positive_int("NOTIFICATION_FAILURE_REPORT_INTERVAL", 3600)
)
# After each sweep Tocsin pings this URL (another Tocsin, or any service that speaks the ping
# protocol), so that an outage of Tocsin itself raises an alarm somewhere else.
SWEEPER_DEADMAN_URL = env.str("SWEEPER_DEADMAN_URL", default="")
if SWEEPER_DEADMAN_URL and not SWEEPER_DEADMAN_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured("SWEEPER_DEADMAN_URL must be an http:// or https:// URL.")
# Deadlines that pass while Tocsin itself is blind (sweeper stopped, pings stopped arriving)
# become "unknown" instead of paging everyone (apps/checks/monitor.py).
BLIND_WINDOW_DETECTION = env.bool("BLIND_WINDOW_DETECTION", default=True)
SWEEPER_DEADMAN_TIMEOUT = _non_negative_float("SWEEPER_DEADMAN_TIMEOUT", 5.0) or 5.0
# Outbound webhooks refuse private, loopback and link-local addresses unless allowed here.
OUTBOUND_ALLOW_PRIVATE = env.bool("OUTBOUND_ALLOW_PRIVATE", default=False)
OUTBOUND_ALLOW_LOOPBACK = env.bool("OUTBOUND_ALLOW_LOOPBACK", default=False)
OUTBOUND_TIMEOUT = _non_negative_float("OUTBOUND_TIMEOUT", 10.0) or 10.0
# How often beat looks for status reports that are due (a person's period ends at their local
# midnight, so a daily report arrives within this long after it).
REPORT_CHECK_INTERVAL = _non_negative_float("REPORT_CHECK_INTERVAL", 600.0) or 600.0


def _provider_url(name: str, default: str) -> str:
    """The base URL of a provider's API (tests and proxies point it elsewhere); the outbound
    guard still applies to it on every send."""
    value = env.str(name, default=default).rstrip("/")
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", value):
        raise ImproperlyConfigured(f"{name} must be an http:// or https:// URL, not {value!r}.")
    return value


PAGERDUTY_EVENTS_URL = _provider_url("PAGERDUTY_EVENTS_URL", "https://events.pagerduty.com")
OPSGENIE_API_URL = _provider_url("OPSGENIE_API_URL", "https://api.opsgenie.com")
OPSGENIE_EU_API_URL = _provider_url("OPSGENIE_EU_API_URL", "https://api.eu.opsgenie.com")
TELEGRAM_API_URL = _provider_url("TELEGRAM_API_URL", "https://api.telegram.org")
PUSHOVER_API_URL = _provider_url("PUSHOVER_API_URL", "https://api.pushover.net")
TWILIO_API_URL = _provider_url("TWILIO_API_URL", "https://api.twilio.com")
# Escalation (apps/escalation): when a parent check recovers, its dependents' incidents that
# are still open are notified after this delay (time for them to recover too).
DEPENDENCY_RELEASE_DELAY = timedelta(seconds=_non_negative_float("DEPENDENCY_RELEASE_DELAY", 120.0))
# A silence's creator is emailed this long before it ends while checks it covers still fail.
SILENCE_EXPIRY_REMINDER = timedelta(seconds=_non_negative_float("SILENCE_EXPIRY_REMINDER", 900.0))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.teams",
    "apps.checks",
    "apps.incidents",
    "apps.escalation",
    "apps.notifications",
    "apps.dashboard",
    "apps.api",
    "apps.badges",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # After authentication: the reader's own display zone is a setting of the user.
    "apps.dashboard.display_zone.DisplayZoneMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "apps.dashboard.context_processors.sweeper_banner",
            ],
        },
    },
]

# Database: SQLite in WAL mode with a busy timeout unless DATABASE_URL names another server.
try:
    _default_db = env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'tocsin.sqlite3'}")
except ValueError:
    _default_db = {}
if not _default_db.get("ENGINE"):
    raise ImproperlyConfigured(
        "DATABASE_URL is malformed: expected postgres://user:password@host:port/name."
    )
DATABASES = {"default": _default_db}
if _default_db["ENGINE"] == "django.db.backends.sqlite3":
    _default_db.setdefault("OPTIONS", {})
    _default_db["OPTIONS"].update(
        {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    _default_db.setdefault("CONN_MAX_AGE", _number("CONN_MAX_AGE", env.int, 60))
    _default_db["CONN_HEALTH_CHECKS"] = True
    _default_db.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Celery: Redis when REDIS_URL is set, otherwise kombu's filesystem transport (no server).
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 3, "socket_timeout": 5}
else:
    _broker_dir = VAR_DIR / "broker"
    (_broker_dir / "processed").mkdir(parents=True, exist_ok=True)
    (_broker_dir / "control").mkdir(parents=True, exist_ok=True)
    # The host is ignored (the folders below are the broker); naming one spares every worker
    # and beat kombu's "No hostname was supplied" warning at start-up (issue 14).
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # Without this kombu writes its broadcast exchanges to ./control in the working dir.
        "control_folder": str(_broker_dir / "control"),
    }
    # A stopping worker joins its timer thread, which sleeps up to this long between ticks: a
    # second of the embedded worker's stop, which must be quick (see config/filesystem_broker.py).
    CELERY_WORKER_TIMER_PRECISION = 0.1
CELERY_TASK_IGNORE_RESULT = True
# Deliveries (outbound HTTP and SMTP, each bounded by OUTBOUND_TIMEOUT) have a queue of their
# own, so that a deployment can give them their own worker (docker-compose.yml does): a
# receiver that hangs then holds a delivery slot, never the slot a sweep or an escalation
# needs. A worker started without -Q consumes every queue listed here, so a single worker still
# does everything.
CELERY_TASK_DEFAULT_QUEUE = "celery"
DELIVERY_QUEUE = "deliveries"
CELERY_TASK_QUEUES = [Queue(CELERY_TASK_DEFAULT_QUEUE), Queue(DELIVERY_QUEUE)]
CELERY_TASK_ROUTES = {
    "apps.notifications.tasks.deliver_task": {"queue": DELIVERY_QUEUE},
    "apps.notifications.tasks.deliver_due_task": {"queue": DELIVERY_QUEUE},
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "sweep-due-checks": {
        "task": "apps.checks.tasks.sweep_due_checks_task",
        "schedule": SWEEP_INTERVAL,
        # A sweep that waited longer than two intervals is stale; the next one will do its work.
        "options": {"expires": SWEEP_INTERVAL * 2},
    },
    "flush-notification-groups": {
        "task": "apps.notifications.tasks.flush_notification_groups_task",
        "schedule": NOTIFICATION_FLUSH_INTERVAL,
        "options": {"expires": NOTIFICATION_FLUSH_INTERVAL * 2},
    },
    "retry-due-deliveries": {
        "task": "apps.notifications.tasks.retry_due_deliveries_task",
        "schedule": NOTIFICATION_FLUSH_INTERVAL,
        "options": {"expires": NOTIFICATION_FLUSH_INTERVAL * 2},
    },
    "escalate-due-incidents": {
        "task": "apps.escalation.tasks.escalate_due_incidents_task",
        "schedule": SWEEP_INTERVAL,
        "options": {"expires": SWEEP_INTERVAL * 2},
    },
    "send-status-reports": {
        "task": "apps.notifications.tasks.send_status_reports_task",
        "schedule": REPORT_CHECK_INTERVAL,
        "options": {"expires": REPORT_CHECK_INTERVAL},
    },
    "prune-pings": {
        "task": "apps.checks.tasks.prune_pings_task",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
}

# Email: console backend unless SMTP is configured.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default=(
        "django.core.mail.backends.smtp.EmailBackend"
        if env.str("EMAIL_HOST", default="")
        else "django.core.mail.backends.console.EmailBackend"
    ),
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = _number("EMAIL_PORT", env.int, 25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = _number("EMAIL_TIMEOUT", env.int, 10)
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Tocsin <tocsin@localhost>")

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:check-list"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
# Serve static files from the app itself (no CDN, works offline); whitenoise finds them in
# the app directories during development and tests.
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=SITE_URL.startswith("https"))
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("BEHIND_TLS_PROXY", default=False) else None
)
# Take the client's address (rate limits, the address a ping records) from the last
# X-Forwarded-For entry, which the proxy in front sets (apps/teams/addresses.py).
# BEHIND_TLS_PROXY implies it, as it always did.
TRUST_PROXY_FORWARDED_FOR = env.bool("TRUST_PROXY_FORWARDED_FOR", default=False)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # The API's views set their own authentication, throttling and error handling
    # (apps/api/base.py).
}
# Requests one API key may make: "<number>/<second|minute|hour|day>".
API_THROTTLE_RATE = env.str("API_THROTTLE_RATE", default="600/minute")
if not re.fullmatch(r"[1-9][0-9]*/(second|minute|hour|day)", API_THROTTLE_RATE):
    raise ImproperlyConfigured(
        f"API_THROTTLE_RATE must look like 600/minute, got {API_THROTTLE_RATE!r}."
    )
# Bytes of JSON an API request may send.
API_MAX_BODY_BYTES = _positive_int("API_MAX_BODY_BYTES", 64 * 1024)
SPECTACULAR_SETTINGS = {
    "TITLE": "Tocsin API",
    "DESCRIPTION": (
        "Checks, their pings, runs and flips, incidents and metrics of one team, addressed with "
        "a team API key (`Authorization: Bearer <key>` or `X-Api-Key: <key>`), under "
        "/api/tocsin/v1/. Under /api/v3/, the Healthchecks Management API v3 (also served as "
        "v1 and v2 at /api/v1/ and /api/v2/, with Healthchecks' differences between versions)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/(tocsin/)?v[0-9]+",
    "PREPROCESSING_HOOKS": ["apps.api.schema.one_healthchecks_version"],
    "ENUM_NAME_OVERRIDES": {
        "CheckStatusEnum": "apps.checks.models.Check.Status",
        "SeverityEnum": "apps.checks.models.Check.Severity",
        "ScheduleKindEnum": "apps.checks.models.Check.ScheduleKind",
        "PingKindEnum": "apps.checks.models.Ping.Kind",
        "IncidentStateEnum": "apps.incidents.models.Incident.State",
        "IncidentKindEnum": "apps.incidents.models.Incident.Kind",
        "IncidentEventKindEnum": "apps.incidents.models.IncidentEvent.Kind",
        "HealthchecksStatusEnum": "apps.api.healthchecks_v3.V3_STATUSES",
        "ChannelKindEnum": "apps.notifications.models.Channel.Kind",
        "TargetKindEnum": "apps.escalation.policy.TargetKind",
    },
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.api.schema.document_errors",
    ],
    # Swagger UI and Redoc come from the drf-spectacular-sidecar package: no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}
# The API's throttle counts requests here: Redis when REDIS_URL is set, so that every web
# process shares the count; otherwise memory of the one process.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "tocsin",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "no_403_traceback": {"()": "apps.dashboard.errors.PermissionDeniedWithoutTraceback"}
    },
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Logger filters run before the record reaches any handler (console, pytest's caplog).
        "django.request": {"filters": ["no_403_traceback"]},
    },
}
