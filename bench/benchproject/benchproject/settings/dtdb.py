"""Contestant: django-tasks-db, the reference database backend of ``django.tasks``."""

from .base import *  # noqa: F403
from .base import INSTALLED_APPS

BENCH_CONTESTANT = "dtdb"
BENCH_TASKS_MODULE = "benchapp.tasks_dtdb"

INSTALLED_APPS = [*INSTALLED_APPS, "django_tasks_db"]
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
