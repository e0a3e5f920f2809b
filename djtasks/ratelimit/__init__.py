"""Rate limits shared by every worker: a token bucket per key in Redis or in the database.

``@djtask(rate_limit="100/m")`` is enforced with these. Before running a
rate-limited task the worker calls :meth:`RateLimiter.acquire`; when that
returns a wait instead of 0.0, the task is not run but put back on its queue,
due that many seconds later. Over the limit tasks wait; none is dropped.

    rate = parse_rate("100/m")
    limiter = limiter_for(backend)
    wait_seconds = limiter.acquire(task.module_path, rate, timezone.now())
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..brokers.redis import RedisBroker
from .base import RateLimiter, take_token
from .database import DatabaseRateLimiter
from .rates import Rate, parse_rate
from .redis import RedisRateLimiter

if TYPE_CHECKING:
    from ..backend import DjTasksBackend

__all__ = ["DatabaseRateLimiter", "Rate", "RateLimiter", "RedisRateLimiter", "limiter_for", "parse_rate",
           "take_token"]


def limiter_for(backend: DjTasksBackend) -> RateLimiter:
    """The limiter all workers of ``backend`` share: in Redis with the Redis broker, else in its results database.

    Build it in the process that uses it (after a fork): it holds that process's Redis client.
    """
    broker = backend.broker
    if isinstance(broker, RedisBroker):
        return RedisRateLimiter(broker.client, prefix=broker.prefix)
    return DatabaseRateLimiter(backend.config.results_database)
