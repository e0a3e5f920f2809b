"""The benchmark task for djtasks (``@djtask``)."""

from collections.abc import Sequence

from django.db.models import Count
from django.tasks import TaskResultStatus
from djtasks import djtask
from djtasks.models import TaskRecord

from .bookkeeping import record


@djtask
def noop(tag: str, enqueued_at: float = 0.0) -> None:
    """Do nothing but the bookkeeping."""
    record(tag, enqueued_at)


@djtask(ignore_result=True)
def noop_nores(tag: str, enqueued_at: float = 0.0) -> None:
    """The same, fire and forget: no result row is kept."""
    record(tag, enqueued_at)


def enqueue_one_nores(tag: str, enqueued_at: float) -> None:
    """Enqueue one ``ignore_result`` task with ``DjTask.enqueue``."""
    noop_nores.enqueue(tag, enqueued_at)


def enqueue_one(tag: str, enqueued_at: float) -> None:
    """Enqueue one task with ``DjTask.enqueue``."""
    noop.enqueue(tag, enqueued_at)


def enqueue_many(items: Sequence[tuple[str, float]]) -> None:
    """Enqueue a batch with ``DjTask.enqueue_many`` (one tuple of args per task)."""
    noop.enqueue_many(list(items))


def enqueue_many_nores(items: Sequence[tuple[str, float]]) -> None:
    """Enqueue a batch of ``ignore_result`` tasks with ``DjTask.enqueue_many``."""
    noop_nores.enqueue_many(list(items))


def count_results() -> dict[str, int]:
    """Count djtasks ``TaskRecord`` rows by status."""
    rows = TaskRecord.objects.values("status").annotate(n=Count("pk"))
    by_status = {str(row["status"]): row["n"] for row in rows}
    return {
        "succeeded": by_status.pop(TaskResultStatus.SUCCESSFUL.value, 0),
        "failed": by_status.pop(TaskResultStatus.FAILED.value, 0),
        "other": sum(by_status.values()),
    }
