"""Morosos settings: one module, every value read from the environment.

`.env.example` documents each variable. With nothing set the project runs on embedded
defaults (a PostgreSQL server from a pip package and a file-based Celery transport, both under
``var/``) so that ``make run`` works on a machine with no PostgreSQL or Redis; production sets
DATABASE_URL, CELERY_BROKER_URL, SECRET_KEY and DJANGO_DEBUG=0.
"""

import datetime as dt
import os
import sys
from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

from morosos import embedded_db

BASE_DIR = Path(__file__).resolve().parent.parent
# Runtime state of the embedded defaults (PostgreSQL data, Celery folder queue, beat schedule).
VAR_DIR = Path(os.environ.get("MOROSOS_VAR_DIR") or BASE_DIR / "var")
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    environ.Env.read_env(env_file)

DEBUG = env.bool("DJANGO_DEBUG", default=False)

# A development key is only accepted while DEBUG is on or under the test runner;
# production must provide its own.
TESTING = "pytest" in sys.modules
# Commands that only read and write code (migrations, translation catalogs) never sign or
# serve anything: they run without a secret, so `manage.py makemigrations --check` works in
# a bare checkout. Everything else (runserver, gunicorn, check, migrate…) still refuses.
CODE_ONLY_COMMANDS = {"makemigrations", "makemessages", "compilemessages"}
_CODE_ONLY = len(sys.argv) > 1 and sys.argv[0].endswith("manage.py") and sys.argv[1] in CODE_ONLY_COMMANDS
_DEV_SECRET = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET if (DEBUG or TESTING or _CODE_ONLY) else "")
if not SECRET_KEY:
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("SECRET_KEY must be set when DJANGO_DEBUG is off.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "auditlog",
    "django_ratelimit",
    "csp",
    "accounts",
    "cobranza",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy on every response (CONTENT_SECURITY_POLICY below).
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Who changed what: the acting user of every audited save (API token users included).
    "accounts.audit.AuditActorMiddleware",
    # The number format of the request: the user's, else the business's (accounts/preferences.py).
    "accounts.preferences.NumberFormatMiddleware",
    # Every page needs a login unless its view is explicitly marked @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    # While the business is not set up: administrators go to the setup form first.
    "cobranza.business.middleware.BusinessSetupMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lock-out page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "morosos.urls"
WSGI_APPLICATION = "morosos.wsgi.application"
ASGI_APPLICATION = "morosos.asgi.application"

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
                "django.template.context_processors.i18n",
                "accounts.context_processors.roles",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------------------
# PostgreSQL only. With no DATABASE_URL: the embedded server that `make run` starts under
# var/pgdata (morosos/embedded_db.py), reached by its Unix socket, never by TCP.
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db_url("DATABASE_URL")}
else:
    DATABASES = {"default": embedded_db.django_database(VAR_DIR)}
