"""A delivery's envelope and task, decoded once per message.

Before a delivery reaches the pool, the supervisor asks about its task more
than once (is it ``async def``? rate-limited? what hard time limit?), and
the executor then needs the whole envelope; the body is decoded once for all
of them (in one process: a forked child decodes its own). An envelope is
remembered until its run takes it, or its delivery is settled, so the memory
it takes follows the deliveries held, not the tasks run so far.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable

from django.tasks import Task

from .. import registry
from ..brokers import Delivery
from ..exceptions import DjTasksError
from ..messages import Envelope, decode

#: Envelopes kept at most: more than a worker holds (``gevent -c 500`` with the default prefetch holds 2,000).
REMEMBERED_BODIES = 4096


class _Envelopes:
    """Decoded envelopes of the messages a worker holds, by body, until their task runs or is settled."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._by_body: dict[bytes, Envelope] = {}
        self._lock = threading.Lock()

    def get(self, body: bytes) -> Envelope:
        envelope = self._by_body.get(body)
        if envelope is None:
            envelope = decode(body)
            with self._lock:
                if len(self._by_body) >= self.limit:
                    del self._by_body[next(iter(self._by_body))]  # the oldest
                self._by_body[body] = envelope
        return envelope

    def take(self, body: bytes) -> Envelope:
        with self._lock:
            envelope = self._by_body.pop(body, None)
        return envelope if envelope is not None else decode(body)

    def forget(self, bodies: Iterable[bytes]) -> None:
        with self._lock:
            for body in bodies:
                self._by_body.pop(body, None)


_envelopes = _Envelopes(REMEMBERED_BODIES)


def _start_afresh_after_fork() -> None:
    """In a forked child: a cache of its own, whose lock no thread of the parent may hold (it was copied)."""
    global _envelopes
    _envelopes = _Envelopes(REMEMBERED_BODIES)


os.register_at_fork(after_in_child=_start_afresh_after_fork)


def envelope_of(delivery: Delivery) -> Envelope:
    """The envelope of ``delivery``; raise :class:`~djtasks.exceptions.MessageDecodeError` if it has none.

    Envelopes are immutable, and their argument trees are only read (loading
    them builds new objects), so one decoded envelope serves every caller.
    """
    return _envelopes.get(delivery.body)


def take_envelope(delivery: Delivery) -> Envelope:
    """The envelope of ``delivery``, which is no longer remembered: for its run, the last use of it."""
    return _envelopes.take(delivery.body)


def forget(deliveries: Iterable[Delivery]) -> None:
    """Drop the envelopes of settled deliveries (those a forked child ran are still remembered here)."""
    _envelopes.forget(d.body for d in deliveries)


def _task_path(body: bytes) -> str | None:
    try:
        return _envelopes.get(body).task
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
