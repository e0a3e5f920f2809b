"""The solo pool: runs each delivery in the supervisor's own thread, one at a time."""

from __future__ import annotations

from ...brokers import Delivery
from .base import Pool


class SoloPool(Pool):
    """One task at a time, in the calling thread; the simplest and most debuggable pool."""

    name = "solo"
    runs_inline = True

    def __init__(self, execute, on_done, concurrency: int = 1) -> None:  # noqa: ANN001
        super().__init__(execute, on_done, 1)
        self._busy = False

    def submit(self, delivery: Delivery) -> None:
        self._busy = True
        try:
            completion = self.execute(delivery)
        finally:
            self._busy = False
        self.on_done(completion)

    def free_slots(self) -> int:
        return 0 if self._busy else 1

    def stop(self, timeout: float | None) -> bool:
        return True
