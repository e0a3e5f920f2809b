"""The worker-engine tasks for djtasks (``io``, ``cpu`` and ``memory`` workloads of ``bench/run.py``).

Each task records its start and end after its work
(:func:`benchapp.bookkeeping.record_span`: a list append, pushed to Redis by
a thread of the process, so that no coroutine blocks the event loop either).
"""

import asyncio
import time
from collections.abc import Sequence

from djtasks import djtask

from .bookkeeping import record_span
from .tasks_djtasks import noop_nores
from .work import spin


@djtask
def sleep_io(tag: str, seconds: float) -> None:
    """Wait ``seconds`` on I/O (``time.sleep``: cooperative under gevent)."""
    started = time.time()
    time.sleep(seconds)
    record_span(tag, started, time.time())


@djtask
async def sleep_async(tag: str, seconds: float) -> None:
    """Await ``seconds`` (``asyncio.sleep``) on the worker's event loop."""
    started = time.time()
    await asyncio.sleep(seconds)
    record_span(tag, started, time.time())


@djtask
def cpu(tag: str, loops: int) -> None:
    """Pure-Python CPU work (:func:`benchapp.work.spin`)."""
    started = time.time()
    spin(loops)
    record_span(tag, started, time.time())


TASKS = {"sleep": sleep_io, "async-sleep": sleep_async, "cpu": cpu, "noop-nores": noop_nores}


def enqueue(kind: str, tag: str, argument: float, count: int, batch_size: int) -> None:
    """Enqueue ``count`` tasks of ``kind``: ``enqueue_many`` in batches of ``batch_size``, or one call each if 0."""
    task = TASKS[kind]
    call = _arguments(kind, tag, argument)
    if batch_size <= 0:
        for _ in range(count):
            task.enqueue(*call)
        return
    for first in range(0, count, batch_size):
        task.enqueue_many([call] * min(batch_size, count - first))


def _arguments(kind: str, tag: str, argument: float) -> Sequence[object]:
    """The positional arguments of one task of ``kind``."""
    return (tag, int(argument)) if kind == "cpu" else (tag, argument)
