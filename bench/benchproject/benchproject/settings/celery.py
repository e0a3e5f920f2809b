"""Contestant: Celery 5 with a Redis broker and django-celery-results.

``BENCH_CELERY_RESULTS=redis`` stores the results in Redis (Celery's Redis
result backend, on the broker's database) instead: for the ``io`` workload,
where django-celery-results would hold one PostgreSQL connection per thread
or greenlet, more than PostgreSQL's ``max_connections`` (100) allows at -c 200.
"""

import os

from .base import *  # noqa: F403
from .base import BENCH_BROKER_URL, INSTALLED_APPS

BENCH_CONTESTANT = "celery"
BENCH_TASKS_MODULE = "benchapp.tasks_celery"

INSTALLED_APPS = [*INSTALLED_APPS, "django_celery_results"]

CELERY_BROKER_URL = BENCH_BROKER_URL or "redis://127.0.0.1:6379/12"
CELERY_RESULT_BACKEND = CELERY_BROKER_URL if os.environ.get("BENCH_CELERY_RESULTS") == "redis" else "django-db"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_DB_REUSE_MAX = 1000
