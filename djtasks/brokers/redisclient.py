"""Redis clients by broker URL: one connection pool per process, never per task.

URLs: ``redis://``, ``rediss://`` (TLS), ``unix://``,
``redis+sentinel://host:port[,host:port]/service_name[/db]`` and
``redis+cluster://host:port[,host:port]``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from ..exceptions import ConfigurationError

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.cluster import ClusterNode, RedisCluster
    from redis.retry import Retry
    from redis.sentinel import Sentinel
except ImportError:  # pragma: no cover - the redis extra is optional
    redis = None

#: What a Redis client raises when Redis fails. A cluster client also raises
#: ``RedisClusterException`` (not a ``RedisError``), e.g. when no node answers.
REDIS_ERRORS: tuple[type[Exception], ...] = (
    (redis.RedisError, redis.exceptions.RedisClusterException) if redis is not None else ())

SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")
#: Retries of one command after a refused or dropped connection, with backoff, before it fails.
COMMAND_RETRIES = 3
#: Seconds of the first backoff (it doubles each retry) and of the longest one.
BACKOFF_BASE_SECONDS = 0.1
BACKOFF_CAP_SECONDS = 1.0

_clients: dict[tuple, Any] = {}
_lock = threading.Lock()


def _new_lock_after_fork() -> None:
    """In a forked child: the lock was copied, held if another thread of the parent held it at the fork."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


def get_client(url: str, *, timeout_seconds: float, options: Mapping[str, Any]) -> Any:
    """The shared client of ``url`` in this process (a fork gets its own)."""
    key = (os.getpid(), url, timeout_seconds, tuple(sorted(options.items())))
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = make_client(url, timeout_seconds=timeout_seconds, options=options)
    return client


class BoundedRetry(Retry if redis is not None else object):
    """Retry a command after a refused or dropped connection, with backoff, within one time budget.

    Never after a timeout: the server may have received the command, so
    sending it again could apply it twice (an enqueue would queue its task
    twice), and would wait the whole timeout again. redis-py nests retries (a
    command's around its reconnect's, each with this policy); the budget
    belongs to the outermost call in each thread, so however they nest an
    operation fails within ``budget_seconds`` (plus at most one socket timeout).
    """

    def __init__(self, budget_seconds: float, retries: int = COMMAND_RETRIES) -> None:
        super().__init__(NoBackoff(), retries, supported_errors=(redis.ConnectionError,))
        self.budget_seconds = budget_seconds
        self._local = threading.local()

    def __deepcopy__(self, memo: dict) -> BoundedRetry:
        # redis-py copies the policy into each connection; a thread-local cannot be copied.
        return type(self)(self.budget_seconds, self._retries)

    def call_with_retry(self, do: Callable[[], Any], fail: Callable[..., Any],
                        is_retryable: Callable[[Exception], bool] | None = None,
                        with_failure_count: bool = False) -> Any:
        outermost = getattr(self._local, "deadline", None) is None
        if outermost:
            self._local.deadline = time.monotonic() + self.budget_seconds
        try:
            failures = 0
            while True:
                try:
                    return do()
                except self._supported_errors as error:
                    if is_retryable is not None and not is_retryable(error):
                        raise
                    failures += 1
                    fail(error, failures) if with_failure_count else fail(error)
                    remaining = self._local.deadline - time.monotonic()
                    if failures > self._retries or remaining <= 0:
                        raise
                    time.sleep(min(remaining, BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (failures - 1)))
        finally:
            if outermost:
                self._local.deadline = None


def _hosts(netloc: str, url: str) -> list[tuple[str, int]]:
    hosts = []
    for part in netloc.rpartition("@")[2].split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ConfigurationError(f"BROKER_URL {url!r}: {part!r} is not host:port.")
        hosts.append((host.strip("[]"), int(port)))
    return hosts


def make_client(url: str, *, timeout_seconds: float, options: Mapping[str, Any]) -> Any:
    """A new client for ``url``; see the module docstring for the URL forms."""
    if redis is None:
        raise ConfigurationError("BROKER_URL uses Redis, but the redis package is missing: "
                                 "pip install 'djtasks[redis]'.")
    common: dict[str, Any] = {
        "socket_timeout": timeout_seconds,
        "socket_connect_timeout": timeout_seconds,
        "health_check_interval": 30,
        "retry": BoundedRetry(timeout_seconds),
        **options,
    }
    parts = urlsplit(url)
    if parts.scheme in ("redis", "rediss", "unix"):
        return redis.Redis.from_url(url, **common)
    if parts.scheme == "redis+sentinel":
        path = [unquote(p) for p in parts.path.split("/") if p]
        if not path:
            raise ConfigurationError(f"BROKER_URL {url!r} needs the service name: redis+sentinel://host:port/name.")
        db = int(path[1]) if len(path) > 1 else 0
        # Asking one sentinel is not retried: the next sentinel is asked instead.
        sentinel_kwargs = {"socket_timeout": timeout_seconds, "socket_connect_timeout": timeout_seconds,
                           "retry": Retry(NoBackoff(), 0)}
        sentinel = Sentinel(_hosts(parts.netloc, url), sentinel_kwargs=sentinel_kwargs,
                            password=parts.password, db=db, **common)
        return sentinel.master_for(path[0])
    if parts.scheme == "redis+cluster":
        common.pop("health_check_interval")
        nodes = [ClusterNode(host, port) for host, port in _hosts(parts.netloc, url)]
        return RedisCluster(startup_nodes=nodes, password=parts.password, **common)
    raise ConfigurationError(f"BROKER_URL {url!r}: not a Redis URL.")
