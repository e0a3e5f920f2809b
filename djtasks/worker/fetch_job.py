"""A waiting fetch that a free thread of the pool runs, so a task starts in the thread its message reached."""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..brokers import Delivery
from .pools.base import PoolJob


class FetchInPool(PoolJob):
    """Fetch (waiting for messages), then hand the thread the first delivery it may run at once.

    A message that wakes an idle worker then starts its task without a hop
    from the supervisor's thread to a pool thread, each of which would wake
    in turn. The supervisor waits for :meth:`result` and hands the other
    deliveries to the pool as usual.
    """

    def __init__(self, fetch: Callable[[], list[Delivery]],
                 start_at_once: Callable[[list[Delivery]], Delivery | None], *,
                 wake: threading.Event | None = None) -> None:
        super().__init__(wake=wake)
        self._fetch = fetch
        self._start_at_once = start_at_once
        self.deliveries: list[Delivery] = []
        self.started: Delivery | None = None
        self.error: BaseException | None = None

    def run(self) -> Delivery | None:
        try:
            self.deliveries = self._fetch()
            self.started = self._start_at_once(self.deliveries)
        except BaseException as error:  # noqa: BLE001 - raised again in the supervisor's thread
            self.error = error
        return self.started

    def result(self) -> tuple[list[Delivery], Delivery | None]:
        """Wait for the fetch; return what it leased and the delivery its thread runs; raise what it raised."""
        self.finished.wait()
        if self.error is not None:
            raise self.error
        return self.deliveries, self.started
