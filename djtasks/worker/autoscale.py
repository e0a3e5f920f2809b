"""Autoscale: grow a pool while tasks wait, shrink it after idle time."""

from __future__ import annotations

import logging
import time

from .pools import Pool

logger = logging.getLogger("djtasks.worker")

#: Seconds between two steps.
STEP_SECONDS = 1.0
#: Idle seconds before a slot is removed (``--autoscale-idle``).
IDLE_SECONDS = 10.0


class Autoscaler:
    """Keeps ``pool`` between ``fewest`` and ``most`` slots, one slot per step."""

    def __init__(self, pool: Pool, most: int, fewest: int, idle_seconds: float = IDLE_SECONDS) -> None:
        self.pool = pool
        self.most = most
        self.fewest = fewest
        self.idle_seconds = idle_seconds
        self._idle_since: float | None = None
        self._next_step = 0.0

    def step(self, *, saturated: bool, holding: bool) -> None:
        """Grow when every slot is busy and the last fetch took all it could; shrink after idle time.

        ``holding``: the worker still holds tasks (running or reserved).
        """
        now = time.monotonic()
        if now < self._next_step:
            return
        self._next_step = now + STEP_SECONDS
        free = self.pool.free_slots()
        idle = free >= self.pool.concurrency and not holding
        self._idle_since = (self._idle_since or now) if idle else None
        if free <= 0 and saturated and self.pool.concurrency < self.most:
            logger.info("autoscale: tasks are waiting; %d slots", self.pool.resize(1))
        elif idle and self.pool.concurrency > self.fewest and now - self._idle_since >= self.idle_seconds:
            self._idle_since = now
            logger.info("autoscale: idle; %d slots", self.pool.resize(-1))
