"""Soft and hard time limits inside the process that runs a task.

In a process's main thread (the solo pool, a prefork child) the limit is a
``SIGALRM`` timer whose handler raises in the task, even in the middle of
``time.sleep``. In other threads (the threads pool) it is an asynchronous
exception, delivered at the task's next Python instruction: a task blocked
in one long C call (a socket read without timeout) sees it only when that
call returns. A hard limit that must stop anything is only possible by
killing a process: the prefork pool does that.

In a greenlet of a gevent-patched process (the gevent pool) both limits are
``gevent.Timeout``: raised in the task at its next cooperative wait (I/O,
``time.sleep``), never in the middle of pure-Python work that does not yield.
For ``async def`` tasks (:func:`async_time_limits`) a limit cancels the
coroutine: it sees ``asyncio.CancelledError`` at its current ``await``, may
catch it to clean up, and the task ends with the limit's error.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import itertools
import os
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager, nullcontext

from ..exceptions import SoftTimeLimitExceeded, TimeLimitExceeded


def time_limits(soft_seconds: float | None, hard_seconds: float | None) -> AbstractContextManager[None]:
    """Raise ``SoftTimeLimitExceeded`` after ``soft_seconds``, ``TimeLimitExceeded`` after ``hard_seconds``."""
    limits = [(s, e) for s, e in ((soft_seconds, SoftTimeLimitExceeded), (hard_seconds, TimeLimitExceeded)) if s]
    if not limits:
        return nullcontext()
    if _in_a_greenlet():
        return _gevent_timeouts(limits)
    if threading.current_thread() is threading.main_thread():
        return _alarm(sorted(limits, key=lambda limit: limit[0]))
    return _AsyncExceptions(limits)


@contextmanager
def _alarm(limits: list[tuple[float, type[BaseException]]]) -> Iterator[None]:
    pending = list(limits)
    elapsed = 0.0

    def fire(signum: int, frame: object) -> None:
        nonlocal elapsed
        seconds, error = pending.pop(0)
        elapsed = seconds
        if pending:
            signal.setitimer(signal.ITIMER_REAL, pending[0][0] - elapsed)
        raise _exceeded(seconds, error)

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, pending[0][0])
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _exceeded(seconds: float, error: type[BaseException]) -> BaseException:
    soft = "soft " if error is SoftTimeLimitExceeded else ""
    return error(f"the task ran longer than its {soft}time limit of {seconds:g} s")


def _in_a_greenlet() -> bool:
    """Whether this runs in a spawned greenlet (not the main one) of a gevent-patched process."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return False
    from greenlet import getcurrent

    return getcurrent().parent is not None


@contextmanager
def _gevent_timeouts(limits: list[tuple[float, type[BaseException]]]) -> Iterator[None]:
    import gevent

    timeouts = [gevent.Timeout(seconds, _exceeded(seconds, error)) for seconds, error in limits]
    for timeout in timeouts:
        timeout.start()
    try:
        yield
    finally:
        for timeout in timeouts:
            timeout.close()


@asynccontextmanager
async def async_time_limits(soft_seconds: float | None, hard_seconds: float | None) -> AsyncIterator[None]:
    """For a coroutine: cancel it after each limit; raise that limit's error if the cancellation ends it."""
    limits = [(s, e) for s, e in ((soft_seconds, SoftTimeLimitExceeded), (hard_seconds, TimeLimitExceeded)) if s]
    if not limits:
        yield
        return
    task = asyncio.current_task()
    fired: list[BaseException] = []

    def fire(error: BaseException) -> None:
        fired.append(error)
        task.cancel()

    loop = asyncio.get_running_loop()
    handles = [loop.call_later(seconds, fire, _exceeded(seconds, error)) for seconds, error in limits]
    try:
        yield
    except asyncio.CancelledError as cancelled:
        if _take_back(task, fired):
            raise fired[-1] from cancelled
        raise  # not ours (a revocation): it goes on
    else:
        _take_back(task, fired)  # the coroutine caught ours and finished
    finally:
        for handle in handles:
            handle.cancel()


