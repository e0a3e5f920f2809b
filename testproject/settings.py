"""Settings of the djtasks demo project.

Out of the box: SQLite (WAL) as database and as the ORM broker, no other
service. Environment variables switch it for the end-to-end tests:
``DJTASKS_DB_ENGINE`` (sqlite | postgresql | mysql), ``DJTASKS_DB_NAME``,
``DJTASKS_DB_HOST``, ``DJTASKS_DB_USER``, ``DJTASKS_LEASE_SECONDS``,
``DJTASKS_POLL_INTERVAL``, ``DJTASKS_BROKER_URL`` (e.g. ``redis://127.0.0.1:6379/0``),
``DJTASKS_KEY_PREFIX``.
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "demo-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "1") == "1"
ALLOWED_HOSTS = ["127.0.0.1", "localhost", "testserver"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "djtasks",
    "testproject.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

ROOT_URLCONF = "testproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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


def _database() -> dict:
    engine = os.environ.get("DJTASKS_DB_ENGINE", "sqlite")
    if engine == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DJTASKS_DB_NAME", str(BASE_DIR / "db.sqlite3")),
            # WAL lets readers and one writer work at once; IMMEDIATE transactions
            # and a busy timeout make several worker processes wait, not fail.
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    if engine == "postgresql":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ.get("DJTASKS_DB_NAME", "djtasks_demo"),
            "HOST": os.environ.get("DJTASKS_DB_HOST", "127.0.0.1"),
            "USER": os.environ.get("DJTASKS_DB_USER", "postgres"),
        }
    if engine == "mysql":
        import pymysql

        pymysql.install_as_MySQLdb()
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": os.environ.get("DJTASKS_DB_NAME", "djtasks_demo"),
            "HOST": os.environ.get("DJTASKS_DB_HOST", "127.0.0.1"),
            "USER": os.environ.get("DJTASKS_DB_USER", "root"),
        }
    raise ValueError(f"DJTASKS_DB_ENGINE={engine!r}: use sqlite, postgresql or mysql")


DATABASES = {"default": _database()}

TASKS = {
    "default": {
        "BACKEND": "djtasks.backend.DjTasksBackend",
        "QUEUES": [],
        "OPTIONS": {
            "BROKER_URL": os.environ.get("DJTASKS_BROKER_URL", "django://default"),
            "KEY_PREFIX": os.environ.get("DJTASKS_KEY_PREFIX", "djtasks"),
            "LEASE_SECONDS": float(os.environ.get("DJTASKS_LEASE_SECONDS", 60)),
            "POLL_INTERVAL": float(os.environ.get("DJTASKS_POLL_INTERVAL", 0.5)),
        },
    }
}

MAILERS = {
    "default": {
        "BACKEND": os.environ.get("DJANGO_EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
    }
}
DEFAULT_FROM_EMAIL = "demo@example.com"

USE_TZ = True
TIME_ZONE = "UTC"
STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
