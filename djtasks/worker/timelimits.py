"""Soft and hard time limits inside the process that runs a task.

In a process's main thread (the solo pool, a prefork child) the limit is a
``SIGALRM`` timer whose handler raises in the task, even in the middle of
``time.sleep``. In other threads (the threads pool) it is an asynchronous
exception, delivered at the task's next Python instruction: a task blocked
in one long C call (a socket read without timeout) sees it only when that
call returns. A hard limit that must stop anything is only possible by
killing a process: the prefork pool does that.
"""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from ..exceptions import SoftTimeLimitExceeded, TimeLimitExceeded


@contextmanager
def time_limits(soft_seconds: float | None, hard_seconds: float | None) -> Iterator[None]:
    """Raise ``SoftTimeLimitExceeded`` after ``soft_seconds``, ``TimeLimitExceeded`` after ``hard_seconds``."""
    limits = [(s, e) for s, e in ((soft_seconds, SoftTimeLimitExceeded), (hard_seconds, TimeLimitExceeded)) if s]
    if not limits:
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
        raise error(f"the task ran longer than its {'soft ' if error is SoftTimeLimitExceeded else ''}"
                    f"time limit of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, pending[0][0])
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _async_exceptions(limits: list[tuple[float, type[BaseException]]]) -> Iterator[None]:
    thread_id = threading.get_ident()
    lock = threading.Lock()
    running = True

    def fire(error: type[BaseException]) -> None:
        with lock:
            if running:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), ctypes.py_object(error))

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
