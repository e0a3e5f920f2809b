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
import signal
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

from ..exceptions import SoftTimeLimitExceeded, TimeLimitExceeded


@contextmanager
def time_limits(soft_seconds: float | None, hard_seconds: float | None) -> Iterator[None]:
    """Raise ``SoftTimeLimitExceeded`` after ``soft_seconds``, ``TimeLimitExceeded`` after ``hard_seconds``."""
    limits = [(s, e) for s, e in ((soft_seconds, SoftTimeLimitExceeded), (hard_seconds, TimeLimitExceeded)) if s]
    if not limits:
        yield
    elif _in_a_greenlet():
        with _gevent_timeouts(limits):
            yield
    elif threading.current_thread() is threading.main_thread():
        with _alarm(sorted(limits, key=lambda limit: limit[0])):
            yield
    else:
        with _async_exceptions(limits):
            yield


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


@contextmanager
def _async_exceptions(limits: list[tuple[float, type[BaseException]]]) -> Iterator[None]:
    thread_id = threading.get_ident()
    lock = threading.Lock()
    running = True

    def fire(error: type[BaseException]) -> None:
        with lock:
            if running:
                raise_in_thread(thread_id, error)

    timers = [threading.Timer(seconds, fire, (error,)) for seconds, error in limits]
    for timer in timers:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        with lock:
            running = False
        for timer in timers:
            timer.cancel()
