"""``async def`` tasks: one asyncio event loop per worker process runs them, many at once, beside the pool.

Whatever the pool (prefork, threads, solo, gevent), a delivery whose task is
a coroutine function does not take a pool slot: :class:`PoolWithEventLoop`
hands it to a :class:`CoroutineRunner`, an event loop in a thread of the
worker process (started at the first such task), where up to
``ASYNC_TASKS_AT_ONCE`` of them await at the same time. Other deliveries go
to the pool as before. The executor's :meth:`~.executor.Executor.arun` runs
each one: the same steps as for a plain function, the call awaited.

Why one loop in the worker process rather than one per pool slot: a slot
(a prefork child, a thread) that awaits one coroutine at a time would give
no more concurrency than a plain function; one loop gives thousands. The
loop is meant for tasks that await I/O: CPU-heavy work in a coroutine holds
up every other coroutine (and, in the supervisor's process, the supervisor).

The worker reserves for the pool as with any pool, and for the loop in
proportion to the share of ``async def`` tasks among the deliveries it got
lately: a worker fed coroutines reserves up to the loop's free places at
once, one fed plain tasks reserves for its pool only and leaves the rest in
the queue for other workers.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async

from ..brokers import Delivery
from .deliveries import task_of
from .executor import Executor
from .pools.base import OnDone, Pool, PoolJob

logger = logging.getLogger("djtasks.worker")

#: How many ``async def`` tasks one worker process awaits at once on its event loop.
ASYNC_TASKS_AT_ONCE = 1000
#: Weight of each new delivery in :attr:`PoolWithEventLoop.async_share`.
ASYNC_SHARE_WEIGHT = 0.1


def is_coroutine_task(delivery: Delivery) -> bool:
    """Whether ``delivery`` names a task defined with ``async def`` (as ``django.tasks`` decides it)."""
    return getattr(task_of(delivery), "is_coroutine", False)


class SyncSteps:
    """Runs the synchronous steps of many coroutines in one hop to the thread of Django's async ORM.

    Each task has steps that may touch the database (connection hygiene,
    signal receivers) and so must run where ``sync_to_async`` runs Django's
    queries. One hop per step costs more than the steps themselves when
    hundreds of tasks start at once; the steps asked for during one turn of
    the loop go together, in order, in one hop.
    """

    def __init__(self) -> None:
        self._asked: list[tuple[Callable[[], Any], asyncio.Future]] = []

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._asked.append((functools.partial(function, *args), future))
        if len(self._asked) == 1:
            loop.call_soon(self._hop)  # after the other coroutines ready in this turn asked for theirs
        return await future

    def _hop(self) -> None:
        batch, self._asked = self._asked, []
        hop = asyncio.ensure_future(sync_to_async(_call_each)([call for call, _ in batch]))
        hop.add_done_callback(lambda done: _settle(batch, done))


def _call_each(calls: list[Callable[[], Any]]) -> list[tuple[bool, Any]]:
    outcomes = []
    for call in calls:
        try:
            outcomes.append((True, call()))
        except BaseException as error:  # noqa: BLE001 - raised in the coroutine that asked for it
            outcomes.append((False, error))
    return outcomes


def _settle(batch: list[tuple[Callable[[], Any], asyncio.Future]], hop: asyncio.Future) -> None:
    outcomes = hop.result() if not hop.cancelled() and hop.exception() is None else None
    for index, (_, future) in enumerate(batch):
        if future.done():  # its coroutine was cancelled meanwhile
            continue
        if outcomes is None:
            future.set_exception(hop.exception() if not hop.cancelled() else asyncio.CancelledError())
        elif outcomes[index][0]:
            future.set_result(outcomes[index][1])
        else:
            future.set_exception(outcomes[index][1])


class CoroutineRunner:
    """An event loop in its own thread, running deliveries of ``async def`` tasks, ``limit`` at a time."""

    def __init__(self, execute: Executor, on_done: OnDone, limit: int = ASYNC_TASKS_AT_ONCE) -> None:
        self.execute = execute
        self.on_done = on_done
        self.limit = limit
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._backlog: deque[Delivery] = deque()  # submitted, waiting for one of the ``limit`` places
        self._running: dict[str, asyncio.Task] = {}
        self._pending = 0  # submitted and not yet completed
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._sync_steps = SyncSteps()

    def _start(self) -> asyncio.AbstractEventLoop:
        # Started at the first async task, from the supervisor's thread: workers
        # without any get no extra thread, and prefork children are forked by then.
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=_serve, args=(self._loop,), name="djtasks-asyncio", daemon=True)
            self._thread.start()
            logger.info("async def tasks run on an event loop, up to %d at once", self.limit)
        return self._loop

    def submit(self, delivery: Delivery) -> None:
        with self._lock:
            self._backlog.append(delivery)
            self._pending += 1
        self._start().call_soon_threadsafe(self._start_waiting)

    def free_slots(self) -> int:
        with self._lock:
            return self.limit - self._pending

    def room(self, prefetch_multiplier: int) -> int:
        """Deliveries to take now: ``prefetch_multiplier`` per place, waiting ones included (as a pool's room)."""
        with self._lock:
            return self.limit * prefetch_multiplier - self._pending

    def take_back(self) -> list[Delivery]:
        with self._lock:
            taken, self._backlog = list(self._backlog), deque()
            self._pending -= len(taken)
            self._idle.notify_all()
        return taken

    def terminate(self, task_id: str) -> bool:
        """Cancel the coroutine of ``task_id``; it ends CANCELLED (``TaskRevoked``)."""
        with self._lock:
            running = self._running.get(task_id)
        if running is None or self._loop is None:
            return False
        self._loop.call_soon_threadsafe(running.cancel)
        return True

    def stop(self, timeout: float | None) -> bool:
        """Wait (up to ``timeout`` seconds) for the running coroutines, then stop the loop.

        Coroutines still running then are abandoned, as a pool thread would
        be: their tasks come back when their lease runs out.
        """
        if self._loop is None:
            return True
        with self._idle:
            finished = self._idle.wait_for(lambda: self._pending == 0, timeout)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=1)
        return finished

    # -- in the loop's thread ------------------------------------------------

    def _start_waiting(self) -> None:
        with self._lock:
            while self._backlog and len(self._running) < self.limit:
                delivery = self._backlog.popleft()
                self._running[delivery.id] = self._loop.create_task(self._run(delivery))

    async def _run(self, delivery: Delivery) -> None:
        try:
            completion = await self.execute.arun(delivery, run_sync=self._sync_steps.run)
        finally:
            with self._lock:
                del self._running[delivery.id]
                self._pending -= 1
                self._idle.notify_all()
            self._start_waiting()
        self.on_done(completion)


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    if _gevent_patched():
        _running_loop_only_in_this_greenlet(loop)
    loop.run_forever()


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("threading")