if not DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...): it is the only SQL dialect.")
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=60))
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Report queries (the dashboard's receivables at a date read a large share of the invoices):
# JIT compilation costs them more than it saves (~0.3 s at a million invoices), and a hash
# join or grouping that spills to disk is slower than a little more working memory.
_db_options = DATABASES["default"].setdefault("OPTIONS", {})
_db_options["options"] = (
    f"{_db_options.get('options', '')} -c jit=off -c work_mem={env.str('DB_WORK_MEM', default='32MB')}"
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    # django-axes first: it refuses a locked-out username + address before the password is checked.
    "accounts.audit.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env.int("PASSWORD_MIN_LENGTH", default=10)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    # Hashing passwords at production strength makes every test fixture cost ~0.3 s.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Cache: where every rate limit and throttle counts ------------------------------------
# Shared by every web process and machine, or a limit of 30 becomes 30 per process (and a
# restart resets it): Redis when CACHE_URL names one (redis://host:6379/1), otherwise the
# database cache, table morosos_cache (`manage.py createcachetable`, which `make migrate`,
# `make run` and compose's migrate service run after migrating; the test runner creates it
# in each test database). Never a per-process cache: django-ratelimit's system check refuses
# LocMemCache and DummyCache.
if env.str("CACHE_URL", default=""):
    CACHES = {"default": env.cache_url("CACHE_URL")}
else:
    # Django's DatabaseCache with an atomic incr (morosos/cache.py).
    # Past MAX_ENTRIES Django deletes a third of the rows, counters included: a flood of
    # made-up tokens must not be a way to reset one's own limit.
    CACHES = {
        "default": {
            "BACKEND": "morosos.cache.DatabaseCache",
            "LOCATION": "morosos_cache",
            "OPTIONS": {"MAX_ENTRIES": env.int("CACHE_MAX_ENTRIES", default=200_000)},
        }
    }
RATELIMIT_USE_CACHE = "default"
# django-ratelimit warns for every backend but memcached and django-redis, Django's own
# RedisCache and our atomic DatabaseCache included; its errors (per-process caches) stay on.
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]
# Wrong old passwords allowed per user in the password-change form per period (5/15m: five
# in 15 minutes), counted by django-ratelimit in the shared cache.
PASSWORD_CHANGE_RATE = env.str("PASSWORD_CHANGE_RATE", default="5/15m")

# --- Login throttling (django-axes) -------------------------------------------------------
# A username is locked out from one address after AXES_FAILURE_LIMIT wrong passwords in a row,
# for AXES_COOLOFF_MINUTES (counted from the last failure; a success resets the count). Other
# users and the same user elsewhere can still log in. Attempts live in the database (the
# test suite rolls them back with everything else); administrators release them early at
# /seguridad/bloqueos/.
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_LOCKOUT_CALLABLE = "accounts.views_audit.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
# Behind N trusted reverse proxies the client address is read from X-Forwarded-For; with none
# (the default) only REMOTE_ADDR counts, so a forged header cannot dodge the lock-out. Read by
# accounts.utils.client_ip, for the lock-out and the portal's per-address limit alike
# (django-ipware, which axes would otherwise use, is not installed: axes read REMOTE_ADDR,
# the proxy's address, and one user's failures behind a proxy locked that user out for all).
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0) or None
AXES_CLIENT_IP_CALLABLE = "accounts.utils.client_ip"

# --- Audit history (django-auditlog) ----------------------------------------------------
# Who changed what and when, for the ledger and the collections set-up. Registered here (not
# in the models) so that accounts never imports cobranza. Timestamps that move with every
# save are left out: they would make every entry look like a change.
AUDITLOG_INCLUDE_TRACKING_MODELS = (
    {"model": "accounts.Segment"},
    # Own columns listed (not excluded): auditlog then reads no reverse relation (hold,
    # discount, allocations), one query less per save and no empty "relation" entries.
    {
        "model": "accounts.Client",
        "include_fields": [
            "legal_name",
            "trade_name",
            "tax_id",
            "kind",
            "segment",
            "collector",
            "credit_limit",
            "payment_terms_days",
            "currency",
            "language",
            "time_zone",
            "country",
            "business_group",
            "client_since",
            "status",
            "address",
            "notes",
        ],
    },
    {"model": "accounts.Contact", "exclude_fields": ["created_at"]},
    # open_balance is generated by the database from amount and amount_paid.
    {
        "model": "accounts.Invoice",
        "include_fields": [
            "number",
            "client",
            "issue_date",
            "due_date",
            "currency",
            "amount",
            "amount_paid",
            "status",
            "external_ref",
            "description",
        ],
    },
    {
        "model": "accounts.Payment",
        "include_fields": [
            "client",
            "received_on",
            "amount",
            "currency",
            "method",
            "reference",
            "unallocated",
            "notes",
            "recorded_by",
        ],
    },
    {"model": "accounts.PaymentAllocation", "include_fields": ["payment", "invoice", "amount"]},
    {"model": "cobranza.Policy", "exclude_fields": ["updated_at"]},
    {"model": "cobranza.PolicyStep"},
    {"model": "cobranza.MessageTemplate", "exclude_fields": ["updated_at"]},
    {"model": "cobranza.MessageTemplateText"},
    {"model": "cobranza.ClientDunning", "exclude_fields": ["updated_at", "updated_by"]},
    {"model": "cobranza.BusinessProfile", "exclude_fields": ["updated_at"]},
)
# The audit page shows who made a change; the requester's address adds nothing there.
AUDITLOG_DISABLE_REMOTE_ADDR = True

