"""``OPTIONS["BEAT_SCHEDULE"]``: its format, checks, and sync to rows; the ``runbeat``/``--beat`` command options."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import override_settings

from djtasks.backend import DjTasksBackend
from djtasks.beat.checks import check_beat_schedule
from djtasks.beat.declared import parse_beat_schedule, sync_declared
from djtasks.beat.ticker import Beat
from djtasks.exceptions import ConfigurationError
from djtasks.messages import load_value
from djtasks.models import CrontabSchedule, IntervalSchedule, PeriodicTask

ADD = "tests.taskapp.tasks.add"
SCHEDULE = {
    "nightly": {"task": ADD, "schedule": "34 1 * * *", "timezone": "Asia/Kolkata", "args": [1, 2],
                "queue_name": "mail", "priority": 5, "description": "every night"},
    "often": {"task": ADD, "schedule": dt.timedelta(minutes=5), "kwargs": {"x": 1, "y": dt.date(2026, 1, 1)}},
}


def _backend(schedule) -> DjTasksBackend:
    return DjTasksBackend("default", {"OPTIONS": {"BROKER_URL": "django://default", "BEAT_SCHEDULE": schedule}})


@pytest.mark.parametrize(("schedule", "text"), [
    ({"x": {"schedule": "* * * * *"}}, "['x'] needs 'task'"),
    ({"x": {"task": ADD}}, "['x'] needs 'schedule'"),
    ({"x": {"task": ADD, "schedule": "61 * * * *"}}, "['x']['schedule']: '61' is not a valid minute field"),
    ({"x": {"task": ADD, "schedule": "* * *"}}, "needs 5 fields"),
    ({"x": {"task": ADD, "schedule": 300}}, "must be a cron string like '*/5 * * * *' or a timedelta"),
    ({"x": {"task": ADD, "schedule": dt.timedelta(milliseconds=1500)}}, "a positive whole number of seconds"),
    ({"x": {"task": ADD, "schedule": dt.timedelta(minutes=1), "timezone": "UTC"}}, "applies to cron strings"),
    ({"x": {"task": ADD, "schedule": "@daily", "timezone": "Mars/Base"}}, "['x']['timezone']"),
    ({"x": {"task": ADD, "schedule": "@daily", "args": "1, 2"}}, "['x']['args'] must be a list"),
    ({"x": {"task": ADD, "schedule": "@daily", "kwargs": {"f": object()}}}, "['x']['kwargs'] cannot be sent"),
    ({"x": {"task": ADD, "schedule": "@daily", "priority": 101}}, "from -100 to 100"),
    ({"x": {"task": ADD, "schedule": "@daily", "expires": dt.datetime(2030, 1, 1)}}, "an aware datetime"),
    ({"x": {"task": ADD, "schedule": "@daily", "every": 5}}, "unknown key(s) 'every'"),
    ({"": {"task": ADD, "schedule": "@daily"}}, "keys are periodic task names"),
])
def test_a_bad_entry_is_reported_naming_the_entry_and_key(schedule, text):
    with pytest.raises(ConfigurationError) as error:
        parse_beat_schedule(schedule)
    assert text in str(error.value)
    assert str(error.value).startswith("OPTIONS['BEAT_SCHEDULE']")


def test_manage_py_check_reports_a_bad_schedule_and_an_unknown_task():
    tasks = {"default": {"BACKEND": "djtasks.backend.DjTasksBackend",
                         "OPTIONS": {"BEAT_SCHEDULE": {"x": {"task": ADD, "schedule": "*/0 * * * *"}}}}}
    with override_settings(TASKS=tasks):
        [error] = check_beat_schedule()
    assert error.id == "djtasks.E010"
    assert "'*/0' is not a valid minute field" in error.msg
    tasks["default"]["OPTIONS"]["BEAT_SCHEDULE"] = {"x": {"task": "tests.taskapp.tasks.nope", "schedule": "@daily"}}
    with override_settings(TASKS=tasks):
        [error] = check_beat_schedule()
    assert error.id == "djtasks.E011"
    tasks["default"]["OPTIONS"]["BEAT_SCHEDULE"] = SCHEDULE
    with override_settings(TASKS=tasks):
        assert check_beat_schedule() == []


@pytest.mark.django_db
def test_settings_are_synced_to_rows_updated_only_when_changed_and_removed_entries_disabled():
    result = sync_declared(parse_beat_schedule(SCHEDULE), database="default")
    assert (sorted(result.created), result.updated, result.disabled) == (["nightly", "often"], [], [])
    nightly = PeriodicTask.objects.select_related("crontab").get(name="nightly")
    assert nightly.crontab.fields == {"minute": "34", "hour": "1", "day_of_month": "*", "month_of_year": "*",
                                      "day_of_week": "*", "timezone": "Asia/Kolkata"}
    assert (nightly.args, nightly.queue_name, nightly.priority, nightly.from_settings) == ([1, 2], "mail", 5, True)
    often = PeriodicTask.objects.select_related("interval").get(name="often")
    assert (often.interval.every, often.interval.period) == (5, "minutes")
    assert load_value(often.kwargs) == {"x": 1, "y": dt.date(2026, 1, 1)}

    # A restart with the same settings changes nothing (the schedules keep counting from where they were).
    changed_at = {task.name: task.date_changed for task in PeriodicTask.objects.all()}
    assert sync_declared(parse_beat_schedule(SCHEDULE), database="default") == type(result)([], [], [])
    assert {task.name: task.date_changed for task in PeriodicTask.objects.all()} == changed_at

    edited = {"nightly": {**SCHEDULE["nightly"], "schedule": "0 2 * * *"}}
    PeriodicTask.objects.create(name="made-in-the-admin", task=ADD, interval=IntervalSchedule.objects.first())
    result = sync_declared(parse_beat_schedule(edited), database="default")
    assert (result.created, result.updated, result.disabled) == ([], ["nightly"], ["often"])
    assert PeriodicTask.objects.get(name="nightly").crontab.hour == "2"
    assert PeriodicTask.objects.get(name="often").enabled is False  # kept, with its history
    assert PeriodicTask.objects.get(name="made-in-the-admin").enabled is True  # not the settings' to touch
    assert CrontabSchedule.objects.count() == 2


@pytest.mark.django_db
def test_a_beat_syncs_the_settings_when_it_takes_the_lead():
    beat = Beat(backend=_backend(SCHEDULE), beat_id="syncing")
    beat.run_once()
    assert beat.leading
    assert sorted(PeriodicTask.objects.values_list("name", flat=True)) == ["nightly", "often"]


def test_a_bad_schedule_stops_runbeat_with_the_reason():
    tasks = {"default": {"BACKEND": "djtasks.backend.DjTasksBackend",
                         "OPTIONS": {"BEAT_SCHEDULE": {"x": {"task": ADD}}}}}
    with override_settings(TASKS=tasks), pytest.raises(CommandError, match="needs 'schedule'"):
        call_command("runbeat")


def test_runworker_beat_cannot_be_combined_with_burst():
    with pytest.raises(CommandError, match="--beat runs until stopped"):
        call_command("runworker", "--beat", "--burst")


def test_runbeat_rejects_a_lease_that_is_not_positive():
    with pytest.raises(CommandError, match="--lease-seconds must be positive"):
        call_command("runbeat", "--lease-seconds", "0")
