"""Redis clients by broker URL: one connection pool per process, never per task.

URLs: ``redis://``, ``rediss://`` (TLS), ``unix://``,
``redis+sentinel://host:port[,host:port]/service_name[/db]`` and
``redis+cluster://host:port[,host:port]``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from ..exceptions import ConfigurationError

try:
    import redis
    from redis.backoff import ExponentialBackoff
    from redis.cluster import ClusterNode, RedisCluster
    from redis.retry import Retry
    from redis.sentinel import Sentinel
except ImportError:  # pragma: no cover - the redis extra is optional
    redis = None

SCHEMES = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster")
#: Retries of one command after a dropped connection, with backoff, before it fails.
COMMAND_RETRIES = 3

_clients: dict[tuple, Any] = {}
_lock = threading.Lock()


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
        "retry": Retry(ExponentialBackoff(cap=1.0, base=0.05), COMMAND_RETRIES),
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
        sentinel = Sentinel(_hosts(parts.netloc, url), sentinel_kwargs={"socket_timeout": timeout_seconds},
                            password=parts.password, db=db, **common)
        return sentinel.master_for(path[0])
    if parts.scheme == "redis+cluster":
        common.pop("health_check_interval")
        nodes = [ClusterNode(host, port) for host, port in _hosts(parts.netloc, url)]
        return RedisCluster(startup_nodes=nodes, password=parts.password, **common)
    raise ConfigurationError(f"BROKER_URL {url!r}: not a Redis URL.")
