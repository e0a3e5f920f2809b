from django.db import models


class TaskRun(models.Model):
    """One row per (key, run) that a sample task records; the unique key catches a task run twice."""

    key = models.CharField(max_length=100, unique=True)
    worker_pid = models.IntegerField()
    created_at = models.DateTimeField(auto_now_add=True)


class Attempt(models.Model):
    """Counts attempts of the flaky sample task."""

    key = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
