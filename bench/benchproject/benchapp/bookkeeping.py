"""The bookkeeping every benchmark task does.

Each task appends ``"<start> <enqueued_at>"`` (``time.time()`` seconds) to the
list ``<BENCH_PREFIX>:<tag>``; the list length counts completions and the
timestamps give throughput and latency. The drain, enqueue and latency tasks
(:func:`record`) do it with one ``RPUSH`` each, their only work. The
worker-engine tasks (:func:`record_span`) hand their span to a buffer that a
thread of the process pushes every :data:`FLUSH_EVERY_S`, so that the
measuring costs next to nothing beside the 50 ms the task waits: one Redis
connection per process instead of one per task running at once (200 under
``-P gevent -c 200``), for every contestant alike. The Redis client (and its
pool) and the buffer are made once per worker process, lazily, so a forking
pool gets fresh ones in each child.
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
                # No CLIENT SETINFO: two round trips less on each of the up to -c new connections.
                _client = redis.Redis.from_url(
                    settings.BENCH_REDIS_URL, max_connections=MAX_CONNECTIONS, driver_info=None
                )
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
    """Record that a task tagged ``tag`` ran from ``started`` to ``ended`` (pushed within :data:`FLUSH_EVERY_S`)."""
    _span_buffer().append((key(tag), f"{started:.6f} {ended:.6f}"))


#: How often the spans a process recorded are pushed to Redis, in seconds.
FLUSH_EVERY_S = 0.01
_spans: list[tuple[str, str]] = []
_spans_pid: int = 0


def _span_buffer() -> list[tuple[str, str]]:
    """This process's buffer of spans to push, starting its flushing thread on first use."""
    global _spans, _spans_pid
    pid = os.getpid()
    if _spans_pid != pid:
        with _lock:
            if _spans_pid != pid:
                _spans = []
                threading.Thread(target=_flush_forever, name="bench-bookkeeping", daemon=True).start()
                _spans_pid = pid
    return _spans


def _flush_forever() -> None:
    """Push the recorded spans every :data:`FLUSH_EVERY_S`, one ``RPUSH`` per key (a daemon thread)."""
    while True:
        time.sleep(FLUSH_EVERY_S)
        taken = len(_spans)
        if not taken:
            continue
        batch = _spans[:taken]
        del _spans[:taken]  # appends made meanwhile stay for the next round
        by_key: dict[str, list[str]] = {}
        for list_key, value in batch:
            by_key.setdefault(list_key, []).append(value)
        for list_key, values in by_key.items():
            client().rpush(list_key, *values)
