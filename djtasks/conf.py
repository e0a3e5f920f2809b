"""The one place that reads djtasks options from ``settings.TASKS``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .exceptions import ConfigurationError

DEFAULT_BROKER_URL = "django://default"


@dataclass(frozen=True, slots=True, kw_only=True)
class BackendOptions:
    """Typed view of ``TASKS[alias]["OPTIONS"]``; each field documents one key."""

    #: Where messages wait: ``django://<db alias>`` (ORM), ``redis://...``, or ``memory://<name>`` (unit tests).
    broker_url: str = DEFAULT_BROKER_URL
    #: Database alias that holds result rows.
    results_database: str = "default"
    #: Seconds a reserved task stays leased without a heartbeat before it is re-delivered.
    lease_seconds: float = 60.0
    #: Seconds an idle worker waits between polls when nothing wakes it earlier.
    poll_interval_seconds: float = 0.5
    #: Tasks a worker holds at most per slot of its pool, running ones included (as Celery's
    #: ``worker_prefetch_multiplier``): more keeps every slot busy and means fewer round
    #: trips under load; 1 means a long task never waits behind another in the same worker.
    prefetch_multiplier: int = 4
    #: Finished result rows older than this many days are removed by ``djtasks cleanup``
    #: without ``--older-than``, and by every worker once an hour (``None``: keep them).
    keep_results_days: float | None = None
    #: Seconds a worker waits for running tasks after SIGTERM before it stops anyway.
    shutdown_grace_seconds: float = 60.0
    #: Seconds to connect to the broker or get its answer before an operation fails.
    broker_timeout_seconds: float = 5.0
    #: Extra keyword arguments for the broker's client (e.g. TLS files, passwords).
    broker_options: Mapping[str, Any] = field(default_factory=dict)
    #: Prefix of every key the Redis broker writes.
    key_prefix: str = "djtasks"
    #: Periodic tasks declared in settings, synced to ``PeriodicTask`` rows by beat.
    beat_schedule: Mapping[str, Any] = field(default_factory=dict)
    #: Ticks missed while no beat ran: ``"once"`` enqueues the latest, ``"skip"`` none.
    beat_catch_up: str = "once"
    #: Seconds a beat leader's lease lasts unrenewed before another beat takes over.
    beat_lease_seconds: float = 10.0


def _string(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"{where} must be a non-empty string, not {value!r}.")
    return value


def _positive(where: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"{where} must be a positive number, not {value!r}.")
    return float(value)


def _positive_int(where: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{where} must be a positive whole number, not {value!r}.")
    return value


def _optional_positive(where: str, value: Any) -> float | None:
    return None if value is None else _positive(where, value)


def _catch_up(where: str, value: Any) -> str:
    if value not in ("once", "skip"):
        raise ConfigurationError(f"{where} must be 'once' or 'skip', not {value!r}.")
    return value


def _mapping(where: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(f"{where} must be a dict, not {value!r}.")
    return dict(value)


#: Setting key -> (field of BackendOptions, validator).
OPTIONS: dict[str, tuple[str, Callable[[str, Any], Any]]] = {
    "BROKER_URL": ("broker_url", _string),
    "RESULTS_DATABASE": ("results_database", _string),
    "LEASE_SECONDS": ("lease_seconds", _positive),
    "POLL_INTERVAL": ("poll_interval_seconds", _positive),
    "PREFETCH_MULTIPLIER": ("prefetch_multiplier", _positive_int),
    "KEEP_RESULTS_DAYS": ("keep_results_days", _optional_positive),
    "SHUTDOWN_GRACE_SECONDS": ("shutdown_grace_seconds", _positive),
    "BROKER_TIMEOUT": ("broker_timeout_seconds", _positive),
    "BROKER_OPTIONS": ("broker_options", _mapping),
    "KEY_PREFIX": ("key_prefix", _string),
    "BEAT_SCHEDULE": ("beat_schedule", _mapping),
    "BEAT_CATCH_UP": ("beat_catch_up", _catch_up),
    "BEAT_LEASE_SECONDS": ("beat_lease_seconds", _positive),
}


def parse_options(alias: str, options: Mapping[str, Any]) -> BackendOptions:
    """Validate ``OPTIONS`` of backend ``alias``; raise :class:`ConfigurationError`."""
    values: dict[str, Any] = {}
    for key, value in options.items():
        if key not in OPTIONS:
            known = ", ".join(sorted(OPTIONS))
            raise ConfigurationError(f"TASKS[{alias!r}]['OPTIONS'] has unknown option {key!r}; known options: {known}.")
        name, validate = OPTIONS[key]
        values[name] = validate(f"TASKS[{alias!r}]['OPTIONS'][{key!r}]", value)
    return BackendOptions(**values)
