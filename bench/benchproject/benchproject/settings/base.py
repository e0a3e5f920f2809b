"""Settings shared by every contestant.

Everything that varies between runs comes from environment variables, set by
``bench/run.py``:

``BENCH_DB``
    ``postgres`` or ``sqlite``.
``BENCH_DB_NAME``
    The PostgreSQL database name, or the SQLite file path.
``BENCH_PG_HOST`` / ``BENCH_PG_PORT`` / ``BENCH_PG_USER``
    Where PostgreSQL listens (default ``127.0.0.1:5432``, user ``postgres``).
``BENCH_REDIS_URL``
    The Redis database used for the tasks' bookkeeping.
``BENCH_PREFIX``
    The per-run prefix of the bookkeeping keys.
``BENCH_BROKER_URL``
    The broker of the contestant, where it has one (Celery, djtasks).
``BENCH_POLL_INTERVAL``
    Seconds between polls of an idle database worker (djtasks and
    django-tasks-db get the same; default 0.1).
"""

import os

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
ALLOWED_HOSTS: list[str] = []
USE_TZ = True
TIME_ZONE = "UTC"

INSTALLED_APPS: list[str] = ["benchapp"]

BENCH_REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
BENCH_PREFIX = os.environ.get("BENCH_PREFIX", "bench:manual")
BENCH_BROKER_URL = os.environ.get("BENCH_BROKER_URL", "")
BENCH_POLL_INTERVAL = float(os.environ.get("BENCH_POLL_INTERVAL", "0.1"))


def _database() -> dict[str, object]:
    """Return the ``default`` database for ``BENCH_DB``.

    Connections are persistent (``CONN_MAX_AGE=None``) for every contestant,
    as a long-running worker would be configured; SQLite runs in WAL mode
    with IMMEDIATE transactions.
    """
    engine = os.environ.get("BENCH_DB", "postgres")
    name = os.environ.get("BENCH_DB_NAME", "bench_manual")
    if engine == "sqlite":
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": name,
            "CONN_MAX_AGE": None,
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "timeout": 20,
            },
        }
    if engine == "postgres":
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": name,
            "HOST": os.environ.get("BENCH_PG_HOST", "127.0.0.1"),
            "PORT": os.environ.get("BENCH_PG_PORT", "5432"),
            "USER": os.environ.get("BENCH_PG_USER", "postgres"),
            "CONN_MAX_AGE": None,
        }
    raise ValueError(f"BENCH_DB must be 'postgres' or 'sqlite', not {engine!r}")


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
