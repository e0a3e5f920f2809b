"""Periodic tasks declared in settings (``OPTIONS["BEAT_SCHEDULE"]``), and their sync to rows.

The format, one entry per periodic task name::

    "BEAT_SCHEDULE": {
        "nightly-mail": {
            "task": "mailer.tasks.send_mail_func",   # required: a registered task
            "schedule": "34 1 * * *",                # required: a cron string (or @daily...) or a timedelta
            "timezone": "Asia/Kolkata",              # cron strings only; default UTC
            "args": [], "kwargs": {},                # arguments, as enqueue() takes them
            "queue_name": "mail", "priority": 10,    # default: the task's own
            "one_off": False, "start_time": None, "expires": None,  # aware datetimes
            "description": "", "enabled": True,
        },
    }

A leading beat syncs them to :class:`PeriodicTask` rows when it takes the lead:
rows are created or updated (only when something differs, so a restart does
not reset their schedules), and rows once declared but no longer in settings
are disabled, not deleted -- their history stays.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction

from ..exceptions import ConfigurationError, SerializationError
from ..messages import dump_value
from .cron import CronError, split_expression, zone_named
from .models import CrontabSchedule, IntervalSchedule, PeriodicTask

logger = logging.getLogger("djtasks.beat")

WHERE = "OPTIONS['BEAT_SCHEDULE']"
REQUIRED = ("task", "schedule")
OPTIONAL = ("timezone", "args", "kwargs", "queue_name", "priority", "one_off", "start_time", "expires",
            "description", "enabled")


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclaredTask:
    """One checked entry of ``BEAT_SCHEDULE``."""

    name: str
    task: str
    #: The five cron fields, or ``None`` for an interval.
    cron: Mapping[str, str] | None = None
    every: dt.timedelta | None = None
    timezone: str = "UTC"
    #: Arguments as stored in the row (dumped: datetimes and the like tagged).
    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)
    queue_name: str = ""
    priority: int | None = None
    one_off: bool = False
    start_time: dt.datetime | None = None
    expires: dt.datetime | None = None
    description: str = ""
    enabled: bool = True


def parse_beat_schedule(schedule: Mapping[str, Any]) -> list[DeclaredTask]:
    """Check ``BEAT_SCHEDULE``; raise :class:`ConfigurationError` naming the entry and key at fault."""
    return [_parse_entry(name, entry) for name, entry in schedule.items()]


def _parse_entry(name: Any, entry: Any) -> DeclaredTask:
    if not isinstance(name, str) or not name or len(name) > 200:
        raise ConfigurationError(f"{WHERE} keys are periodic task names: non-empty strings of at most 200 "
                                 f"characters, not {name!r}.")
    where = f"{WHERE}[{name!r}]"
    if not isinstance(entry, Mapping):
        raise ConfigurationError(f"{where} must be a dict with 'task' and 'schedule', not {entry!r}.")
    unknown = set(entry) - set(REQUIRED) - set(OPTIONAL)
    if unknown:
        raise ConfigurationError(f"{where} has unknown key(s) {', '.join(map(repr, sorted(unknown)))}; "
                                 f"known: {', '.join(REQUIRED + OPTIONAL)}.")
    for key in REQUIRED:
        if key not in entry:
            raise ConfigurationError(f"{where} needs {key!r}.")
    values: dict[str, Any] = {"name": name, "task": _text(where, "task", entry["task"], empty=False)}
    values.update(_schedule(where, entry["schedule"], entry.get("timezone")))
    for key in ("args", "kwargs"):
        if key in entry:
            values[key] = _arguments(where, key, entry[key])
    for key in ("queue_name", "description"):
        if key in entry:
            values[key] = _text(where, key, entry[key], empty=True)
    for key in ("one_off", "enabled"):
        if key in entry:
            if not isinstance(entry[key], bool):
                raise ConfigurationError(f"{where}[{key!r}] must be True or False, not {entry[key]!r}.")
            values[key] = entry[key]
    for key in ("start_time", "expires"):
        if entry.get(key) is not None:
            if not isinstance(entry[key], dt.datetime) or entry[key].utcoffset() is None:
                raise ConfigurationError(f"{where}[{key!r}] must be an aware datetime, not {entry[key]!r}.")
            values[key] = entry[key]
    if entry.get("priority") is not None:
        priority = entry["priority"]
        if isinstance(priority, bool) or not isinstance(priority, int) or not -100 <= priority <= 100:
            raise ConfigurationError(f"{where}['priority'] must be a whole number from -100 to 100, not {priority!r}.")
        values["priority"] = priority
    return DeclaredTask(**values)


def _text(where: str, key: str, value: Any, *, empty: bool) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise ConfigurationError(f"{where}[{key!r}] must be a{'' if empty else ' non-empty'} string, not {value!r}.")
    return value


def _schedule(where: str, schedule: Any, zone: Any) -> dict[str, Any]:
    if isinstance(schedule, dt.timedelta):
        if zone is not None:
            raise ConfigurationError(f"{where}['timezone'] applies to cron strings; an interval is elapsed time.")
        seconds = schedule.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise ConfigurationError(f"{where}['schedule'] must be a positive whole number of seconds, "
                                     f"not {schedule!r}.")
        return {"every": schedule}
    if not isinstance(schedule, str):
        raise ConfigurationError(f"{where}['schedule'] must be a cron string like '*/5 * * * *' or a timedelta, "
                                 f"not {schedule!r}.")
    try:
        fields = split_expression(schedule)
        if zone is not None:
            zone_named(zone)
    except CronError as exc:
        key = "timezone" if exc.field == "timezone" else "schedule"
        raise ConfigurationError(f"{where}[{key!r}]: {exc}") from None
    return {"cron": fields, "timezone": zone or "UTC"}


def _arguments(where: str, key: str, value: Any) -> Any:
    expected = (list, tuple) if key == "args" else Mapping
    if not isinstance(value, expected):
        raise ConfigurationError(f"{where}[{key!r}] must be a {'list' if key == 'args' else 'dict'}, not {value!r}.")
    try:
        dumped = dump_value(list(value) if key == "args" else dict(value))
    except SerializationError as exc:
        raise ConfigurationError(f"{where}[{key!r}] cannot be sent to a task: {exc}.") from None
    return dumped


# -- sync ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SyncResult:
    created: list[str]
    updated: list[str]
    disabled: list[str]


def sync_declared(declared: Sequence[DeclaredTask], *, database: str) -> SyncResult:
    """Create or update the rows of ``declared``; disable rows declared before but gone now."""
    result = SyncResult([], [], [])
    with transaction.atomic(using=database):
        for entry in declared:
            try:
                with transaction.atomic(using=database):
                    outcome = _sync_one(entry, database)
            except IntegrityError:
                outcome = None  # another beat, leading at the same moment, wrote it first
            if outcome is not None:
                getattr(result, outcome).append(entry.name)
        names = [entry.name for entry in declared]
        gone = PeriodicTask.objects.using(database).filter(from_settings=True, enabled=True).exclude(name__in=names)
        for row in gone:
            row.enabled = False
            row.save(using=database, update_fields=["enabled", "date_changed"])
            result.disabled.append(row.name)
    return result


def _sync_one(entry: DeclaredTask, database: str) -> str | None:
    """Bring the row of ``entry`` in line; return "created", "updated" or ``None`` (unchanged)."""
    desired = {
        "task": entry.task, "crontab_id": None, "interval_id": None, "clocked_id": None, "args": entry.args,
        "kwargs": entry.kwargs, "queue_name": entry.queue_name, "priority": entry.priority, "one_off": entry.one_off,
        "start_time": entry.start_time, "expires": entry.expires, "description": entry.description,
        "enabled": entry.enabled, "from_settings": True,
    }
    if entry.cron is not None:
        desired["crontab_id"] = _crontab_id(entry, database)
    else:
        desired["interval_id"] = _interval_id(entry, database)
    row = PeriodicTask.objects.using(database).filter(name=entry.name).first()
    if row is None:
        PeriodicTask(name=entry.name, **desired).save(using=database)
        return "created"
    changed = [key for key, value in desired.items() if getattr(row, key) != value]
    if not changed:
        return None
    if not row.from_settings:
        logger.warning("periodic task %r, made in the database, is now declared in BEAT_SCHEDULE: settings win",
                       entry.name)
    for key in changed:
        setattr(row, key, desired[key])
    row.save(using=database)
    return "updated"


def _crontab_id(entry: DeclaredTask, database: str) -> int:
    fields = {**entry.cron, "timezone": entry.timezone}
    existing = CrontabSchedule.objects.using(database).filter(**fields).order_by("pk").first()
    if existing is not None:
        return existing.pk
    crontab = CrontabSchedule(**fields)
    crontab.save(using=database)
    return crontab.pk


def _interval_id(entry: DeclaredTask, database: str) -> int:
    interval = IntervalSchedule.from_timedelta(entry.every)
    existing = IntervalSchedule.objects.using(database).filter(every=interval.every, period=interval.period)
    found = existing.order_by("pk").first()
    if found is not None:
        return found.pk
    interval.save(using=database)
    return interval.pk
