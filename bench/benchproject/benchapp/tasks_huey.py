"""The benchmark task for Huey (``@task`` of ``huey.contrib.djhuey``, Redis storage, no results).

Huey runs the ``latency`` workload only: the start latency of its simplest
path, a message pushed on a list and popped by a blocked worker thread,
beside djtasks' on the same machine.
"""

from collections.abc import Sequence

from huey.contrib.djhuey import task

from .bookkeeping import record


@task()
def noop(tag: str, enqueued_at: float = 0.0) -> None:
    """Do nothing but the bookkeeping."""
    record(tag, enqueued_at)


def enqueue_one(tag: str, enqueued_at: float) -> None:
    """Enqueue one task by calling it, Huey's way."""
    noop(tag, enqueued_at)


def enqueue_one_nores(tag: str, enqueued_at: float) -> None:
    """Huey keeps no results here anyway: the same as :func:`enqueue_one`."""
    noop(tag, enqueued_at)


def enqueue_many(items: Sequence[tuple[str, float]]) -> None:
    """Not used: Huey runs the ``latency`` workload only."""
    raise NotImplementedError("no bulk enqueue in this bench for Huey")


def enqueue_many_nores(items: Sequence[tuple[str, float]]) -> None:
    """Not used: Huey runs the ``latency`` workload only."""
    raise NotImplementedError("no bulk enqueue in this bench for Huey")


def count_results() -> dict[str, int]:
    """Huey stores no results here."""
    return {"succeeded": 0, "failed": 0, "other": 0}
