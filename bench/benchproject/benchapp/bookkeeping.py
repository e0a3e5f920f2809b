"""The bookkeeping every benchmark task does: one Redis call.

Each task appends ``"<start> <enqueued_at>"`` (``time.time()`` seconds) to the
list ``<BENCH_PREFIX>:<tag>`` with a single ``RPUSH``; the list length counts
completions and the timestamps give throughput and latency. The Redis client
(and its pool) is created once per worker process, lazily, so a forking pool
gets a fresh one in each child.
"""

import os
import threading
import time

import redis
from django.conf import settings

_lock = threading.Lock()
_client: redis.Redis | None = None
_client_pid: int = 0
#: Connections of the bookkeeping client's pool, at most.
MAX_CONNECTIONS = 1000


def client() -> redis.Redis:
    """Return this process's bookkeeping Redis client, creating it on first use."""
    global _client, _client_pid
    pid = os.getpid()
    if _client is None or _client_pid != pid:
        with _lock:
            if _client is None or _client_pid != pid:
                # Up to one connection per task running at once: redis-py 8 caps a pool at 100 by
                # default and raises beyond, which -c 200 (gevent, threads) would reach.
                _client = redis.Redis.from_url(settings.BENCH_REDIS_URL, max_connections=MAX_CONNECTIONS)
                _client_pid = pid
    return _client


def key(tag: str) -> str:
    """Return the bookkeeping list key of ``tag`` for this run."""
    return f"{settings.BENCH_PREFIX}:{tag}"


def record(tag: str, enqueued_at: float) -> None:
    """Record that a task tagged ``tag`` started now (one Redis round trip)."""
    started = time.time()
    client().rpush(key(tag), f"{started:.6f} {enqueued_at:.6f}")


def record_span(tag: str, started: float, ended: float) -> None:
    """Record that a task tagged ``tag`` ran from ``started`` to ``ended`` (one Redis round trip)."""
    client().rpush(key(tag), f"{started:.6f} {ended:.6f}")
