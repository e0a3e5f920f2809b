"""Settings for djtasks' own test suite.

``default`` is SQLite (unit tests). ``postgresql`` and ``mysql`` are real
servers on loopback, used by integration tests only (pytest-django creates
their test databases when a collected test needs them).
"""

import os

import pymysql

pymysql.install_as_MySQLdb()
pymysql.version_info = (2, 2, 7, "final", 0)  # Django checks the mysqlclient version it emulates

SECRET_KEY = "tests-only"
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "djtasks",
    "testproject.demo",
    "tests.taskapp",
]
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
ROOT_URLCONF = "testproject.urls"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": ":memory:",
        "OPTIONS": {"transaction_mode": "IMMEDIATE", "timeout": 30},
    },
    "postgresql": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "djtasks",
        "HOST": os.environ.get("DJTASKS_PG_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DJTASKS_PG_PORT", "5432"),
        "USER": os.environ.get("DJTASKS_PG_USER", "postgres"),
        "TEST": {"NAME": "test_djtasks", "DEPENDENCIES": []},
    },
    "mysql": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": "djtasks",
        "HOST": os.environ.get("DJTASKS_MYSQL_HOST", "127.0.0.1"),
        "PORT": os.environ.get("DJTASKS_MYSQL_PORT", "3306"),
        "USER": os.environ.get("DJTASKS_MYSQL_USER", "root"),
        "TEST": {"NAME": "test_djtasks", "CHARSET": "utf8mb4", "DEPENDENCIES": []},
    },
}


def _backend(broker_url: str, results_database: str = "default") -> dict:
    return {
        "BACKEND": "djtasks.backend.DjTasksBackend",
        "QUEUES": [],
        "OPTIONS": {"BROKER_URL": broker_url, "RESULTS_DATABASE": results_database, "POLL_INTERVAL": 0.05},
    }


TASKS = {
    "default": _backend("django://default"),
    "memory": _backend("memory://unit"),
    "postgresql": _backend("django://postgresql", "postgresql"),
    "mysql": _backend("django://mysql", "mysql"),
}

MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"
