"""The solo pool: runs each delivery in the supervisor's own thread, one at a time."""

from __future__ import annotations

import threading

from ...brokers import Delivery
from ...exceptions import TaskRevoked
from ..timelimits import raise_in_thread
from .base import Pool


class SoloPool(Pool):
    """One task at a time, in the calling thread; the simplest and most debuggable pool."""

    name = "solo"
    runs_inline = True

    def __init__(self, execute, on_done, concurrency: int = 1) -> None:  # noqa: ANN001
        super().__init__(execute, on_done, 1)
        self._busy: str | None = None  # the id of the task running now
        self._thread_id = threading.get_ident()

    def submit(self, delivery: Delivery) -> None:
        self._busy, self._thread_id = delivery.id, threading.get_ident()
        try:
            completion = self.execute(delivery)
        finally:
            self._busy = None
        self.on_done(completion)

    def terminate(self, task_id: str) -> bool:
        if self._busy != task_id:
            return False
        raise_in_thread(self._thread_id, TaskRevoked)
        return True

    def free_slots(self) -> int:
        return 0 if self._busy is not None else 1

    def stop(self, timeout: float | None) -> bool:
        return True