# --- i18n / l10n ------------------------------------------------------------------------
LANGUAGE_CODE = "es"
LANGUAGES = [("es", _("Español")), ("en", _("English"))]
# Only DATE_INPUT_FORMATS is overridden there (ISO dates in, see morosos/formats/es/formats.py).
FORMAT_MODULE_PATH = ["morosos.formats"]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env.str("TIME_ZONE", default="America/Mexico_City")
USE_I18N = True
USE_TZ = True
# Numbers and money follow the business's number format, not the language (accounts/numbers.py).
DEFAULT_CURRENCY = env.str("DEFAULT_CURRENCY", default="MXN")
# The largest amount of one invoice, payment or credit limit (a field error above it).
MONEY_MAX_AMOUNT = env.str("MONEY_MAX_AMOUNT", default="1000000000.00")

# --- Static files -----------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = env.path("MEDIA_ROOT", default=VAR_DIR / "media")

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Email ------------------------------------------------------------------------------
# Development writes each email to a file under var/mail (the console would drown in the demo's
# reminders); production defaults to an SMTP server on localhost.
_email = env.email_url("EMAIL_URL", default="filemail://" if DEBUG else "smtp://localhost:25")
vars().update(_email)
if EMAIL_BACKEND == "django.core.mail.backends.filebased.EmailBackend":  # noqa: F821 - set just above
    # The folder is its own variable: a path inside a URL loses its leading slash.
    EMAIL_FILE_PATH = env.path("EMAIL_FILE_PATH", default=VAR_DIR / "mail")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Morosos <cobranza@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery -----------------------------------------------------------------------------
