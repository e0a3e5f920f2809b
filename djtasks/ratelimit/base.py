"""The limiter interface and the token bucket arithmetic every implementation shares."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from abc import ABC, abstractmethod
from typing import NamedTuple

from .rates import Rate

#: Tokens: a refill this close to a whole token counts as one (float rounding, never a real shortfall).
EPSILON_TOKENS = 1e-9
#: Characters of the longest key a store takes (``RateLimitBucket.key``); longer keys are hashed.
MAX_KEY_LENGTH = 255


class Take(NamedTuple):
    """What one attempt at a bucket leaves: its tokens, and the seconds to wait (0.0: a token was taken)."""

    tokens: float
    wait_seconds: float


def take_token(tokens: float, elapsed_seconds: float, rate: Rate) -> Take:
    """Refill a bucket that held ``tokens`` ``elapsed_seconds`` ago, then take one token if it holds one.

    Without a whole token nothing is taken and ``wait_seconds`` says when
    there will be one (if nobody else takes it first). Time that runs
    backwards (a host whose clock is behind) refills nothing.
    """
    level = min(float(rate.burst), tokens + max(0.0, elapsed_seconds) * rate.tokens_per_second)
    if level >= 1.0 - EPSILON_TOKENS:
        return Take(tokens=max(0.0, level - 1.0), wait_seconds=0.0)
    return Take(tokens=level, wait_seconds=ceil_to_microsecond((1.0 - level) / rate.tokens_per_second))


def ceil_to_microsecond(seconds: float) -> float:
    """Round a wait up to a whole microsecond, the resolution of a ``datetime``.

    A due time ``now + timedelta(seconds=wait)`` rounded down could fall just
    short of the token and be turned away again for a microsecond's wait.
    The inner ``round`` drops float noise so that 0.6 stays 0.6.
    """
    return math.ceil(round(seconds * 1e6, 3)) / 1e6


def storage_key(key: str, max_length: int = MAX_KEY_LENGTH) -> str:
    """``key`` itself if it fits, else its start and a SHA-256 of the whole (still unique, still readable)."""
    if len(key) <= max_length:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[:max_length - len(digest) - 1]}:{digest}"


class RateLimiter(ABC):
    """A token bucket per key, shared by every worker that uses the same store."""

    @abstractmethod
    def acquire(self, key: str, rate: Rate, now: dt.datetime) -> float:
        """Take one token of ``key``'s bucket and return 0.0, or take nothing and return the seconds to wait.

        A bucket seen for the first time is full (``rate.burst`` tokens).
        ``now`` is the caller's clock (``django.utils.timezone.now()``),
        passed in so that tests control time; a bucket never moves back in
        time, so hosts whose clocks disagree cannot mint extra tokens. The
        wait is a hint, not a reservation: another worker may take the token
        first, and the caller then asks again.
        """
