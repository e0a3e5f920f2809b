"""Which registered task a delivery names, read once per message for the supervisor's checks.

Before a delivery reaches the pool, the supervisor asks about its task more
than once (is it ``async def``? rate-limited? what hard time limit?); the
envelope is decoded once for all of them.
"""

from __future__ import annotations

from functools import lru_cache

from django.tasks import Task

from .. import registry
from ..brokers import Delivery
from ..exceptions import DjTasksError
from ..messages import decode

#: Message bodies whose task path is remembered: those of the latest fetched batches.
REMEMBERED_BODIES = 256


@lru_cache(maxsize=REMEMBERED_BODIES)
def _task_path(body: bytes) -> str | None:
    try:
        return decode(body).task
    except DjTasksError:
        return None


def task_of(delivery: Delivery) -> Task | None:
    """The registered task ``delivery`` names, or ``None`` if it cannot be told (the executor says why)."""
    path = _task_path(delivery.body)
    if path is None:
        return None
    try:
        return registry.lookup(path)
    except DjTasksError:
        return None


def task_path_of(delivery: Delivery) -> str:
    """The task path ``delivery`` names, for display; ``"?"`` if it cannot be decoded."""
    return _task_path(delivery.body) or "?"