_celery_dir = VAR_DIR / "celery"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The embedded default: a folder shared by web, worker and beat on one machine.
    for sub in ("queue", "processed", "control"):
        (_celery_dir / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_celery_dir / "queue"),
        "data_folder_out": str(_celery_dir / "queue"),
        "processed_folder": str(_celery_dir / "processed"),
        # Broadcast exchanges (worker remote control); kombu's default is ./control.
        "control_folder": str(_celery_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Workers log through LOGGING below (its filter masks debtors' addresses and numbers) instead
# of replacing the root logger's handlers with Celery's own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Dunning ----------------------------------------------------------------------------
# The business's name, sender, contact details and public address (the portal links' base)
# are not settings: an administrator enters them in the app (cobranza.business, "Datos de la
# empresa"), and debtor mail is sent from there, not from DEFAULT_FROM_EMAIL.
# Days a debtor's self-service link stays valid.
SELF_SERVICE_LINK_DAYS = env.int("SELF_SERVICE_LINK_DAYS", default=30)
# Requests allowed per link and per IP address in a window of seconds (the cache counts them:
# production needs a shared cache, e.g. Redis, for the limit to hold across processes).
SELF_SERVICE_RATE_LIMIT = env.int("SELF_SERVICE_RATE_LIMIT", default=30)
SELF_SERVICE_RATE_WINDOW = env.int("SELF_SERVICE_RATE_WINDOW", default=600)
# Shared secret of the payment webhook (X-Signature: HMAC-SHA256 of "<timestamp>.<body>"),
# and how far (seconds) its X-Signature-Timestamp may be from our clock before it is refused.
PAYMENT_WEBHOOK_SECRET = env.str("PAYMENT_WEBHOOK_SECRET", default="")
PAYMENT_WEBHOOK_TOLERANCE_SECONDS = env.int("PAYMENT_WEBHOOK_TOLERANCE_SECONDS", default=300)
# Replies from debtors (docs/domain.md#replies): the inbound webhooks' secret (signed and
# time-checked like the payment webhook), the largest message accepted, and the days a reply
# pauses the ladder when the client's policy does not say.
INBOUND_WEBHOOK_SECRET = env.str("INBOUND_WEBHOOK_SECRET", default="")
INBOUND_MAX_BYTES = env.int("INBOUND_MAX_BYTES", default=1_000_000)
REPLY_PAUSE_DAYS = env.int("REPLY_PAUSE_DAYS", default=3)
# Seconds one message template may take to render (cobranza.engine.messaging.Budget).
MESSAGE_RENDER_SECONDS = env.float("MESSAGE_RENDER_SECONDS", default=2.0)
# Right-hand side of the deterministic Message-ID of reminder emails.
DUNNING_MESSAGE_ID_DOMAIN = env.str("DUNNING_MESSAGE_ID_DOMAIN", default="")
# SMS and WhatsApp backends, like EMAIL_BACKEND: cobranza.engine.channels.FileBackend (writes
# var/outbox/<channel>.jsonl), .ConsoleBackend, or .HTTPBackend with *_URL and *_TOKEN.
DUNNING_SMS_BACKEND = env.str("DUNNING_SMS_BACKEND", default="cobranza.engine.channels.FileBackend")
DUNNING_SMS_URL = env.str("DUNNING_SMS_URL", default="")
DUNNING_SMS_TOKEN = env.str("DUNNING_SMS_TOKEN", default="")
DUNNING_WHATSAPP_BACKEND = env.str("DUNNING_WHATSAPP_BACKEND", default="cobranza.engine.channels.FileBackend")
DUNNING_WHATSAPP_URL = env.str("DUNNING_WHATSAPP_URL", default="")
DUNNING_WHATSAPP_TOKEN = env.str("DUNNING_WHATSAPP_TOKEN", default="")
# A worker's claim on a notice expires after this; a dead worker's notices are then taken over.
DUNNING_LEASE_SECONDS = env.int("DUNNING_LEASE_SECONDS", default=600)
# Notices a dispatch task claims at once and sends over one SMTP connection.
DUNNING_BATCH_SIZE = env.int("DUNNING_BATCH_SIZE", default=50)
# Days after the last step of a ladder before an unpaid client escalates to "in collection".
DUNNING_ESCALATION_GRACE_DAYS = env.int("DUNNING_ESCALATION_GRACE_DAYS", default=7)
# Payment plans: days of tolerance after each installment date, missed installments tolerated
# before the plan is broken, and how many days before each date the debtor gets a reminder.
PLAN_GRACE_DAYS = env.int("PLAN_GRACE_DAYS", default=3)
PLAN_MISSED_ALLOWED = env.int("PLAN_MISSED_ALLOWED", default=1)
PLAN_REMINDER_DAYS_BEFORE = env.int("PLAN_REMINDER_DAYS_BEFORE", default=3)
# A starting Celery worker plans today's notices at once (besides the hourly beat tick).
DUNNING_PLAN_ON_WORKER_START = env.bool("DUNNING_PLAN_ON_WORKER_START", default=DEBUG)
DUNNING_OUTBOX_DIR = env.path("DUNNING_OUTBOX_DIR", default=VAR_DIR / "outbox")
# The managers' dashboard: a live computation slower than this (a large portfolio) is stored
# and shown with its time, recomputed by beat every 10 minutes (cobranza.dashboard.summaries).
DASHBOARD_LIVE_MAX_MS = env.int("DASHBOARD_LIVE_MAX_MS", default=300)
# Imports: a file over these limits is refused before it is parsed (an XLSX of 63 KiB can
# expand to a million cells): data rows, cells (rows x columns) and the XLSX uncompressed.
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=100_000)
IMPORT_MAX_CELLS = env.int("IMPORT_MAX_CELLS", default=500_000)
IMPORT_MAX_XLSX_MB = env.int("IMPORT_MAX_XLSX_MB", default=100)
# Outgoing webhooks: seconds a POST may take, plain http to localhost allowed (development
# and tests only: it lets deliveries reach this machine's loopback addresses, which production
# must never allow), and days finished deliveries are kept.
OUTGOING_WEBHOOKS_TIMEOUT = env.float("OUTGOING_WEBHOOKS_TIMEOUT", default=10)
OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP = env.bool("OUTGOING_WEBHOOKS_ALLOW_LOCAL_HTTP", default=DEBUG)
OUTGOING_WEBHOOKS_RETENTION_DAYS = env.int("OUTGOING_WEBHOOKS_RETENTION_DAYS", default=90)

# --- Security ---------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
# A working day; closing the browser ends the session too (shared office computers).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=60 * 60 * 10)
SESSION_EXPIRE_AT_BROWSER_CLOSE = env.bool("SESSION_EXPIRE_AT_BROWSER_CLOSE", default=True)
# htmx sends the token it reads from the page (base.html's hx-headers): no script needs the cookie.
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    # Behind a TLS-terminating proxy (compose, load balancer) trust its header.
    if env.bool("SECURE_PROXY_SSL_HEADER", default=True):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# Content-Security-Policy (django-csp): every asset is local, so only our own origin, and no
# inline script anywhere (page scripts are static files; data goes in json_script blocks or
# data- attributes). Inline style *attributes* stay allowed (style-src-attr): templates use
# them for computed widths (aging bars, progress) and they cannot run code; <style> elements
# are not. Bootstrap's CSS draws its icons from data: SVG images.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# /healthz is probed over plain HTTP by compose and load balancers.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Logging ----------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    # Debtors' e-mail addresses and phone numbers never reach a log line, whoever logs them.
    # So do portal links (the debtor's credential is in the URL path).
    "filters": {"redact_pii": {"()": "morosos.logging.RedactPersonalData"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["redact_pii"]},
        # runserver's request lines, as Django's default logging prints them, through the filter.
        "django.server": {"class": "logging.StreamHandler", "formatter": "django.server", "filters": ["redact_pii"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Django's default logging gives "django" its own unfiltered console handler (with
        # DEBUG) and mail_admins: replaced by the root's filtered handler ("Not Found:
        # /portal/<token>" and every other request record pass the filter).
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "INFO"},
        # django-axes logs every successful login at INFO; failures and lock-outs are warnings.
        "axes": {"level": "WARNING"},
    },
}


# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",  # integrations
        "rest_framework.authentication.SessionAuthentication",  # the browser
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
    ],
    # JSON read by accounts.utils.parse_json: any malformed body is a 400, never a 500.
    "DEFAULT_PARSER_CLASSES": [
        "cobranza.api.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Morosos API",
    "DESCRIPTION": "Clientes, facturas, pagos, gestiones y cobranza de Morosos.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Many models have a `kind` or `status` of their own: each enum is named after its choices
    # class (a hashed name otherwise, and a warning that `check --deploy` would report).
    "ENUM_NAME_OVERRIDES": {
        "ClientKindEnum": "accounts.models.ClientKind",
        "ClientStatusEnum": "accounts.models.ClientStatus",
        "InvoiceStatusEnum": "accounts.models.InvoiceStatus",
        "InteractionKindEnum": "accounts.models.InteractionKind",
        "NoticeStatusEnum": "cobranza.models.NoticeStatus",
        "TaskKindEnum": "cobranza.models.TaskKind",
        "TaskStatusEnum": "cobranza.models.TaskStatus",
        "CommitmentKindEnum": "cobranza.models.CommitmentKind",
        "CommitmentStatusEnum": "cobranza.models.CommitmentStatus",
        "InstallmentStatusEnum": "cobranza.models.InstallmentStatus",
        "DisputeStatusEnum": "cobranza.models.DisputeStatus",
    },
}
