"""Token buckets in Redis, for workers that share a Redis broker.

One hash per bucket, ``<prefix>:ratelimit:<key>``, read and written by one
Lua script (``lua/acquire_v1.lua``), hence atomic whichever worker runs it.
The caller's clock is passed in (``now``, in ms); the server's ``TIME`` is
not used, so tests control time and Redis keeps no clock of its own here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from pathlib import Path
from typing import Any

from ..brokers.redisclient import redis
from .base import RateLimiter, ceil_to_microsecond
from .rates import Rate

SCRIPT_TEXT = Path(__file__).with_name("lua").joinpath("acquire_v1.lua").read_text()
SCRIPT_SHA = hashlib.sha1(SCRIPT_TEXT.encode()).hexdigest()
#: Seconds an idle bucket outlives the time it takes to fill up, before Redis drops it. A
#: dropped bucket is full, which it would be by then anyway; the margin absorbs clocks that
#: disagree between the workers (who say ``now``) and Redis (who expires keys).
EXPIRY_MARGIN_SECONDS = 60.0

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def epoch_ms(moment: dt.datetime) -> str:
    """``moment`` in ms since the epoch, exact to the microsecond (``"1700000000123.456"``).

    A naive datetime (``USE_TZ = False``) is read as UTC: only the differences
    between the moments the workers pass matter, and they all do the same.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    microseconds = (moment - _EPOCH) // dt.timedelta(microseconds=1)
    return f"{microseconds // 1000}.{microseconds % 1000:03d}"


class RedisRateLimiter(RateLimiter):
    """Buckets under ``<prefix>:ratelimit:`` on a redis-py ``client`` (standalone, Sentinel or Cluster)."""

    def __init__(self, client: Any, prefix: str = "djtasks") -> None:
        self.client = client
        self.prefix = prefix

    def bucket_key(self, key: str) -> str:
        return f"{self.prefix}:ratelimit:{key}"

    def acquire(self, key: str, rate: Rate, now: dt.datetime) -> float:
        """See :meth:`RateLimiter.acquire`."""
        expiry_ms = math.ceil((rate.fill_seconds + EXPIRY_MARGIN_SECONDS) * 1000)
        args = [epoch_ms(now), repr(rate.tokens_per_second), rate.burst, expiry_ms]
        wait_ms = float(self._run([self.bucket_key(key)], args))
        return 0.0 if wait_ms == 0.0 else ceil_to_microsecond(wait_ms / 1000)

    def _run(self, keys: list[str], args: list[Any]) -> Any:
        """Run the script by its SHA; load it first if Redis forgot it (a restart)."""
        try:
            return self.client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
        except redis.exceptions.NoScriptError:
            self.client.script_load(SCRIPT_TEXT)
            return self.client.evalsha(SCRIPT_SHA, len(keys), *keys, *args)
