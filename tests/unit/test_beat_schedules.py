"""Schedule maths with explicit times: cron fields, time zones and DST both ways, leap days, intervals, catch-up."""

from __future__ import annotations

import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest

from djtasks.beat.cron import Cron, CronError, split_expression
from djtasks.beat.schedules import EPOCH, CatchUp, Interval, Once, due_tick
from djtasks.beat.words import describe_cron, describe_interval

UTC = dt.UTC
NEW_YORK = ZoneInfo("America/New_York")
PARIS = ZoneInfo("Europe/Paris")
KOLKATA = ZoneInfo("Asia/Kolkata")


def at(*parts: int, tz: dt.tzinfo = UTC, fold: int = 0) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=tz, fold=fold)


def ticks(schedule, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Every moment of ``schedule`` in (start, end], by repeated next_after."""
    found, moment = [], start
    while (moment := schedule.next_after(moment)) is not None and moment <= end:
        found.append(moment)
    return found


def local(moments: list[dt.datetime], zone: ZoneInfo) -> list[str]:
    return [m.astimezone(zone).strftime("%m-%d %H:%M %Z") for m in moments]


# -- cron fields -----------------------------------------------------------------

def test_next_and_latest_in_utc():
    every_five = Cron("*/5 * * * *")
    assert every_five.next_after(at(2026, 1, 1, 12, 3)) == at(2026, 1, 1, 12, 5)
    assert every_five.next_after(at(2026, 1, 1, 12, 5)) == at(2026, 1, 1, 12, 10)  # strictly after
    assert every_five.latest_at_or_before(at(2026, 1, 1, 12, 5)) == at(2026, 1, 1, 12, 5)  # at or before
    assert every_five.latest_at_or_before(at(2026, 1, 1, 12, 9, 59)) == at(2026, 1, 1, 12, 5)


def test_ranges_steps_and_names():
    # 09:00, 13:00 and 17:00 on weekdays: 2026-01-02 is a Friday.
    office = Cron("0 9-17/4 * * mon-fri")
    assert local(ticks(office, at(2026, 1, 2), at(2026, 1, 6)), ZoneInfo("UTC")) == [
        "01-02 09:00 UTC", "01-02 13:00 UTC", "01-02 17:00 UTC",
        "01-05 09:00 UTC", "01-05 13:00 UTC", "01-05 17:00 UTC"]
    assert ticks(Cron("15,45 */12 * * *"), at(2026, 1, 1), at(2026, 1, 2)) == [
        at(2026, 1, 1, 0, 15), at(2026, 1, 1, 0, 45), at(2026, 1, 1, 12, 15), at(2026, 1, 1, 12, 45)]


def test_last_day_of_month_with_l_follows_leap_years():
    last = Cron("0 0 L * *")
    assert ticks(last, at(2024, 1, 15), at(2024, 5, 1)) == [
        at(2024, 1, 31), at(2024, 2, 29), at(2024, 3, 31), at(2024, 4, 30)]
    assert last.next_after(at(2025, 2, 1)) == at(2025, 2, 28)
    assert Cron("0 0 15-L 2 *").latest_at_or_before(at(2024, 3, 5)) == at(2024, 2, 29)


def test_last_and_nth_weekday_of_the_month():
    assert Cron("0 0 * * L5").next_after(at(2024, 3, 1)) == at(2024, 3, 29)  # last Friday
    assert Cron("0 0 * * fri#2").next_after(at(2024, 3, 1)) == at(2024, 3, 8)  # second Friday


def test_a_leap_day_job_runs_every_four_years_in_its_zone():
    leap = Cron("30 12 29 2 *", KOLKATA)
    assert leap.next_after(at(2024, 3, 1)) == at(2028, 2, 29, 12, 30, tz=KOLKATA)
    assert leap.latest_at_or_before(at(2027, 12, 31)) == at(2024, 2, 29, 12, 30, tz=KOLKATA)
    assert len(ticks(leap, at(2024, 1, 1), at(2033, 1, 1))) == 3  # 2024, 2028, 2032


def test_day_of_month_or_day_of_week_as_in_cron():
    either = Cron("0 0 1 * mon")  # the 1st, and every Monday
    assert ticks(either, at(2024, 3, 1), at(2024, 3, 12)) == [at(2024, 3, 4), at(2024, 3, 11)]
    assert either.next_after(at(2024, 3, 25)) == at(2024, 4, 1)


def test_an_impossible_date_never_comes():
    assert Cron("0 0 30 2 *").next_after(at(2026, 1, 1)) is None


@pytest.mark.parametrize(("expression", "field", "text"), [
    ("61 * * * *", "minute", "'61' is not a valid minute field (expected 0-59)"),
    ("* 24 * * *", "hour", "'24' is not a valid hour field"),
    ("* * 0 * *", "day_of_month", "'0' is not a valid day of month field"),
    ("* * * 13 *", "month_of_year", "'13' is not a valid month of year field"),
    ("* * * * funday", "day_of_week", "'funday' is not a valid day of week field"),
    ("*/0 * * * *", "minute", "'*/0' is not a valid minute field"),
])
def test_a_bad_field_is_named(expression, field, text):
    with pytest.raises(CronError) as error:
        split_expression(expression)
    assert error.value.field == field
    assert text in str(error.value)


def test_an_expression_needs_five_fields_or_an_alias():
    assert split_expression("@daily") == {"minute": "0", "hour": "0", "day_of_month": "*", "month_of_year": "*",
                                          "day_of_week": "*"}
    with pytest.raises(CronError, match="needs 5 fields"):
        split_expression("* * * *")


# -- daylight saving ----------------------------------------------------------------

def test_spring_forward_new_york_a_daily_0230_job_runs_once_that_day():
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT; 02:30 does not exist. It runs at 03:30, 24 h after the day before.
    runs = ticks(Cron("30 2 * * *", NEW_YORK), at(2026, 3, 7, 0, 0, tz=NEW_YORK), at(2026, 3, 10, 0, 0, tz=NEW_YORK))
    assert local(runs, NEW_YORK) == ["03-07 02:30 EST", "03-08 03:30 EDT", "03-09 02:30 EDT"]
    assert runs[1] - runs[0] == dt.timedelta(hours=24)


def test_spring_forward_paris_a_daily_0230_job_runs_once_that_day():
    runs = ticks(Cron("30 2 * * *", PARIS), at(2026, 3, 28, tz=PARIS), at(2026, 3, 31, tz=PARIS))
    assert local(runs, PARIS) == ["03-28 02:30 CET", "03-29 03:30 CEST", "03-30 02:30 CEST"]


def test_fall_back_new_york_a_daily_0130_job_runs_once_that_day():
    # 2026-11-01: 02:00 EDT goes back to 01:00 EST; 01:30 happens twice. The job runs at the first.
    runs = ticks(Cron("30 1 * * *", NEW_YORK), at(2026, 10, 31, tz=NEW_YORK), at(2026, 11, 3, tz=NEW_YORK))
    assert local(runs, NEW_YORK) == ["10-31 01:30 EDT", "11-01 01:30 EDT", "11-02 01:30 EST"]


def test_fall_back_paris_a_daily_0230_job_runs_once_that_day():
    runs = ticks(Cron("30 2 * * *", PARIS), at(2026, 10, 24, tz=PARIS), at(2026, 10, 27, tz=PARIS))
    assert local(runs, PARIS) == ["10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET"]


def test_fall_back_an_every_30_minutes_job_keeps_its_pace_through_the_repeated_hour():
    runs = ticks(Cron("*/30 * * * *", NEW_YORK), at(2026, 11, 1, 0, 0, tz=NEW_YORK),
                 at(2026, 11, 1, 3, 0, tz=NEW_YORK))
    assert local(runs, NEW_YORK) == ["11-01 00:30 EDT", "11-01 01:00 EDT", "11-01 01:30 EDT", "11-01 01:00 EST",
                                     "11-01 01:30 EST", "11-01 02:00 EST", "11-01 02:30 EST", "11-01 03:00 EST"]
    assert {b - a for a, b in itertools.pairwise(runs)} == {dt.timedelta(minutes=30)}


def test_spring_forward_an_every_30_minutes_job_neither_doubles_nor_stalls():
    runs = ticks(Cron("*/30 * * * *", NEW_YORK), at(2026, 3, 8, 0, 0, tz=NEW_YORK), at(2026, 3, 8, 4, 0, tz=NEW_YORK))
    assert local(runs, NEW_YORK) == ["03-08 00:30 EST", "03-08 01:00 EST", "03-08 01:30 EST", "03-08 03:00 EDT",
                                     "03-08 03:30 EDT", "03-08 04:00 EDT"]
    assert {b - a for a, b in itertools.pairwise(runs)} == {dt.timedelta(minutes=30)}


@pytest.mark.parametrize(("expression", "zone", "start"), [
    ("*/20 * * * *", NEW_YORK, at(2026, 3, 7, 22)),
    ("*/20 * * * *", NEW_YORK, at(2026, 10, 31, 22)),
    ("30 1,2 * * *", NEW_YORK, at(2026, 10, 31, 22)),
    ("15,45 2,3 * * *", NEW_YORK, at(2026, 3, 7, 22)),
    ("0 * * * *", PARIS, at(2026, 10, 24, 20)),
    ("*/7 2 * * *", PARIS, at(2026, 3, 28, 20)),
])
def test_latest_at_or_before_agrees_with_next_after_around_changes(expression, zone, start):
    cron = Cron(expression, zone)
    moments = ticks(cron, start - dt.timedelta(days=1), start + dt.timedelta(days=3))
    assert moments == sorted(set(moments))
    probe = start
    while probe < start + dt.timedelta(days=2):
        expected_next = min(m for m in moments if m > probe)
        expected_latest = max(m for m in moments if m <= probe)
        assert cron.next_after(probe) == expected_next, probe
        assert cron.latest_at_or_before(probe) == expected_latest, probe
        probe += dt.timedelta(minutes=7, seconds=30)


# -- intervals and clocked ------------------------------------------------------

def test_an_interval_is_a_grid_from_its_anchor():
    every_90s = Interval(dt.timedelta(seconds=90), anchor=at(2026, 1, 1, 10, 0))
    assert every_90s.next_after(at(2026, 1, 1, 9, 0)) == at(2026, 1, 1, 10, 0)
    assert every_90s.next_after(at(2026, 1, 1, 10, 0)) == at(2026, 1, 1, 10, 1, 30)
    assert every_90s.latest_at_or_before(at(2026, 1, 1, 10, 4)) == at(2026, 1, 1, 10, 3)
    assert every_90s.latest_at_or_before(at(2026, 1, 1, 9, 59)) is None


def test_an_interval_without_start_counts_from_the_epoch_and_ignores_dst():
    every_5m = Interval(dt.timedelta(minutes=5))
    assert every_5m.anchor == EPOCH
    assert every_5m.next_after(at(2026, 1, 1, 12, 3, 7)) == at(2026, 1, 1, 12, 5)
    daily = Interval(dt.timedelta(days=1))
    runs = ticks(daily, at(2026, 3, 7, 12), at(2026, 3, 10, 12))
    assert {b - a for a, b in itertools.pairwise(runs)} == {dt.timedelta(hours=24)}


def test_clocked_is_one_moment():
    once = Once(at(2026, 5, 1, 9))
    assert once.next_after(at(2026, 5, 1, 8)) == at(2026, 5, 1, 9)
    assert once.next_after(at(2026, 5, 1, 9)) is None
    assert once.latest_at_or_before(at(2026, 5, 1, 8)) is None


# -- due ticks and catch-up ---------------------------------------------------------

def test_nothing_is_due_before_the_next_moment():
    assert due_tick(Cron("0 1 * * *"), after=at(2026, 1, 1, 1), now=at(2026, 1, 2, 0, 59)) is None


def test_a_tick_is_due_at_its_moment_and_is_that_moment():
    assert due_tick(Cron("0 1 * * *"), after=at(2026, 1, 1, 1), now=at(2026, 1, 2, 1, 0, 0)) == at(2026, 1, 2, 1)
    assert due_tick(Cron("0 1 * * *"), after=at(2026, 1, 1, 1), now=at(2026, 1, 2, 1, 0, 0, 300)) == at(2026, 1, 2, 1)


@pytest.mark.parametrize("catch_up", list(CatchUp))
def test_after_downtime_catch_up_once_enqueues_one_tick_and_skip_none(catch_up):
    # Down from 2026-01-01 01:00 to 2026-01-04 12:00: three daily ticks were missed.
    due = due_tick(Cron("0 1 * * *"), after=at(2026, 1, 1, 1), now=at(2026, 1, 4, 12), catch_up=catch_up)
    assert due == (at(2026, 1, 4, 1) if catch_up == CatchUp.ONCE else None)


def test_skip_still_runs_a_tick_only_a_little_late():
    cron = Cron("0 1 * * *")
    late = due_tick(cron, after=at(2026, 1, 1, 1), now=at(2026, 1, 4, 1, 0, 40), catch_up=CatchUp.SKIP,
                    grace=dt.timedelta(minutes=1))
    assert late == at(2026, 1, 4, 1)


def test_catch_up_of_an_interval_is_its_latest_grid_point():
    every_minute = Interval(dt.timedelta(minutes=1))
    assert due_tick(every_minute, after=at(2026, 1, 1, 10), now=at(2026, 1, 1, 10, 30, 30)) == at(2026, 1, 1, 10, 30)


# -- in words ------------------------------------------------------------------------

@pytest.mark.parametrize(("fields", "words"), [
    (("*/5", "*", "*", "*", "*"), "every 5 minutes"),
    (("34", "1", "*", "*", "*"), "at 01:34 every day, Asia/Kolkata"),
    (("0", "9-17/4", "*", "*", "mon-fri"), "at 09:00, 13:00 and 17:00 on Monday to Friday, Asia/Kolkata"),
    (("0", "*", "*", "*", "*"), "every hour, on the hour"),
    (("0", "0", "L", "*", "*"), "at 00:00 on the last day of the month, Asia/Kolkata"),
    (("30", "12", "29", "2", "*"), "at 12:30 on 29 February, Asia/Kolkata"),
    (("0", "0", "*", "*", "sat,sun"), "at 00:00 on Saturday and Sunday, Asia/Kolkata"),
    (("*/7", "1-3", "*", "*", "*"), "cron */7 1-3 * * *, Asia/Kolkata"),
])
def test_a_crontab_in_words(fields, words):
    assert describe_cron(*fields, "Asia/Kolkata") == words


@pytest.mark.parametrize(("seconds", "words"), [
    (1, "every second"), (90, "every 90 seconds"), (300, "every 5 minutes"), (3600, "every hour"),
    (172800, "every 2 days"),
])
def test_an_interval_in_words(seconds, words):
    assert describe_interval(dt.timedelta(seconds=seconds)) == words