def _take_back(task: asyncio.Task, fired: list[BaseException]) -> bool:
    """Withdraw the cancellations the limits requested; return True if they were the only ones."""
    for _ in fired:
        task.uncancel()
    return bool(fired) and task.cancelling() == 0


def raise_in_thread(thread_id: int, error: type[BaseException]) -> None:
    """Make ``error`` raise in thread ``thread_id`` at its next Python instruction."""
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(error))


class _AsyncExceptions:
    """The limits of a task in a thread, raised there by the watchdog (a class: it runs for every task)."""

    __slots__ = ("armed", "limits", "watchdog")

    def __init__(self, limits: list[tuple[float, type[BaseException]]]) -> None:
        self.limits = limits
        self.watchdog = _watchdog()

    def __enter__(self) -> None:
        self.armed = self.watchdog.arm(threading.get_ident(), self.limits)

    def __exit__(self, *exc_info: object) -> None:
        self.watchdog.disarm(self.armed)


class _Armed:
    """One limit of one running task: raise ``error`` in thread ``thread_id`` unless disarmed first."""

    __slots__ = ("active", "error", "thread_id")

    def __init__(self, thread_id: int, error: type[BaseException]) -> None:
        self.thread_id = thread_id
        self.error = error
        self.active = True


class _Watchdog:
    """One thread that raises the limits' errors in the task threads that overrun them.

    A timer thread per limit would cost each task two thread starts; here a
    task arms and disarms its limits under one lock, and the watchdog sleeps
    until the earliest deadline. Disarmed limits leave the heap lazily, and
    the heap is compacted when they are most of it, so long limits on many
    short tasks do not pile up.
    """

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Armed]] = []
        self._order = itertools.count()
        self._disarmed = 0
        self.pid = os.getpid()
        threading.Thread(target=self._run, name="djtasks-time-limits", daemon=True).start()

    def arm(self, thread_id: int, limits: list[tuple[float, type[BaseException]]]) -> list[_Armed]:
        now = time.monotonic()
        armed = [_Armed(thread_id, error) for _, error in limits]
        with self._condition:
            earliest = self._heap[0][0] if self._heap else None
            for (seconds, _), limit in zip(limits, armed, strict=True):
                heapq.heappush(self._heap, (now + seconds, next(self._order), limit))
            if earliest is None or self._heap[0][0] < earliest:
                self._condition.notify()
        return armed

    def disarm(self, armed: list[_Armed]) -> None:
        with self._condition:  # the watchdog fires under this lock: never after the task left its limits
            for limit in armed:
                if limit.active:
                    limit.active = False
                    self._disarmed += 1
            if self._disarmed > COMPACT_AFTER and self._disarmed * 2 > len(self._heap):
                self._heap = [entry for entry in self._heap if entry[2].active]
                heapq.heapify(self._heap)
                self._disarmed = 0

    def _run(self) -> None:
        with self._condition:
            while True:
                while self._heap and not self._heap[0][2].active:
                    heapq.heappop(self._heap)
                    self._disarmed -= 1
                if not self._heap:
                    self._condition.wait()
                    continue
                delay = self._heap[0][0] - time.monotonic()
                if delay > 0:
                    self._condition.wait(delay)
                    continue
                _, _, limit = heapq.heappop(self._heap)
                limit.active = False
                raise_in_thread(limit.thread_id, limit.error)


#: Disarmed limits the heap may hold before it is compacted.
COMPACT_AFTER = 1024
_WATCHDOG: _Watchdog | None = None
_WATCHDOG_LOCK = threading.Lock()


def _watchdog() -> _Watchdog:
    """This process's watchdog, started on first use (again in a forked child, whose threads are gone)."""
    global _WATCHDOG
    if _WATCHDOG is None or _WATCHDOG.pid != os.getpid():
        with _WATCHDOG_LOCK:
            if _WATCHDOG is None or _WATCHDOG.pid != os.getpid():
                _WATCHDOG = _Watchdog()
    return _WATCHDOG
