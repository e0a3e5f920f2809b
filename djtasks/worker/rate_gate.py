"""The worker's rate-limit gate: deliveries over their task's ``rate_limit`` go back to the broker until due."""

from __future__ import annotations

import datetime as dt
from functools import cached_property
from typing import Any

from django.utils import timezone

from .. import registry
from ..brokers import Broker, Delivery
from ..ratelimit import RateLimiter, limiter_for, parse_rate
from .deliveries import task_of
from .leases import HeldDeliveries


class RateLimitGate:
    """Lets through what may run now; puts each delivery over its rate limit back, due when a token comes.

    The tokens are shared by every worker of the backend (see :mod:`djtasks.ratelimit`): a
    delivery put back is not lost, only delayed.
    """

    def __init__(self, *, backend: Any, broker: Broker, held: HeldDeliveries) -> None:
        self.backend = backend
        self.broker = broker
        self.held = held

    def admit(self, deliveries: list[Delivery]) -> list[Delivery]:
        """The deliveries that may run now; the others are released (and no longer held)."""
        if not registry.has_rate_limits():
            return deliveries
        allowed = []
        for delivery in deliveries:
            task = task_of(delivery)
            rate_text = getattr(task, "rate_limit", None)
            if rate_text is None:
                allowed.append(delivery)
                continue
            now = timezone.now()
            wait = self._limiter.acquire(task.module_path, parse_rate(rate_text), now)
            if wait <= 0:
                allowed.append(delivery)
                continue
            self.broker.release([delivery], available_at=now + dt.timedelta(seconds=wait))
            self.held.discard([delivery.id])
        return allowed

    def applies_to(self, delivery: Delivery) -> bool:
        """Whether the task of ``delivery`` has a rate limit: the delivery must pass :meth:`admit` to run."""
        return registry.has_rate_limits() and getattr(task_of(delivery), "rate_limit", None) is not None

    @cached_property
    def _limiter(self) -> RateLimiter:
        return limiter_for(self.backend)
