"""The threads pool: ``concurrency`` threads in the supervisor process, for I/O-bound tasks."""

from __future__ import annotations

import queue
import threading
import time

from ...brokers import Delivery
from ...exceptions import TaskRevoked
from ..timelimits import raise_in_thread
from .base import Pool, PoolJob

_STOP = None


class ThreadPool(Pool):
    """Fixed threads taking deliveries from an in-process queue."""

    name = "threads"

    def __init__(self, execute, on_done, concurrency: int) -> None:  # noqa: ANN001
        super().__init__(execute, on_done, concurrency)
        self._inbox: queue.SimpleQueue[Delivery | PoolJob | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._pending = 0  # submitted and not yet completed
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}  # task id -> thread ident

    def start(self) -> None:
        self._add_threads(self.concurrency)

    def _add_threads(self, count: int) -> None:
        for _ in range(count):
            thread = threading.Thread(target=self._serve, name=f"djtasks-thread-{len(self._threads)}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def resize(self, delta: int) -> int:
        with self._lock:
            delta = max(delta, 1 - self.concurrency)
            self.concurrency += delta
        if delta > 0:
            self._add_threads(delta)
        for _ in range(-delta):
            self._inbox.put(_STOP)  # a thread ends after its current task
        return self.concurrency

    def terminate(self, task_id: str) -> bool:
        with self._lock:
            ident = self._running.get(task_id)
            if ident is None:
                return False
            raise_in_thread(ident, TaskRevoked)
        return True

    def submit(self, delivery: Delivery) -> None:
        with self._lock:
            self._pending += 1
        self._inbox.put(delivery)

    def run_job(self, job: PoolJob) -> bool:
        with self._lock:
            if self._pending >= self.concurrency:
                return False  # no thread is free to take it now
            self._pending += 1
        self._inbox.put(job)
        return True

    def free_slots(self) -> int:
        with self._lock:
            return self.concurrency - self._pending

    def take_back(self) -> list[Delivery]:
        taken = []
        while True:
            try:
                delivery = self._inbox.get_nowait()
            except queue.Empty:
                break
            if delivery is _STOP:
                self._inbox.put(_STOP)
                break
            taken.append(delivery)
        with self._lock:
            self._pending -= len(taken)
        return taken

    def _serve(self) -> None:
        while (item := self._inbox.get()) is not _STOP:
            if isinstance(item, PoolJob):
                delivery = item.run()
                if delivery is None:  # nothing to run: the job's slot is free again
                    with self._lock:
                        self._pending -= 1
                    item.finish()
                    continue
                item.finish()  # the slot passes to the delivery
            else:
                delivery = item
            with self._lock:
                self._running[delivery.id] = threading.get_ident()
            try:
                completion = self.execute(delivery)
            finally:
                with self._lock:
                    self._pending -= 1
                    self._running.pop(delivery.id, None)
            self.on_done(completion)

    def stop(self, timeout: float | None) -> bool:
        for _ in range(self.concurrency):
            self._inbox.put(_STOP)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)
