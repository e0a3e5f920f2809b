"""The threads pool: ``concurrency`` threads in the supervisor process, for I/O-bound tasks."""

from __future__ import annotations

import queue
import threading
import time

from ...brokers import Delivery
from .base import Pool

_STOP = None


class ThreadPool(Pool):
    """Fixed threads taking deliveries from an in-process queue."""

    name = "threads"

    def __init__(self, execute, on_done, concurrency: int) -> None:  # noqa: ANN001
        super().__init__(execute, on_done, concurrency)
        self._inbox: queue.SimpleQueue[Delivery | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._pending = 0  # submitted and not yet completed
        self._lock = threading.Lock()

    def start(self) -> None:
        for number in range(self.concurrency):
            thread = threading.Thread(target=self._serve, name=f"djtasks-thread-{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, delivery: Delivery) -> None:
        with self._lock:
            self._pending += 1
        self._inbox.put(delivery)

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
        while (delivery := self._inbox.get()) is not _STOP:
            try:
                completion = self.execute(delivery)
            finally:
                with self._lock:
                    self._pending -= 1
            self.on_done(completion)

    def stop(self, timeout: float | None) -> bool:
        for _ in self._threads:
            self._inbox.put(_STOP)
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)
