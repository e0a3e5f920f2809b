"""Contestant: djtasks (ORM broker on ``default``, or Redis via ``BENCH_BROKER_URL``)."""

from .base import *  # noqa: F403
from .base import BENCH_BROKER_URL, BENCH_POLL_INTERVAL, INSTALLED_APPS

BENCH_CONTESTANT = "djtasks"
BENCH_TASKS_MODULE = "benchapp.tasks_djtasks"

INSTALLED_APPS = [*INSTALLED_APPS, "djtasks"]
TASKS = {
    "default": {
        "BACKEND": "djtasks.backend.DjTasksBackend",
        "QUEUES": [],
        "OPTIONS": {
            "BROKER_URL": BENCH_BROKER_URL or "django://default",
            # The same idle poll interval as django-tasks-db's db_worker --interval.
            "POLL_INTERVAL": BENCH_POLL_INTERVAL,
        },
    }
}
