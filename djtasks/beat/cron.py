"""Cron expressions in a time zone: checking them, and their next and previous moments.

croniter walks wall-clock times (naive datetimes). This module turns each wall
time into the instants it names in the schedule's zone, so daylight saving
changes neither skip nor double a run:

* A wall time the clock skips (spring forward) is read as zoneinfo reads it
  with ``fold=0``, as if the clock had not jumped: a daily 02:30 job runs at
  03:30 that day, 24 hours after the day before. Once.
* A wall time the clock shows twice (fall back) fires once, at its first
  occurrence -- unless the hour field covers every hour (``*``): such a
  schedule is about elapsed time ("every 5 minutes"), so it fires in both
  passes and keeps its pace through the repeated hour.

Day of month and day of week combine as in cron: when both are restricted, a
day matching either one fires.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, CroniterError, croniter

#: The five fields, in the order of a cron expression.
FIELDS = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week")

#: What each field accepts, for error messages.
FIELD_HELP = {
    "minute": "0-59",
    "hour": "0-23",
    "day_of_month": "1-31, or L for the last day",
    "month_of_year": "1-12 or jan-dec",
    "day_of_week": "0-6 (0 and 7 are Sunday) or sun-sat; L5 is the last Friday, fri#2 the second",
}

#: Shorthands accepted by :func:`split_expression`.
ALIASES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}

#: Wider than any daylight saving shift (at most 2 hours in the tz database): near a
#: change of offset, wall times this far apart may map to instants in either order.
MARGIN = dt.timedelta(hours=3)
#: Wall times examined in one careful search; bounds the work on a pathological expression.
MAX_STEPS = 100_000
UTC = dt.UTC


class CronError(ValueError):
    """A cron expression or field is not valid; ``field`` names the field when one is to blame."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def check_field(name: str, value: str) -> None:
    """Raise :class:`CronError` naming ``name`` if ``value`` is not a valid cron field."""
    where = name.replace("_", " ")
    if not isinstance(value, str) or not value.strip():
        raise CronError(f"The {where} field must not be empty (use * for any).", name)
    if len(value.split()) != 1:
        raise CronError(f"The {where} field {value!r} must not contain spaces.", name)
    expression = " ".join(value if other == name else "*" for other in FIELDS)
    try:
        croniter.expand(expression)
    except (CroniterError, ValueError, KeyError, IndexError) as exc:
        raise CronError(f"{value!r} is not a valid {where} field (expected {FIELD_HELP[name]}).", name) from exc


def split_expression(expression: str) -> dict[str, str]:
    """The five fields of ``"*/5 * * * *"`` (or of ``@daily`` and the like), each checked."""
    text = ALIASES.get(expression.strip().lower(), expression) if isinstance(expression, str) else expression
    parts = text.split() if isinstance(text, str) else []
    if len(parts) != len(FIELDS):
        raise CronError(f"{expression!r} is not a cron expression: it needs 5 fields "
                        "(minute hour day-of-month month day-of-week), or @hourly, @daily, @weekly, @monthly, @yearly.")
    fields = dict(zip(FIELDS, parts, strict=True))
    for name, value in fields.items():
        check_field(name, value)
    return fields


def join_fields(fields: Mapping[str, str]) -> str:
    """The expression of five fields given by name."""
    return " ".join(fields[name] for name in FIELDS)


def zone_named(name: str) -> ZoneInfo:
    """The zone ``name`` (e.g. ``"Europe/Paris"``); raise :class:`CronError` if unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise CronError(f"{name!r} is not a time zone of the tz database (e.g. 'UTC', 'Europe/Paris').",
                        "timezone") from exc


@dataclass(frozen=True, slots=True)
class Cron:
    """A checked cron expression in a zone: its moments are aware datetimes in UTC."""

    expression: str
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    #: The hour field covers all 24 hours: fire in both passes of a repeated hour.
    every_hour: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        fields = split_expression(self.expression)
        hours = croniter.expand(f"* {fields['hour']} * * *")[0][1]
        object.__setattr__(self, "every_hour", hours == ["*"] or len(set(hours)) == 24)

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first moment strictly after ``moment``; ``None`` if the expression never matches."""
        try:
            if not self._near_change(moment):
                wall = next(self._walls(self._wall(moment), forward=True))
                first = self._instants(wall)[0]
                if not self._near_change(first):
                    return first
            return self._search(moment, forward=True)
        except CroniterBadDateError:
            return None

    def latest_at_or_before(self, moment: dt.datetime) -> dt.datetime | None:
        """The last moment at or before ``moment``; ``None`` if there is none."""
        try:
            if not self._near_change(moment):
                # croniter's get_prev is strict: start just after the wall time itself.
                wall = next(self._walls(self._wall(moment) + dt.timedelta(microseconds=1), forward=False))
                last = self._instants(wall)[-1]
                if not self._near_change(last):
                    return last
            return self._search(moment, forward=False)
        except CroniterBadDateError:
            return None

    # -- helpers -----------------------------------------------------------

    def _wall(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(self.zone).replace(tzinfo=None, fold=0)

    def _walls(self, start: dt.datetime, *, forward: bool) -> Iterator[dt.datetime]:
        walker = croniter(self.expression, start)
        step = walker.get_next if forward else walker.get_prev
        for _ in range(MAX_STEPS):
            yield step(dt.datetime)

    def _near_change(self, moment: dt.datetime) -> bool:
        """Whether the zone's UTC offset changes within :data:`MARGIN` of ``moment``."""
        before = (moment - MARGIN).astimezone(self.zone).utcoffset()
        return before != (moment + MARGIN).astimezone(self.zone).utcoffset()

    def _instants(self, wall: dt.datetime) -> list[dt.datetime]:
        """The instants wall time ``wall`` names: one, or two in a repeated hour when every hour fires."""
        first = wall.replace(tzinfo=self.zone).astimezone(UTC)
        second = wall.replace(tzinfo=self.zone, fold=1).astimezone(UTC)
        if first == second:
            return [first]
        skipped = first.astimezone(self.zone).replace(tzinfo=None) != wall
        if skipped or not self.every_hour:
            return [first]
        return [first, second]

    def _search(self, moment: dt.datetime, *, forward: bool) -> dt.datetime | None:
        """Near an offset change: examine every wall time within :data:`MARGIN` around the answer."""
        start = self._wall(moment) + (-MARGIN if forward else MARGIN)
        best: dt.datetime | None = None
        best_wall = start
        for wall in self._walls(start, forward=forward):
            if best is not None and abs(wall - best_wall) > MARGIN:
                break
            for instant in self._instants(wall):
                eligible = instant > moment if forward else instant <= moment
                better = best is None or (instant < best if forward else instant > best)
                if eligible and better:
                    best, best_wall = instant, wall
        return best
