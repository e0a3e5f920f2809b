"""A delivery's envelope and task, decoded once per message.

Before a delivery reaches the pool, the supervisor asks about its task more
than once (is it ``async def``? rate-limited? what hard time limit?), and
the executor then needs the whole envelope; the body is decoded once for all
of them (in one process: a forked child decodes its own).
"""

from __future__ import annotations

from functools import lru_cache

from django.tasks import Task

from .. import registry
from ..brokers import Delivery
from ..exceptions import DjTasksError
from ..messages import Envelope, decode

#: Message bodies whose envelope is remembered: those of the latest fetched batches (gevent -c 500
#: with the default prefetch holds 2,000 deliveries at once).
REMEMBERED_BODIES = 4096


@lru_cache(maxsize=REMEMBERED_BODIES)
def _envelope(body: bytes) -> Envelope:
    return decode(body)


def envelope_of(delivery: Delivery) -> Envelope:
    """The envelope of ``delivery``; raise :class:`~djtasks.exceptions.MessageDecodeError` if it has none.

    Envelopes are immutable, and their argument trees are only read (loading
    them builds new objects), so one decoded envelope serves every caller.
    """
    return _envelope(delivery.body)


def _task_path(body: bytes) -> str | None:
    try:
        return _envelope(body).task
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


def envelopes_with_rows(deliveries: list[Delivery]) -> list[Envelope]:
    """The envelopes of ``deliveries`` whose tasks keep a result row: those to mark started.

    Left out: ``ignore_result`` tasks, and messages that cannot be decoded
    (the executor records why they did not run).
    """
    envelopes = []
    for delivery in deliveries:
        try:
            envelope = envelope_of(delivery)
        except DjTasksError:
            continue
        if not getattr(task_of(delivery), "ignore_result", False):
            envelopes.append(envelope)
    return envelopes
