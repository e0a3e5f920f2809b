"""Schedules as values, and which tick is due: pure functions of explicit times, no I/O.

A schedule is a set of moments (aware datetimes). It answers two questions:
the first moment after a given one, and the last moment at or before one. With
those, :func:`due_tick` decides what a beat enqueues now, whatever happened
before: nothing, the one due tick, or -- after downtime -- one tick for all the
missed ones (``catch_up="once"``) or none (``"skip"``). Ticks are always moments
of the schedule, never "now", so every beat computes the same moment for the
same tick; that moment is the tick's de-duplication key.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Protocol

from .cron import Cron

__all__ = ["EPOCH", "CatchUp", "Cron", "Interval", "Once", "Schedule", "due_tick"]

#: Where interval grids start when a task has no ``start_time``: every 5 minutes is
#: at :00, :05, :10 ... UTC, the same moments in every beat process.
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class Schedule(Protocol):
    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        """The first moment strictly after ``moment``, or ``None``."""

    def latest_at_or_before(self, moment: dt.datetime) -> dt.datetime | None:
        """The last moment at or before ``moment``, or ``None``."""


@dataclass(frozen=True, slots=True)
class Interval:
    """``anchor + k * every`` for k >= 0: elapsed time, unaffected by daylight saving."""

    every: dt.timedelta
    anchor: dt.datetime = EPOCH

    def __post_init__(self) -> None:
        if self.every <= dt.timedelta(0):
            raise ValueError(f"an interval must be positive, not {self.every}")

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        if moment < self.anchor:
            return self.anchor
        return self.anchor + ((moment - self.anchor) // self.every + 1) * self.every

    def latest_at_or_before(self, moment: dt.datetime) -> dt.datetime | None:
        if moment < self.anchor:
            return None
        return self.anchor + ((moment - self.anchor) // self.every) * self.every


@dataclass(frozen=True, slots=True)
class Once:
    """A single moment (a clocked schedule)."""

    at: dt.datetime

    def next_after(self, moment: dt.datetime) -> dt.datetime | None:
        return self.at if self.at > moment else None

    def latest_at_or_before(self, moment: dt.datetime) -> dt.datetime | None:
        return self.at if self.at <= moment else None


class CatchUp(enum.StrEnum):
    """What a beat does with ticks that came due while no beat ran."""

    #: Enqueue one tick (the latest missed) for all of them.
    ONCE = "once"
    #: Enqueue none; wait for the next tick. A tick only a little late still runs.
    SKIP = "skip"


def due_tick(schedule: Schedule, *, after: dt.datetime, now: dt.datetime, catch_up: CatchUp = CatchUp.ONCE,
             grace: dt.timedelta = dt.timedelta(minutes=1)) -> dt.datetime | None:
    """The tick to enqueue at ``now``, or ``None``.

    ``after`` is exclusive: the moment of the last tick enqueued (or from which
    the schedule counts). Several ticks due at once mean downtime: the latest
    stands for all of them, or -- with ``CatchUp.SKIP`` -- none does unless it is
    less than ``grace`` late.
    """
    first = schedule.next_after(after)
    if first is None or first > now:
        return None
    latest = schedule.latest_at_or_before(now) or first
    if catch_up == CatchUp.SKIP and now - latest > grace:
        return None
    return latest
