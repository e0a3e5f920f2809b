"""Contestant: Celery 5 with a Redis broker and django-celery-results."""

from .base import *  # noqa: F403
from .base import BENCH_BROKER_URL, INSTALLED_APPS

BENCH_CONTESTANT = "celery"
BENCH_TASKS_MODULE = "benchapp.tasks_celery"

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_results"]

CELERY_BROKER_URL = BENCH_BROKER_URL or "redis://127.0.0.1:6379/12"
CELERY_RESULT_BACKEND = "django-db"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_DB_REUSE_MAX = 1000
