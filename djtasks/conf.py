"""The one place that reads djtasks options from ``settings.TASKS``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from .exceptions import ConfigurationError

DEFAULT_BROKER_URL = "django://default"


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendOptions:
    """Typed view of ``TASKS[alias]["OPTIONS"]``; each field documents one key."""

    #: Where messages wait: ``django://<db alias>`` (ORM) or ``memory://<name>`` (unit tests).
    broker_url: str = DEFAULT_BROKER_URL
    #: Database alias that holds result rows.
    results_database: str = "default"
    #: Seconds a reserved task stays leased without a heartbeat before it is re-delivered.
    lease_seconds: float = 60.0
    #: Seconds an idle worker waits between polls when nothing wakes it earlier.
    poll_interval_seconds: float = 0.5
    #: Tasks a worker reserves per free slot of its pool; more means fewer round trips
    #: under load, 1 means a long task never waits behind another in the same worker.
    prefetch_multiplier: int = 4
    #: Finished result rows older than this many days are removed by ``djtasks cleanup``
    #: without ``--older-than`` (``None``: keep them).
    keep_results_days: float | None = None
    #: Seconds a worker waits for running tasks after SIGTERM before it stops anyway.
    shutdown_grace_seconds: float = 60.0


_SETTING_NAMES = {
    "BROKER_URL": "broker_url",
    "RESULTS_DATABASE": "results_database",
    "LEASE_SECONDS": "lease_seconds",
    "POLL_INTERVAL": "poll_interval_seconds",
    "PREFETCH_MULTIPLIER": "prefetch_multiplier",
    "KEEP_RESULTS_DAYS": "keep_results_days",
    "SHUTDOWN_GRACE_SECONDS": "shutdown_grace_seconds",
}

_TYPES = {f.name: f.type for f in fields(BackendOptions)}


def parse_options(alias: str, options: Mapping[str, Any]) -> BackendOptions:
    """Validate ``OPTIONS`` of backend ``alias``; raise :class:`ConfigurationError`."""
    values: dict[str, Any] = {}
    for key, value in options.items():
        name = _SETTING_NAMES.get(key)
        if name is None:
            known = ", ".join(sorted(_SETTING_NAMES))
            raise ConfigurationError(f"TASKS[{alias!r}]['OPTIONS'] has unknown option {key!r}; known options: {known}.")
        values[name] = _coerce(alias, key, name, value)
    return BackendOptions(**values)


def _coerce(alias: str, key: str, name: str, value: Any) -> Any:
    where = f"TASKS[{alias!r}]['OPTIONS'][{key!r}]"
    if name in {"broker_url", "results_database"}:
        if not isinstance(value, str) or not value:
            raise ConfigurationError(f"{where} must be a non-empty string, not {value!r}.")
        return value
    if name == "keep_results_days" and value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"{where} must be a positive number, not {value!r}.")
    return int(value) if name == "prefetch_multiplier" else float(value)
