"""The Celery application of the benchmark project (``celery -A benchproject.celery_app``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings.celery")

app = Celery("benchproject", include=["benchapp.tasks_celery", "benchapp.engine_celery"])
app.config_from_object("django.conf:settings", namespace="CELERY")
