"""Retry policy and backoff: pure functions, no I/O."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """When and how soon a failed task runs again.

    ``max_retries`` counts runs after the first: ``max_retries=3`` allows four
    attempts in all.
    """

    max_retries: int = 0
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    #: Seconds before the first retry; the base of the exponential backoff.
    retry_delay_seconds: float = 1.0
    retry_backoff: bool = False
    #: Cap of the backoff, in seconds.
    retry_backoff_max_seconds: float = 600.0
    retry_jitter: bool = True

    def should_retry(self, error: BaseException, attempt: int) -> bool:
        """Whether an attempt (counted from 1) that raised ``error`` is retried."""
        return attempt <= self.max_retries and isinstance(error, self.retry_on)

    def delay_seconds(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after failed attempt ``attempt`` (counted from 1)."""
        delay = self.retry_delay_seconds
        if self.retry_backoff:
            # Exponential: base, 2*base, 4*base ... capped. The cap applies
            # before jitter, so jitter can only shorten a capped delay.
            delay = min(self.retry_backoff_max_seconds, delay * 2 ** (attempt - 1))
        if self.retry_jitter and delay > 0:
            # "Equal jitter": half fixed, half random, so retries of many
            # tasks that failed together spread out but are never immediate.
            delay = delay / 2 + (rng or random).uniform(0, delay / 2)
        return delay
