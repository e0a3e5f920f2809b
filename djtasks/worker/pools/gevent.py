"""The gevent pool: ``concurrency`` greenlets in the worker process, for many I/O-bound tasks at once.

It needs gevent's monkey-patching *before Django is imported*, so that
sockets, ``select``, ``time.sleep``, threads and thread-locals are gevent's:
then psycopg 3 (which waits with ``poll`` when ``select`` is patched), redis-py
and Django's per-thread database connections are all cooperative, one per
greenlet. ``manage.py`` patches when it sees ``runworker --pool gevent`` (or
``DJTASKS_POOL=gevent``); the pool refuses to start in a process that was not
patched, where one blocking call would stop every task.

The supervisor, heartbeat and control "threads" are greenlets too. Time
limits are ``gevent.Timeout`` (see ``timelimits.py``); ``revoke --terminate``
raises ``TaskRevoked`` in the task's greenlet.
"""

from __future__ import annotations

from ...brokers import Delivery
from ...exceptions import ConfigurationError, TaskRevoked
from .base import Pool

_STOP = None
#: Modules that must be gevent's for the pool to be cooperative.
REQUIRED_PATCHES = ("socket", "select", "time", "threading")


def check_patched() -> None:
    """Raise ``ConfigurationError`` unless gevent is installed and has monkey-patched this process."""
    try:
        from gevent import monkey
    except ImportError:
        raise ConfigurationError('The gevent pool needs gevent: pip install "djtasks[gevent]".') from None
    missing = [name for name in REQUIRED_PATCHES if not monkey.is_module_patched(name)]
    if missing:
        raise ConfigurationError(
            f"The gevent pool needs gevent's monkey-patching, done before Django is imported "
            f"(not patched: {', '.join(missing)}). Run the worker through a manage.py that calls "
            f"'from gevent import monkey; monkey.patch_all()' first when DJTASKS_POOL=gevent or "
            f"'runworker --pool gevent' is given (djtasks' README shows the lines to add).")


class GeventPool(Pool):
    """Greenlets taking deliveries from a gevent queue; at most ``concurrency`` tasks run at once."""

    name = "gevent"

    def __init__(self, execute, on_done, concurrency: int) -> None:  # noqa: ANN001
        check_patched()
        import gevent.pool
        import gevent.queue

        super().__init__(execute, on_done, concurrency)
        self._inbox: gevent.queue.SimpleQueue = gevent.queue.SimpleQueue()
        self._greenlets = gevent.pool.Group()
        self._pending = 0  # submitted and not yet completed
        self._running: dict[str, object] = {}  # task id -> the greenlet running it
        # No locks: every greenlet runs in this one thread, and none switches inside
        # the few lines that change this state.

    def start(self) -> None:
        self._add_greenlets(self.concurrency)

    def _add_greenlets(self, count: int) -> None:
        # Long-lived greenlets, as the threads pool's threads: each keeps its
        # (greenlet-local) database connection between tasks.
        for _ in range(count):
            self._greenlets.spawn(self._serve)

    def resize(self, delta: int) -> int:
        delta = max(delta, 1 - self.concurrency)
        self.concurrency += delta
        self._add_greenlets(max(delta, 0))
        for _ in range(-delta):
            self._inbox.put(_STOP)  # a greenlet ends after its current task
        return self.concurrency

    def submit(self, delivery: Delivery) -> None:
        self._pending += 1
        self._inbox.put(delivery)

    def free_slots(self) -> int:
        return self.concurrency - self._pending

    def take_back(self) -> list[Delivery]:
        taken = []
        while not self._inbox.empty():
            delivery = self._inbox.get_nowait()  # no other greenlet runs between empty() and here
            if delivery is _STOP:
                self._inbox.put(_STOP)
                break
            taken.append(delivery)
        self._pending -= len(taken)
        return taken

    def terminate(self, task_id: str) -> bool:
        if task_id not in self._running:
            return False
        from gevent import get_hub

        # Decided in the hub: there the task's greenlet is suspended, so if it
        # still runs ``task_id`` the exception lands in that task, never in the next one.
        get_hub().loop.run_callback(self._raise_in, task_id)
        return True

    def _raise_in(self, task_id: str) -> None:
        greenlet = self._running.get(task_id)
        if greenlet is not None and not greenlet.dead:
            greenlet.throw(TaskRevoked("revoked while it ran"))

    def _serve(self) -> None:
        from gevent import getcurrent

        while (delivery := self._inbox.get()) is not _STOP:
            self._running[delivery.id] = getcurrent()
            try:
                completion = self.execute(delivery)
            finally:
                self._pending -= 1
                self._running.pop(delivery.id, None)
            self.on_done(completion)

    def stop(self, timeout: float | None) -> bool:
        for _ in range(self.concurrency):
            self._inbox.put(_STOP)
        return self._greenlets.join(timeout=timeout)
