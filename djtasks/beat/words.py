"""Schedules in words, for the admin and logs: "every 5 minutes", "at 01:34 every day, Asia/Kolkata".

Common shapes get a sentence; anything else falls back to the cron fields
themselves, which are exact.
"""

from __future__ import annotations

import datetime as dt
import re

from croniter import croniter

DAY_NAMES = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
               "November", "December")
#: Units of an interval, largest first: (name, seconds).
UNITS = (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))

_NUMBER = re.compile(r"^\d+$")
_EVERY_N = re.compile(r"^(?:\*|0)/(\d+)$")


def spell_list(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def plural(count: int, unit: str) -> str:
    return f"every {unit}" if count == 1 else f"every {count} {unit}s"


def describe_interval(every: dt.timedelta) -> str:
    """``every 5 minutes``, ``every hour``, ``every 90 seconds``."""
    seconds = int(every.total_seconds())
    for unit, size in UNITS:
        if seconds % size == 0:
            return plural(seconds // size, unit)
    return f"every {every.total_seconds():g} seconds"


def describe_cron(minute: str, hour: str, day_of_month: str, month_of_year: str, day_of_week: str,
                  timezone: str) -> str:
    """A sentence for the common cron shapes; the fields themselves otherwise."""
    time_part = _describe_time(minute, hour)
    day_part = _describe_days(day_of_month, month_of_year, day_of_week)
    if time_part is None or day_part is None:
        return f"cron {minute} {hour} {day_of_month} {month_of_year} {day_of_week}, {timezone}"
    text = f"{time_part} {day_part}".strip()
    # The zone only matters once the schedule names hours or days.
    return text if hour == "*" and not day_part else f"{text}, {timezone}"


def _values(field_index: int, value: str) -> list[int] | None:
    """The numbers a simple field (numbers, ranges, steps, names) stands for; ``None`` for ``*`` or special forms."""
    if value == "*":
        return None
    fields = ["*"] * 5
    fields[field_index] = value
    try:
        expanded, special = croniter.expand(" ".join(fields))
    except (ValueError, KeyError):
        return None
    values = expanded[field_index]
    if special or any(not isinstance(v, int) for v in values):
        return None
    return sorted(set(values))


def _describe_time(minute: str, hour: str) -> str | None:
    minute_step, hour_step = _EVERY_N.match(minute), _EVERY_N.match(hour)
    if minute == "*" and hour == "*":
        return "every minute"
    if minute_step and hour == "*":
        return plural(int(minute_step.group(1)), "minute")
    if not _NUMBER.match(minute):
        return None
    if hour == "*":
        return "every hour, on the hour" if int(minute) == 0 else f"every hour at minute {int(minute)}"
    if hour_step:
        return f"{plural(int(hour_step.group(1)), 'hour')} at minute {int(minute)}"
    hours = _values(1, hour)
    if hours is None or len(hours) > 6:
        return None
    return "at " + spell_list([f"{h:02d}:{int(minute):02d}" for h in hours])


def _describe_days(day_of_month: str, month_of_year: str, day_of_week: str) -> str | None:
    parts = []
    if day_of_month == "*" and day_of_week == "*":
        parts.append("every day")
    if day_of_month != "*":
        if day_of_month.upper() == "L":
            parts.append("on the last day of the month")
        else:
            days = _values(2, day_of_month)
            if days is None:
                return None
            parts.append(f"on day{'s' if len(days) > 1 else ''} {spell_list([str(d) for d in days])} of the month")
    if day_of_week != "*":
        weekdays = _values(4, day_of_week)
        if weekdays is None:
            return None
        names = _day_ranges(sorted({d % 7 for d in weekdays}))
        parts.append(("or " if day_of_month != "*" else "") + "on " + spell_list(names))
    if month_of_year != "*":
        months = _values(3, month_of_year)
        if months is None:
            return None
        parts.append("in " + spell_list([MONTH_NAMES[m - 1] for m in months]))
    return " ".join(parts)


def _day_ranges(days: list[int]) -> list[str]:
    """Weekday numbers as names, with runs of three or more as "Monday to Friday"."""
    names: list[str] = []
    start = previous = None
    for day in [*days, None]:
        if day is not None and previous is not None and day == previous + 1:
            previous = day
            continue
        if start is not None:
            if previous - start >= 2:
                names.append(f"{DAY_NAMES[start]} to {DAY_NAMES[previous]}")
            else:
                names.extend(DAY_NAMES[d] for d in range(start, previous + 1))
        start = previous = day
    return names
