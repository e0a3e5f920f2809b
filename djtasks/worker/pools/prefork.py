"""The prefork pool: child processes forked after Django is set up, one task at a time each.

Every child, the first ones and each that replaces another, is forked by a
fork server (:mod:`.forkserver`): a process the supervisor forks once, at
start, before its other threads run and with its database connections
closed. A child forked straight from the running supervisor would copy the
state other threads hold at that instant: SQLite's mutex or the locks of an
open transaction (the child hangs, or finds the database locked for good), a
Redis client's lock. The fork server is single-threaded and never opens a
connection, so no connection or socket is ever shared with a child and each
starts clean. Each child talks to the supervisor over a pipe: a delivery in,
a completion out. A thread in the supervisor watches the children: a child
that dies mid-task (``os._exit``, a segfault, the OOM killer) or runs past
its task's hard time limit (then it is killed) is replaced, and its task
ends as the task's retry policy says, with ``WorkerLostError`` or
``TimeLimitExceeded``. Children are recycled between tasks after
``max_tasks_per_child`` tasks or when their memory passes
``max_memory_per_child_kib``. If the fork server dies (the OOM killer), its
children die with it and are replaced the same way, by a new fork server.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any

from django.db import connections

from ...brokers import Delivery
from ...exceptions import TaskRevoked, TimeLimitExceeded, WorkerLostError
from .base import Pool
from .forkserver import ForkedChild, ForkServer

logger = logging.getLogger("djtasks.worker")

#: Seconds between checks of the children for hard time limits.
WATCH_INTERVAL_SECONDS = 0.1


@dataclass(slots=True, eq=False)
class _Child:
    process: ForkedChild
    conn: Connection
    delivery: Delivery | None = None
    started: float = 0.0
    hard_limit: float | None = None
    done: int = 0
    retiring: bool = False
    ready: threading.Event = field(default_factory=threading.Event)


class PreforkPool(Pool):
    """``concurrency`` child processes; CPU-bound tasks use every core."""

    name = "prefork"

    def __init__(self, execute, on_done, concurrency: int, *, max_tasks_per_child: int | None = None,  # noqa: ANN001
                 max_memory_per_child_kib: int | None = None) -> None:
        super().__init__(execute, on_done, concurrency)
        self.max_tasks_per_child = max_tasks_per_child
        self.max_memory_per_child_kib = max_memory_per_child_kib
        self._children: list[_Child] = []
        self._backlog: deque[Delivery] = deque()  # reserved, waiting for an idle child
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None
        # The children run the task itself; the hard limit is the supervisor's job.
        if hasattr(execute, "hard_limit_in_process"):
            execute.hard_limit_in_process = False
        self._forks = ForkServer(functools.partial(_child_main, execute=execute, max_tasks=max_tasks_per_child,
                                                   max_memory_kib=max_memory_per_child_kib))

    # -- life cycle --------------------------------------------------------

    def start(self) -> None:
        connections.close_all()  # never share a database connection with a child
        self._forks.start()  # from this thread: the fork server dies with it
        with self._lock:
            for _ in range(self.concurrency):
                self._children.append(self._spawn())
        self._watcher = threading.Thread(target=self._watch, name="djtasks-prefork", daemon=True)
        self._watcher.start()

    def _spawn(self) -> _Child:
        parent_end, child_end = multiprocessing.Pipe()
        process = self._forks.spawn(child_end)
        child_end.close()
        return _Child(process=process, conn=parent_end)

    def stop(self, timeout: float | None) -> bool:
        self._stopping.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            children = list(self._children)
        for child in children:
            if child.delivery is None:
                _send(child.conn, None)
        for child in children:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            child.process.join(remaining)
        finished = all(not child.process.is_alive() for child in children)
        for child in children:
            if child.process.is_alive():
                child.process.kill()
                child.process.join(1)
        if self._watcher is not None:
            self._watcher.join(timeout=2)
        self._forks.stop()
        return finished

    # -- work --------------------------------------------------------------

    def submit(self, delivery: Delivery) -> None:
        with self._lock:
            self._backlog.append(delivery)
        self._assign()

    def _assign(self) -> None:
        """Give waiting deliveries to idle children."""
        while True:
            with self._lock:
                child = next((c for c in self._children if c.delivery is None and not c.retiring), None)
                if child is None or not self._backlog:
                    return
                delivery = child.delivery = self._backlog.popleft()
                child.started = time.monotonic()
                child.hard_limit = self.execute.limits_of(delivery)[1] if hasattr(self.execute, "limits_of") else None
            _send(child.conn, delivery)

    def free_slots(self) -> int:
        with self._lock:
            idle = sum(1 for c in self._children if c.delivery is None and not c.retiring)
            return idle - len(self._backlog)

    def terminate(self, task_id: str) -> bool:
        with self._lock:
            child = next((c for c in self._children if c.delivery is not None and c.delivery.id == task_id), None)
        if child is None:
            return False
        self._kill(child, TaskRevoked(f"revoked while it ran: its process {child.process.pid} was killed"))
        return True

    def resize(self, delta: int) -> int:
        with self._lock:
            delta = max(delta, 1 - self.concurrency)
            self.concurrency += delta
            for _ in range(max(delta, 0)):
                self._children.append(self._spawn())
            idle = [c for c in self._children if c.delivery is None and not c.retiring]
            for child in idle[:max(-delta, 0)]:
                child.retiring = True
                _send(child.conn, None)  # it exits; the watcher does not replace it
        self._assign()
        return self.concurrency

    def take_back(self) -> list[Delivery]:
        with self._lock:
            taken, self._backlog = list(self._backlog), deque()
        return taken

    @property
    def pids(self) -> list[int]:
        with self._lock:
            return [c.process.pid for c in self._children]

    # -- watching the children ----------------------------------------------

    def _watch(self) -> None:
        while not (self._stopping.is_set() and not any(c.process.is_alive() for c in self._children)):
            with self._lock:
                conns = {c.conn: c for c in self._children}
            for conn in wait(list(conns), timeout=WATCH_INTERVAL_SECONDS):
                self._receive(conns[conn])
            self._enforce_hard_limits()

    def _receive(self, child: _Child) -> None:
        try:
            message = child.conn.recv()
        except (EOFError, OSError):
            self._child_died(child)
            return
        kind, payload = message
        if kind == "done":
            with self._lock:
                child.delivery = None
                child.done += 1
            self.on_done(payload)
            self._assign()
        elif kind == "retiring":
            with self._lock:
                child.retiring = True

    def _child_died(self, child: _Child) -> None:
        child.process.join(1)
        code = child.process.exitcode
        with self._lock:
            if child in self._children:
                self._children.remove(child)
            delivery, child.delivery = child.delivery, None
        if delivery is not None:
            reason = (f"signal {signal.Signals(-code).name}" if code is not None and code < 0
                      else f"exit code {code}")
            logger.error("worker process %s died (%s) while running task %s", child.process.pid, reason,
                         delivery.id, extra={"task_id": delivery.id})
            error = WorkerLostError(f"the worker process running the task died ({reason})")
            self.on_done(self.execute.lost(delivery, error, time.monotonic() - child.started))
        self._replenish()

    def _replenish(self) -> None:
        """Spawn children until there are ``concurrency`` of them that take work."""
        if self._stopping.is_set():
            return
        with self._lock:
            while sum(1 for c in self._children if not c.retiring) < self.concurrency:
                self._children.append(self._spawn())
        self._assign()

    def _kill(self, child: _Child, error: BaseException) -> None:
        """Kill a child in the middle of its task, which ends with ``error``."""
        with self._lock:
            delivery, child.delivery = child.delivery, None
            if child in self._children:
                self._children.remove(child)
        child.process.kill()
        child.process.join(5)
        if delivery is not None:
            self.on_done(self.execute.lost(delivery, error, time.monotonic() - child.started))
        self._replenish()

    def _enforce_hard_limits(self) -> None:
        now = time.monotonic()
        with self._lock:
            late = [c for c in self._children
                    if c.delivery is not None and c.hard_limit and now - c.started > c.hard_limit]
        for child in late:
            delivery, limit = child.delivery, child.hard_limit
            logger.error("task %s ran past its time limit of %g s: killing its process %s", delivery.id, limit,
                         child.process.pid, extra={"task_id": delivery.id})
            self._kill(child, TimeLimitExceeded(f"the task ran longer than its time limit of {limit:g} s "
                                                "and was killed"))


def _send(conn: Connection, payload: Any) -> None:
    try:
        conn.send(payload)
    except (BrokenPipeError, OSError):
        pass  # the child is gone; the watcher replaces it and settles its task


def _child_main(conn: Connection, execute, max_tasks: int | None, max_memory_kib: int | None) -> None:  # noqa: ANN001
    """A child's loop: run deliveries until told to stop, or until it should be recycled.

    It dies with the fork server, which dies with the supervisor (see :mod:`.forkserver`).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor decides when children stop
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    done = 0
    while True:
        try:
            delivery = conn.recv()
        except (EOFError, OSError):
            return
        if delivery is None:
            return
        completion = execute(delivery)
        done += 1
        recycle = (max_tasks and done >= max_tasks) or (max_memory_kib and _rss_kib() > max_memory_kib)
        if recycle:
            conn.send(("retiring", None))
        conn.send(("done", completion))
        if recycle:
            connections.close_all()
            os._exit(0)


def _rss_kib() -> int:
    """This process's resident memory, in KiB."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
