"""Brokers: where messages wait. :func:`from_url` picks one by URL scheme."""

from __future__ import annotations

from urllib.parse import urlsplit

from ..exceptions import ConfigurationError
from .base import Broker, Delivery, OutgoingMessage, QueueDepth

__all__ = ["Broker", "Delivery", "OutgoingMessage", "QueueDepth", "from_url", "parse_url"]

SCHEMES = {"django": "djtasks.brokers.database.DatabaseBroker", "memory": "djtasks.brokers.memory.MemoryBroker"}


def parse_url(url: str) -> tuple[str, str]:
    """Split a broker URL into (scheme, name); raise :class:`ConfigurationError` if malformed."""
    if not isinstance(url, str) or "://" not in url:
        raise ConfigurationError(f"BROKER_URL {url!r} is not a URL; use e.g. 'django://default'.")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        raise ConfigurationError(
            f"BROKER_URL {url!r} has unsupported scheme {parts.scheme!r}; supported: "
            + ", ".join(f"{scheme}://" for scheme in sorted(SCHEMES)) + "."
        )
    name = parts.netloc or parts.path.lstrip("/") or "default"
    return parts.scheme, name


def from_url(url: str) -> Broker:
    """The broker that ``url`` names: ``django://<db alias>`` or ``memory://<name>``."""
    scheme, name = parse_url(url)
    if scheme == "django":
        from .database import DatabaseBroker

        return DatabaseBroker(name)
    from .memory import MemoryBroker

    return MemoryBroker(name)
