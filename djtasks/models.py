"""Result rows, which on the ORM broker are also its queue.

One :class:`TaskRecord` per enqueued task. Its ``broker_*`` columns belong to
the ORM broker (``djtasks.brokers.database``): a row whose ``broker_state``
is ``queued`` is a message waiting, ``leased`` a message reserved by a worker.
Keeping the queue in the result row makes enqueue one INSERT and spares a
second table to keep consistent with the first. Other brokers leave those
columns empty.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.tasks import TaskResultStatus

#: Django's statuses, plus CANCELLED for revoked tasks (reported as FAILED through ``django.tasks``).
CANCELLED = "CANCELLED"
STATUS_CHOICES = [*TaskResultStatus.choices, (CANCELLED, "Cancelled")]


class BrokerState(models.TextChoices):
    QUEUED = "queued", "Queued"
    LEASED = "leased", "Leased"


class TaskRecord(models.Model):
    """The lifecycle and result of one task call."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    backend = models.CharField(max_length=64, default="default")
    task_path = models.CharField("task", max_length=255)
    queue_name = models.CharField("queue", max_length=64, default="default")
    priority = models.SmallIntegerField(default=0)
    args = models.JSONField(default=list, blank=True)
    kwargs = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default=TaskResultStatus.READY)

    enqueued_at = models.DateTimeField()
    run_after = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    last_attempted_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    attempts = models.PositiveIntegerField(default=0)
    worker_ids = models.JSONField(default=list, blank=True)
    return_value = models.JSONField(null=True, blank=True)
    #: One entry per failed attempt: exception_class_path, message, traceback, attempt, at.
    errors = models.JSONField(default=list, blank=True)
    #: ``{"done": int, "total": int | None, "message": str | None}`` while a task reports it.
    progress = models.JSONField(null=True, blank=True)

    # -- ORM broker columns ------------------------------------------------
    broker_state = models.CharField(max_length=8, choices=BrokerState.choices, null=True, blank=True)
    available_at = models.DateTimeField(null=True, blank=True)
    leased_until = models.DateTimeField(null=True, blank=True)
    lease_owner = models.CharField(max_length=255, blank=True, default="")
    deliveries = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True, default="")

    class Meta:
        verbose_name = "task result"
        verbose_name_plural = "task results"
        indexes = [
            # The claim: queued rows of some queues, highest priority, then oldest due.
            # Lease recovery uses its prefix too (leased rows are few). Every index
            # costs each state change a write, so there are no more than needed.
            models.Index(
                fields=["broker_state", "queue_name", "-priority", "available_at"], name="djtasks_claim_idx"
            ),
            # Admin filters and listings, newest first; cleanup by finish time.
            models.Index(fields=["status", "-enqueued_at"], name="djtasks_status_idx"),
            models.Index(fields=["task_path", "-enqueued_at"], name="djtasks_task_idx"),
            models.Index(fields=["-enqueued_at"], name="djtasks_enqueued_idx"),
            models.Index(fields=["finished_at"], name="djtasks_finished_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.task_path} [{self.id}] {self.status}"

    @property
    def last_error(self) -> dict | None:
        return self.errors[-1] if self.errors else None

    @classmethod
    def from_envelope(cls, envelope, enqueued_at) -> TaskRecord:  # noqa: ANN001 - Envelope, datetime
        """A READY row for a freshly enqueued envelope (not saved)."""
        return cls(
            id=envelope.id,
            backend=envelope.backend,
            task_path=envelope.task,
            queue_name=envelope.queue,
            priority=envelope.priority,
            args=envelope.args,
            kwargs=envelope.kwargs,
            status=TaskResultStatus.READY,
            enqueued_at=enqueued_at,
            run_after=envelope.eta,
            expires_at=envelope.expires,
        )


# Periodic tasks (beat) live in their own module; imported here so Django finds them.
from .beat.models import (  # noqa: E402
    BeatLease,
    ClockedSchedule,
    CrontabSchedule,
    IntervalPeriod,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTaskTick,
)

__all__ = ["BeatLease", "BrokerState", "ClockedSchedule", "CrontabSchedule", "IntervalPeriod", "IntervalSchedule",
           "PeriodicTask", "PeriodicTaskTick", "TaskRecord"]

# Worker registry, remote control, revocations and rate limits.
from .control.models import (  # noqa: E402
    ControlCommand,
    ControlReply,
    RateLimitBucket,
    Revocation,
    WorkerRecord,
)

__all__ += ["ControlCommand", "ControlReply", "RateLimitBucket", "Revocation", "WorkerRecord"]
