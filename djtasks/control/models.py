"""Rows of the worker registry, remote control, revocations and rate limits.

They live in the results database, which every worker reaches whatever its
broker, so the same control plane serves the ORM and the Redis broker.
"""

from __future__ import annotations

from django.db import models


class WorkerRecord(models.Model):
    """A running (or recently seen) worker, refreshed by its heartbeat."""

    worker_id = models.CharField(max_length=255, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    backend = models.CharField(max_length=64, default="default")
    pool = models.CharField(max_length=16)
    concurrency = models.PositiveIntegerField()
    queues = models.JSONField(default=list, blank=True)  # empty: every queue
    started_at = models.DateTimeField()
    last_heartbeat = models.DateTimeField(db_index=True)
    succeeded = models.PositiveBigIntegerField(default=0)
    failed = models.PositiveBigIntegerField(default=0)
    retried = models.PositiveBigIntegerField(default=0)
    #: The tasks it runs now: [{"id", "task", "started_at"}].
    running = models.JSONField(default=list, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "worker"
        verbose_name_plural = "workers"

    def __str__(self) -> str:
        return self.worker_id


class ControlCommand(models.Model):
    """A command for one worker (``target``) or all (empty target); workers reply with ControlReply rows."""

    created_at = models.DateTimeField(db_index=True)
    command = models.CharField(max_length=32)
    target = models.CharField(max_length=255, blank=True, default="")
    arguments = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "control command"
        verbose_name_plural = "control commands"


class ControlReply(models.Model):
    command = models.ForeignKey(ControlCommand, on_delete=models.CASCADE, related_name="replies")
    worker_id = models.CharField(max_length=255)
    replied_at = models.DateTimeField()
    reply = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name = "control reply"
        verbose_name_plural = "control replies"
        constraints = [models.UniqueConstraint(fields=["command", "worker_id"], name="djtasks_one_reply_per_worker")]


class Revocation(models.Model):
    """A task that must not run (or, with ``terminate``, must stop); kept across worker restarts."""

    task_id = models.UUIDField(primary_key=True)
    revoked_at = models.DateTimeField(db_index=True)
    revoked_by = models.CharField(max_length=255, blank=True, default="")
    terminate = models.BooleanField(default=False)

    class Meta:
        verbose_name = "revocation"
        verbose_name_plural = "revocations"


class RateLimitBucket(models.Model):
    """A token bucket shared by every worker: one per rate-limited task."""

    key = models.CharField(max_length=255, primary_key=True)
    tokens = models.FloatField()
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = "rate limit bucket"
        verbose_name_plural = "rate limit buckets"