def _running_loop_only_in_this_greenlet(loop: asyncio.AbstractEventLoop) -> None:
    """Under gevent, keep asyncio's "running loop" to the greenlet that runs ``loop``.

    Every greenlet shares one OS thread, and asyncio records the running loop
    per thread: without this, the other greenlets (the supervisor, the gevent
    pool's tasks) would seem to run inside the loop, and Django would refuse
    their database queries (``SynchronousOnlyOperation``). A greenlet switch
    hook sets it when the loop's greenlet resumes and clears it when it yields.
    """
    import greenlet

    home = greenlet.getcurrent()
    previous = greenlet.settrace(None)

    def trace(event: str, args: tuple) -> None:
        if event in ("switch", "throw"):
            origin, target = args
            if target is home:
                asyncio._set_running_loop(loop)
            elif origin is home:
                asyncio._set_running_loop(None)
        if previous is not None:
            previous(event, args)

    greenlet.settrace(trace)


class PoolWithEventLoop(Pool):
    """A pool that hands ``async def`` tasks to a :class:`CoroutineRunner` and the others to ``pool``.

    It is ``pool`` to the supervisor (name, concurrency, resizing, what
    prefork adds); only where a delivery runs differs.
    """

    def __init__(self, pool: Pool, *, limit: int = ASYNC_TASKS_AT_ONCE) -> None:
        self.pool = pool
        self.coroutines = CoroutineRunner(pool.execute, pool.on_done, limit)
        self.execute = pool.execute
        self.on_done = pool.on_done
        self.name = pool.name
        self.runs_inline = pool.runs_inline
        #: Share of ``async def`` tasks among the recent deliveries (a moving average, 0 to 1).
        self.async_share = 0.0

    @property
    def concurrency(self) -> int:
        return self.pool.concurrency

    def __getattr__(self, name: str) -> object:  # what the wrapped pool offers besides the interface
        if name == "pool":  # not set yet (during __init__): no recursion
            raise AttributeError(name)
        return getattr(self.pool, name)

    def start(self) -> None:
        self.pool.start()

    def submit(self, delivery: Delivery) -> None:
        if self.counts_coroutine(delivery):
            self.coroutines.submit(delivery)
        else:
            self.pool.submit(delivery)

    def counts_coroutine(self, delivery: Delivery) -> bool:
        """Whether ``delivery`` is an ``async def`` task; counted in :attr:`async_share` as delivered."""
        coroutine = is_coroutine_task(delivery)
        self.async_share += ASYNC_SHARE_WEIGHT * (coroutine - self.async_share)
        return coroutine

    def free_slots(self) -> int:
        return min(self.pool.free_slots(), self.coroutines.free_slots())

    def room(self, prefetch_multiplier: int) -> int:
        """The pool's room, plus room on the loop in proportion to the ``async def`` tasks lately delivered.

        A worker that gets mostly coroutines reserves up to the loop's room
        at once (``prefetch_multiplier`` per place, so that a coroutine that
        ends is followed at once by one that waits), and a queue of them is
        not taken a pool's worth at a time; one that gets plain tasks
        reserves for its pool only.
        """
        loop_room = self.coroutines.room(prefetch_multiplier)
        return min(max(self.pool.room(prefetch_multiplier), 0) + int(self.async_share * loop_room), loop_room)

    def run_job(self, job: PoolJob) -> bool:
        return self.pool.run_job(job)

    def terminate(self, task_id: str) -> bool:
        return self.coroutines.terminate(task_id) or self.pool.terminate(task_id)

    def resize(self, delta: int) -> int:
        return self.pool.resize(delta)

    def take_back(self) -> list[Delivery]:
        return self.pool.take_back() + self.coroutines.take_back()

    def stop(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        coroutines_done = self.coroutines.stop(timeout)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        return self.pool.stop(remaining) and coroutines_done
