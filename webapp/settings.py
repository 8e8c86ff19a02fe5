"""Errata's settings, all read from the environment; every external service has an embedded default."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from webapp.env import envbool, envfloat, envint, envlist, envurl

BASE_DIR = Path(__file__).resolve().parent.parent
# Where uploads, the SQLite file, the local broker and model artifacts live on one machine.
DATA_DIR = Path(os.environ.get("ERRATA_DATA_DIR") or BASE_DIR / "var").resolve()

DEBUG = envbool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (any long random string)")
    SECRET_KEY = "errata-insecure-development-key-only-for-debug"
ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
# Demo users with known passwords: only ever on a development machine.
ERRATA_DEMO = envbool("ERRATA_DEMO", False)
if ERRATA_DEMO and not DEBUG:
    raise ImproperlyConfigured("ERRATA_DEMO=1 creates users with known passwords and needs DEBUG=1")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_htmx",
    "template_partials",
    "webapp.accounts",
    "webapp.core",
    "webapp.datasets",
    "webapp.endpoints",
    "webapp.runs",
    "webapp.gather",
    "webapp.teach",
    "webapp.review",
    "webapp.train",
    "webapp.exams",
    "webapp.chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "webapp.urls"
ASGI_APPLICATION = "webapp.asgi.application"
WSGI_APPLICATION = None

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
            ],
            # {% partialdef %} in every template without a {% load %}.
            "builtins": ["template_partials.templatetags.partials"],
        },
    },
]

# --- Database: DATABASE_URL, or a SQLite file in DATA_DIR -------------------------------
DATABASE_URL = envurl("DATABASE_URL", schemes={"sqlite", "postgres", "postgresql", "pgsql"})
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Under daphne a request takes a connection at its start and gives it back at its end: without a
        # pool each would open its own (about 9 ms here). Django's psycopg pool instead.
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": envint("DB_POOL_MIN", 2, minimum=0), "max_size": envint("DB_POOL_MAX", 20, minimum=1),
            "timeout": envfloat("DB_POOL_TIMEOUT_S", 30.0),
        }
        if envbool("DB_PREPARED_STATEMENTS", True):
            # Parameters bound on the server and a query run twice on a connection prepared: PostgreSQL plans
            # it once (planning the review queue's four-table query took longer than running it; a next +
            # decide pair went from 6.7 to 4.4 ms in the process). Off behind PgBouncer in transaction mode.
            DATABASES["default"]["OPTIONS"].update(server_side_binding=True, prepare_threshold=2)
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "errata.sqlite3",
            # A web process and a worker write to the same file: wait for the lock, don't fail.
            "OPTIONS": {"timeout": 30, "init_command": "PRAGMA journal_mode=WAL;", "transaction_mode": "IMMEDIATE"},
            "TEST": {"NAME": DATA_DIR / "test-errata.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Celery broker and channel layer when set; embedded defaults when not ---------
REDIS_URL = envurl("REDIS_URL", schemes={"redis", "rediss", "unix"})
CELERY_BROKER_DIR = DATA_DIR / "celery-broker"
# Redis hands an unacknowledged message to another worker after this long (kombu's default: one hour), and
# messages are acknowledged when a run ends: it must exceed the longest run. gpu_worker/celery_app.py reads
# the same variable with the same default and minimum (both apps share the broker).
ERRATA_BROKER_VISIBILITY_TIMEOUT_S = envint("ERRATA_BROKER_VISIBILITY_TIMEOUT_S", 48 * 3600, minimum=3600)
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": ERRATA_BROKER_VISIBILITY_TIMEOUT_S}
    # channels-redis blocks up to 5 s per read of a channel; redis-py 8 gives up on any read after 5 s by default,
    # which would kill every websocket idle for 5 s. Reads may take longer than the blocking wait, not shorter.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                                  "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 15}]}}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL,
                          "KEY_PREFIX": "errata"}}
else:
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Sessions are read on every request: from the cache, written through to the database (which stays the truth).
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
CELERY_TASK_DEFAULT_QUEUE = "default"
# A running run silent for this long is taken for dead; a worker that starts resumes such runs.
ERRATA_RUN_STALE_S = envint("ERRATA_RUN_STALE_S", 120, minimum=1)
CELERY_TASK_ROUTES = {"gpu_worker.*": {"queue": "gpu"}}
CELERY_TASK_ACKS_LATE = True  # a worker killed mid-task leaves the message for the next one
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True  # results live in our own tables, not in a result backend
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Models --------------------------------------------------------------------------
ERRATA_MODEL_TIMEOUT_S = envfloat("ERRATA_MODEL_TIMEOUT_S", 120.0)
ERRATA_MODEL_MAX_RETRIES = envint("ERRATA_MODEL_MAX_RETRIES", 5, minimum=0)
# Where the CPU model server that `make run` starts serves the packaged demo model.
ERRATA_LOCAL_MODEL_URL = envurl("ERRATA_LOCAL_MODEL_URL", schemes={"http", "https"}) or "http://127.0.0.1:8001/v1"
ERRATA_ARTIFACTS_DIR = Path(os.environ.get("ERRATA_ARTIFACTS_DIR") or DATA_DIR / "artifacts")
# `manage.py serve`: daphne processes sharing the web port (more than one needs REDIS_URL).
ERRATA_WEB_PROCESSES = envint("WEB_PROCESSES", 1, minimum=1)
# GPUs on the machines that take `gpu` queue jobs: launch checks refuse what they could not run (0 = CPU only).
ERRATA_TRAIN_CUDA_DEVICES = envint("ERRATA_TRAIN_CUDA_DEVICES", 0, minimum=0)

# --- Chat -------------------------------------------------------------------------------
ERRATA_CHAT_MAX_MESSAGE_CHARS = envint("ERRATA_CHAT_MAX_MESSAGE_CHARS", 8000, minimum=1)
# What the assistant sees of a conversation: its last N turns (a turn: a message and the answer to it).
ERRATA_CHAT_HISTORY_TURNS = envint("ERRATA_CHAT_HISTORY_TURNS", 10, minimum=1)
# Per user, across every process (through the cache: Redis when REDIS_URL is set): N messages per window.
ERRATA_CHAT_RATE_LIMIT = envint("ERRATA_CHAT_RATE_LIMIT", 20, minimum=1)
ERRATA_CHAT_RATE_WINDOW_S = envint("ERRATA_CHAT_RATE_WINDOW_S", 60, minimum=1)
# "Explain my mistake": how many similar approved past mistakes to cite, and how similar (cosine) they must be.
ERRATA_CHAT_SIMILAR_TOP_K = envint("ERRATA_CHAT_SIMILAR_TOP_K", 3, minimum=0)
ERRATA_CHAT_SIMILAR_THRESHOLD = envfloat("ERRATA_CHAT_SIMILAR_THRESHOLD", 0.5)
ERRATA_CHAT_SIMILAR_POOL = envint("ERRATA_CHAT_SIMILAR_POOL", 2000, minimum=1)  # newest approved mistakes searched

# --- Uploads and imports ----------------------------------------------------------------
ERRATA_UPLOAD_DIR = DATA_DIR / "uploads"
ERRATA_MAX_UPLOAD_MB = envint("ERRATA_MAX_UPLOAD_MB", 512, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024  # larger uploads stream to a temporary file
DATA_UPLOAD_MAX_NUMBER_FILES = 100

# --- Accounts -----------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# The signed-in user comes from the cache between requests (dropped when the user is saved); sessions made
# by plain ModelBackend (before this setting) still work, uncached.
AUTHENTICATION_BACKENDS = ["webapp.accounts.backends.CachedModelBackend", "django.contrib.auth.backends.ModelBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
# Behind a TLS-terminating proxy: HTTPS and the client's address come from its X-Forwarded-Proto and
# X-Forwarded-For (`manage.py serve` passes daphne --proxy-headers). Off by default: without a proxy that
# sets both, any client could claim them.
ERRATA_BEHIND_PROXY = envbool("ERRATA_BEHIND_PROXY", False)
if ERRATA_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: an unauthenticated API call then gets 401 with "WWW-Authenticate: Token".
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["webapp.accounts.permissions.IsResearcher"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Errata API",
    "DESCRIPTION": "Everything the Errata web pages do, over REST. Sign in, or send `Authorization: Token <key>`.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["webapp.accounts.permissions.IsResearcher"],
    # Swagger UI from the installed sidecar package: no CDN, works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = DATA_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    # One INFO line per model request drowns everything else out.
    "loggers": {"httpx2": {"level": "WARNING"}, "httpx": {"level": "WARNING"}},
}
