"""Brokers: where messages wait. :func:`from_url` picks one by URL scheme."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..exceptions import ConfigurationError
from .base import Broker, Delivery, OutgoingMessage, QueueDepth

if TYPE_CHECKING:
    from ..conf import BackendOptions

__all__ = ["Broker", "Delivery", "OutgoingMessage", "QueueDepth", "from_url", "parse_url"]

SCHEMES = ("django", "memory", "redis", "rediss", "unix", "redis+sentinel", "redis+cluster")


def parse_url(url: str) -> tuple[str, str]:
    """Split a broker URL into (scheme, name); raise :class:`ConfigurationError` if malformed."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(f"BROKER_URL {url!r} is not a URL; use e.g. 'django://default' or "
                                 "'redis://127.0.0.1:6379/0'.")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"BROKER_URL {url!r} has unsupported scheme {parts.scheme!r}; supported: "
            + ", ".join(f"{scheme}://" for scheme in SCHEMES) + "."
        )
    name = parts.netloc or parts.path.lstrip("/") or "default"
    return parts.scheme, name


def from_url(url: str, options: BackendOptions | None = None) -> Broker:
    """The broker that ``url`` names.

    ``django://<db alias>``: the ORM broker; ``redis://``, ``rediss://``,
    ``unix://``, ``redis+sentinel://``, ``redis+cluster://``: the Redis broker;
    ``memory://<name>``: in-process, for unit tests.
    """
    scheme, name = parse_url(url)
    if scheme == "django":
        from .database import DatabaseBroker

        return DatabaseBroker(name)
    if scheme == "memory":
        from .memory import MemoryBroker

        return MemoryBroker(name)
    from .redis import RedisBroker

    if options is None:
        return RedisBroker(url)
    return RedisBroker(url, prefix=options.key_prefix, timeout_seconds=options.broker_timeout_seconds,
                       options=dict(options.broker_options))
