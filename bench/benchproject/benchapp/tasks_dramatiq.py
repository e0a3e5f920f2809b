"""The benchmark task for Dramatiq (``@dramatiq.actor`` on its Redis broker, no results).

The worker imports this module directly (``dramatiq benchapp.tasks_dramatiq``),
so it sets Django up itself when nothing has yet: the bookkeeping reads the
Redis URL and key prefix from the settings.
"""

import os
from collections.abc import Sequence

import django
import dramatiq
from django.apps import apps
from django.conf import settings
from dramatiq.brokers.redis import RedisBroker

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings.dramatiq")
if not apps.ready and not apps.loading:
    django.setup()

from .bookkeeping import record  # noqa: E402

dramatiq.set_broker(RedisBroker(url=settings.DRAMATIQ_BROKER_URL))


@dramatiq.actor(queue_name="default", max_retries=0)
def noop(tag: str, enqueued_at: float = 0.0) -> None:
    """Do nothing but the bookkeeping."""
    record(tag, enqueued_at)


def enqueue_one(tag: str, enqueued_at: float) -> None:
    """Enqueue one message with ``Actor.send``."""
    noop.send(tag, enqueued_at)


def enqueue_one_nores(tag: str, enqueued_at: float) -> None:
    """Dramatiq keeps no results anyway: the same as :func:`enqueue_one`."""
    noop.send(tag, enqueued_at)


def enqueue_many(items: Sequence[tuple[str, float]]) -> None:
    """Not used: Dramatiq runs the ``drain-nores`` workload only."""
    raise NotImplementedError("no bulk enqueue in this bench for Dramatiq")


def enqueue_many_nores(items: Sequence[tuple[str, float]]) -> None:
    """Not used: Dramatiq runs the ``drain-nores`` workload only."""
    raise NotImplementedError("no bulk enqueue in this bench for Dramatiq")


def count_results() -> dict[str, int]:
    """Dramatiq stores no results here."""
    return {"succeeded": 0, "failed": 0, "other": 0}
