"""The benchmark task for Celery (``@shared_task``, results in django-celery-results)."""

from collections.abc import Sequence

from celery import shared_task
from django.db.models import Count
from django_celery_results.models import TaskResult

from benchproject.celery_app import app as _app  # noqa: F401  (makes it the current app)

from .bookkeeping import record


@shared_task
def noop(tag: str, enqueued_at: float = 0.0) -> None:
    """Do nothing but the bookkeeping."""
    record(tag, enqueued_at)


@shared_task(ignore_result=True)
def noop_nores(tag: str, enqueued_at: float = 0.0) -> None:
    """The same, fire and forget: no django-celery-results row."""
    record(tag, enqueued_at)


def enqueue_one_nores(tag: str, enqueued_at: float) -> None:
    """Enqueue one ``ignore_result`` task with ``Task.delay``."""
    noop_nores.delay(tag, enqueued_at)


def enqueue_one(tag: str, enqueued_at: float) -> None:
    """Enqueue one task with ``Task.delay``."""
    noop.delay(tag, enqueued_at)


def enqueue_many(items: Sequence[tuple[str, float]]) -> None:
    """Celery has no bulk publish of independent tasks."""
    raise NotImplementedError("Celery has no bulk enqueue")


def enqueue_many_nores(items: Sequence[tuple[str, float]]) -> None:
    """Celery has no bulk publish of independent tasks."""
    raise NotImplementedError("Celery has no bulk enqueue")


def count_results() -> dict[str, int]:
    """Count django-celery-results ``TaskResult`` rows by status."""
    rows = TaskResult.objects.values("status").annotate(n=Count("id"))
    by_status = {row["status"]: row["n"] for row in rows}
    return {
        "succeeded": by_status.pop("SUCCESS", 0),
        "failed": by_status.pop("FAILURE", 0),
        "other": sum(by_status.values()),
    }
