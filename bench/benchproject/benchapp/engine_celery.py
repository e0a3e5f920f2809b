"""The worker-engine tasks for Celery (``io``, ``cpu`` and ``memory`` workloads of ``bench/run.py``).

The same work and bookkeeping as :mod:`benchapp.engine_djtasks`; Celery has
no ``async def`` tasks and no bulk publish, so every task is one ``delay()``.
"""

import time

from celery import shared_task

from .bookkeeping import record_span
from .tasks_celery import noop_nores
from .work import spin


@shared_task
def sleep_io(tag: str, seconds: float) -> None:
    """Wait ``seconds`` on I/O (``time.sleep``: cooperative under gevent)."""
    started = time.time()
    time.sleep(seconds)
    record_span(tag, started, time.time())


@shared_task
def cpu(tag: str, loops: int) -> None:
    """Pure-Python CPU work (:func:`benchapp.work.spin`)."""
    started = time.time()
    spin(loops)
    record_span(tag, started, time.time())


TASKS = {"sleep": sleep_io, "cpu": cpu, "noop-nores": noop_nores}


def enqueue(kind: str, tag: str, argument: float, count: int, batch_size: int) -> None:
    """Enqueue ``count`` tasks of ``kind``, one ``delay()`` each (``batch_size`` must be 0: no bulk API)."""
    if batch_size > 0:
        raise NotImplementedError("Celery has no bulk enqueue")
    if kind not in TASKS:
        raise NotImplementedError(f"no {kind!r} task for Celery")
    task = TASKS[kind]
    call = (tag, int(argument)) if kind == "cpu" else (tag, argument)
    for _ in range(count):
        task.delay(*call)
