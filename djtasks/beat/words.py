"""Schedules in words, for the admin and logs: "every 5 minutes", "at 01:34 every day, Asia/Kolkata".

Common shapes get a sentence; anything else falls back to the cron fields
themselves, which are exact.
"""

from __future__ import annotations

import datetime as dt
import re

from croniter import croniter

#: Monday first, as people list weekdays; cron numbers Sunday 0 (and 7).
DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
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
    if day_part == "every day" and not time_part.startswith("at "):
        day_part = ""  # "every 5 minutes", not "every 5 minutes every day"
    text = f"{time_part} {day_part}".strip()
    # The zone matters once the schedule names hours or days.
    return text if hour == "*" and not day_part else f"{text}, {timezone}"


#: :func:`_values` of a field that covers its whole range.
ALL: list[int] = []


def _values(field_index: int, value: str) -> list[int] | None:
    """The numbers a simple field (numbers, ranges, steps, names) stands for.

    :data:`ALL` when it covers its whole range, ``None`` for special forms (``L5``, ``fri#2``).
    """
    if value == "*":
        return ALL
    fields = ["*"] * 5
    fields[field_index] = value
    try:
        expanded, special = croniter.expand(" ".join(fields))
    except (ValueError, KeyError):
        return None
    values = expanded[field_index]
    if values == ["*"]:
        return ALL
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
    if not hours or len(hours) > 6:
        return None
    return "at " + spell_list([f"{h:02d}:{int(minute):02d}" for h in hours])


def _describe_days(day_of_month: str, month_of_year: str, day_of_week: str) -> str | None:
    days, months, weekdays = _values(2, day_of_month), _values(3, month_of_year), _values(4, day_of_week)
    if days is None or months is None or weekdays is None:
        return "on the last day of the month" if day_of_month.upper() == "L" and months is ALL and \
            weekdays is ALL else None
    month_names = [MONTH_NAMES[m - 1] for m in months]
    if len(days) == 1 and len(months) == 1 and weekdays is ALL:
        return f"on {days[0]} {month_names[0]}"
    parts = []
    if days is ALL and weekdays is ALL:
        parts.append("every day")
    if days is not ALL:
        parts.append(f"on day{'s' if len(days) > 1 else ''} {spell_list([str(d) for d in days])} of the month")
    if weekdays is not ALL:
        names = _day_ranges(sorted({(d + 6) % 7 for d in weekdays}))  # Monday = 0
        parts.append(("or " if days is not ALL else "") + "on " + spell_list(names))
    if months is not ALL:
        parts.append("in " + spell_list(month_names))
    return " ".join(parts)


def _day_ranges(days: list[int]) -> list[str]:
    """Weekdays (Monday = 0) as names, with runs of three or more as "Monday to Friday"."""
    runs: list[list[int]] = []
    for day in days:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    names: list[str] = []
    for run in runs:
        if len(run) >= 3:
            names.append(f"{DAY_NAMES[run[0]]} to {DAY_NAMES[run[-1]]}")
        else:
            names.extend(DAY_NAMES[d] for d in run)
    return names
