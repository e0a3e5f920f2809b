"""The benchmark task for django-tasks-db (``django.tasks`` ``@task``)."""

from collections.abc import Sequence

from django.db.models import Count
from django.tasks import task
from django_tasks_db.models import DBTaskResult

from .bookkeeping import record


@task
def noop(tag: str, enqueued_at: float = 0.0) -> None:
    """Do nothing but the bookkeeping."""
    record(tag, enqueued_at)


def enqueue_one(tag: str, enqueued_at: float) -> None:
    """Enqueue one task with ``Task.enqueue``."""
    noop.enqueue(tag, enqueued_at)


def enqueue_one_nores(tag: str, enqueued_at: float) -> None:
    """django-tasks-db always stores a result (it does not run ``drain-nores``)."""
    raise NotImplementedError("django-tasks-db has no fire-and-forget tasks")


def enqueue_many(items: Sequence[tuple[str, float]]) -> None:
    """django-tasks-db has no bulk enqueue."""
    raise NotImplementedError("django-tasks-db has no bulk enqueue")


def enqueue_many_nores(items: Sequence[tuple[str, float]]) -> None:
    """django-tasks-db has no bulk enqueue."""
    raise NotImplementedError("django-tasks-db has no bulk enqueue")


def count_results() -> dict[str, int]:
    """Count ``DBTaskResult`` rows by status."""
    rows = DBTaskResult.objects.values("status").annotate(n=Count("id"))
    by_status = {row["status"]: row["n"] for row in rows}
    return {
        "succeeded": by_status.pop("SUCCESSFUL", 0),
        "failed": by_status.pop("FAILED", 0),
        "other": sum(by_status.values()),
    }
