"""Beat in-process on SQLite: due ticks enqueued once, linked to their results; edits, one-off, clocked, expiry; lease.

Times are passed explicitly: ``beat.tick(now)`` decides with the ``now`` it is given.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.core.exceptions import ValidationError
from django.db.models import F
from django.tasks import TaskResultStatus, task_backends
from django.utils import timezone

from djtasks.beat.lease import LeaderLease
from djtasks.beat.schedules import CatchUp
from djtasks.beat.ticker import Beat, BeatConfig, fire, run_now
from djtasks.models import (
    BeatLease,
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTaskTick,
    TaskRecord,
)
from djtasks.testing import drain

pytestmark = pytest.mark.django_db

ADD = "tests.taskapp.tasks.add"
UTC = dt.UTC


def minute_after(moment: dt.datetime, minutes: int = 1) -> dt.datetime:
    """The start of the minute ``minutes`` after the one of ``moment``."""
    return moment.replace(second=0, microsecond=0) + dt.timedelta(minutes=minutes)


def every(seconds: int) -> IntervalSchedule:
    interval, _ = IntervalSchedule.objects.get_or_create(every=seconds, period="seconds")
    return interval


def periodic(name: str = "adder", **fields) -> PeriodicTask:
    fields.setdefault("task", ADD)
    fields.setdefault("args", [1, 2])
    if not {"crontab", "interval", "clocked"} & set(fields):
        fields["interval"] = every(60)
    return PeriodicTask.objects.create(name=name, **fields)


def make_beat(**config) -> Beat:
    return Beat(backend=task_backends["default"], config=BeatConfig(**config), beat_id="beat-under-test")


def results_of(task_path: str = ADD) -> list[TaskRecord]:
    return list(TaskRecord.objects.filter(task_path=task_path).order_by("enqueued_at"))


# -- ticks -----------------------------------------------------------------------------

def test_a_due_tick_is_enqueued_once_and_its_result_links_back_to_the_schedule():
    task = periodic()
    due = minute_after(task.date_changed)
    beat = make_beat()
    assert beat.tick(due - dt.timedelta(milliseconds=1)) == due  # not yet; the next moment is reported
    assert results_of() == []

    beat.tick(due + dt.timedelta(milliseconds=5))
    beat.tick(due + dt.timedelta(milliseconds=900))  # the same tick again: nothing new
    [row] = results_of()
    assert json.loads(row.message)["headers"] == {"periodic_task": "adder"}
    [result] = drain()
    assert (result.status, result.return_value) == (TaskResultStatus.SUCCESSFUL, 3)
    tick = PeriodicTaskTick.objects.get()
    assert (tick.periodic_task_id, tick.scheduled_at, str(tick.task_id)) == (task.pk, due, result.id)
    task.refresh_from_db()
    assert (task.last_run_at, task.total_run_count) == (due, 1)


def test_a_tick_already_enqueued_by_another_beat_is_not_enqueued_again():
    task = periodic()
    due = minute_after(task.date_changed)
    assert fire(task, due, backend=task_backends["default"]) is not None
    stale = PeriodicTask.objects.get(pk=task.pk)
    stale.last_run_at = None  # what a second leader, that read the row before, still believes
    assert fire(stale, due, backend=task_backends["default"]) is None
    assert len(results_of()) == 1
    assert PeriodicTask.objects.get(pk=task.pk).total_run_count == 1


def test_an_old_last_run_at_written_back_by_an_edit_does_not_enqueue_a_tick_twice():
    task = periodic()
    due = minute_after(task.date_changed)
    beat = make_beat()
    beat.tick(due)
    PeriodicTask.objects.filter(pk=task.pk).update(last_run_at=None)
    beat.tick(due + dt.timedelta(seconds=1))
    assert len(results_of()) == 1
    assert PeriodicTask.objects.get(pk=task.pk).last_run_at == due  # moved on again


def test_queue_priority_and_arguments_come_from_the_periodic_task():
    at = dt.datetime(2026, 1, 1, 10, tzinfo=UTC)
    task = periodic(task="tests.taskapp.tasks.echo", args=["x", 1], kwargs={"when": "now"}, queue_name="mail",
                    priority=7)
    fire(task, at, backend=task_backends["default"])
    [row] = TaskRecord.objects.all()
    assert (row.queue_name, row.priority, row.args, row.kwargs) == ("mail", 7, ["x", 1], {"when": "now"})


def test_catch_up_once_enqueues_one_tick_for_a_downtime_and_skip_enqueues_none():
    now = timezone.now()
    daily = CrontabSchedule.objects.create(minute="0", hour="1")
    for name in ("once", "skip"):
        periodic(name, crontab=daily)
    three_days_ago = now - dt.timedelta(days=3)
    PeriodicTask.objects.update(last_run_at=three_days_ago, date_changed=three_days_ago)

    make_beat(catch_up=CatchUp.SKIP).tick(now)
    assert results_of() == []
    PeriodicTask.objects.filter(name="skip").update(enabled=False)
    make_beat(catch_up=CatchUp.ONCE).tick(now)
    assert len(results_of()) == 1
    latest = daily.as_schedule().latest_at_or_before(now)
    assert PeriodicTask.objects.get(name="once").last_run_at == latest


def test_an_edit_through_the_orm_is_used_at_the_next_tick_without_a_new_beat():
    task = periodic()
    beat = make_beat()
    first = minute_after(task.date_changed)
    beat.tick(first)
    PeriodicTask.objects.filter(pk=task.pk).update(args=[10, 20], interval=every(30))
    beat.tick(first + dt.timedelta(seconds=30))
    assert [row.args for row in results_of()] == [[1, 2], [10, 20]]


def test_disabled_and_deleted_tasks_stop():
    task = periodic()
    beat = make_beat()
    first = minute_after(task.date_changed)
    beat.tick(first)
    PeriodicTask.objects.filter(pk=task.pk).update(enabled=False)
    beat.tick(first + dt.timedelta(minutes=1))
    PeriodicTask.objects.filter(pk=task.pk).delete()
    beat.tick(first + dt.timedelta(minutes=2))
    assert len(results_of()) == 1


def test_a_one_off_task_disables_itself_after_its_run():
    task = periodic(one_off=True)
    beat = make_beat()
    first = minute_after(task.date_changed)
    assert beat.tick(first) is None  # nothing left to run
    beat.tick(first + dt.timedelta(minutes=5))
    assert len(results_of()) == 1
    assert PeriodicTask.objects.get(pk=task.pk).enabled is False


def test_a_clocked_task_runs_once_at_its_moment():
    moment = timezone.now() + dt.timedelta(hours=1)
    task = periodic(clocked=ClockedSchedule.objects.create(clocked_time=moment))
    beat = make_beat()
    assert beat.tick(moment - dt.timedelta(seconds=1)) == moment
    beat.tick(moment)
    beat.tick(moment + dt.timedelta(days=1))
    assert len(results_of()) == 1
    assert PeriodicTask.objects.get(pk=task.pk).enabled is False


def test_a_clocked_moment_just_past_when_created_still_runs():
    moment = timezone.now() - dt.timedelta(seconds=5)
    periodic(clocked=ClockedSchedule.objects.create(clocked_time=moment))
    make_beat().tick(timezone.now())
    assert len(results_of()) == 1


def test_expires_stops_the_task_and_its_ticks_expire_with_it():
    created = timezone.now()
    expires = minute_after(created, 2) + dt.timedelta(seconds=30)
    task = periodic(expires=expires)
    beat = make_beat()
    beat.tick(minute_after(created, 1))
    beat.tick(minute_after(created, 2))
    beat.tick(minute_after(created, 3))
    rows = results_of()
    assert len(rows) == 2
    assert {row.expires_at for row in rows} == {expires}
    assert PeriodicTask.objects.get(pk=task.pk).next_run_at(minute_after(created, 3)) is None


def test_start_time_delays_the_first_tick_and_anchors_an_interval():
    start = minute_after(timezone.now(), 10) + dt.timedelta(seconds=17)
    task = periodic(interval=every(60), start_time=start)
    assert task.next_run_at(timezone.now()) == start
    beat = make_beat()
    beat.tick(start - dt.timedelta(seconds=1))
    beat.tick(start)
    beat.tick(start + dt.timedelta(seconds=60))
    assert [tick.scheduled_at for tick in PeriodicTaskTick.objects.order_by("scheduled_at")] == [
        start, start + dt.timedelta(seconds=60)]


def test_a_task_that_cannot_be_enqueued_does_not_stop_the_others(caplog):
    broken = periodic("broken", task="tests.taskapp.tasks.no_such_task")
    periodic("fine")
    due = minute_after(broken.date_changed)
    beat = make_beat()
    beat.tick(due)
    beat.tick(due + dt.timedelta(seconds=1))
    assert len(results_of()) == 1
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1  # reported once, not at every loop
    assert "'broken' could not be enqueued" in errors[0].getMessage()
    assert PeriodicTaskTick.objects.filter(periodic_task=broken).count() == 0


def test_run_now_enqueues_at_once_and_counts_as_a_run():
    task = periodic()
    task_id = run_now(task, backend=task_backends["default"])
    assert str(PeriodicTaskTick.objects.get().task_id) == task_id
    task.refresh_from_db()
    assert task.total_run_count == 1


# -- models ---------------------------------------------------------------------------

def test_a_bad_cron_field_is_rejected_naming_the_field():
    with pytest.raises(ValidationError) as error:
        CrontabSchedule(minute="61", hour="1").full_clean()
    assert set(error.value.message_dict) == {"minute"}
    assert "not a valid minute field" in error.value.message_dict["minute"][0]
    with pytest.raises(ValidationError) as error:
        CrontabSchedule.from_expression("0 0 * * 9")
    assert set(error.value.message_dict) == {"day_of_week"}
    with pytest.raises(ValidationError) as error:
        CrontabSchedule(minute="0", hour="0", day_of_month="30", month_of_year="2").full_clean()
    assert "never happens" in str(error.value)
    with pytest.raises(ValidationError) as error:
        CrontabSchedule(timezone="Mars/Olympus").full_clean()
    assert set(error.value.message_dict) == {"timezone"}


def test_a_crontab_from_an_expression_says_its_next_run_and_describes_itself():
    cron = CrontabSchedule.from_expression("34 1 * * *", timezone="Asia/Kolkata")
    assert (cron.minute, cron.hour, cron.expression) == ("34", "1", "34 1 * * *")
    assert cron.describe() == str(cron) == "at 01:34 every day, Asia/Kolkata"
    after = dt.datetime(2026, 1, 1, 12, tzinfo=UTC)
    assert cron.next_run(after) == dt.datetime(2026, 1, 1, 20, 4, tzinfo=UTC)  # 01:34 IST is 20:04 UTC
    assert CrontabSchedule.from_expression("@hourly").describe() == "every hour, on the hour"


def test_interval_and_clocked_say_their_next_run_and_describe_themselves():
    interval = IntervalSchedule(every=5, period="minutes")
    assert str(interval) == "every 5 minutes"
    assert interval.next_run(dt.datetime(2026, 1, 1, 12, 3, tzinfo=UTC)) == dt.datetime(2026, 1, 1, 12, 5, tzinfo=UTC)
    assert IntervalSchedule.from_timedelta(dt.timedelta(hours=2)).describe() == "every 2 hours"
    clocked = ClockedSchedule(clocked_time=dt.datetime(2026, 5, 1, 9, tzinfo=UTC))
    assert str(clocked) == "once, at 2026-05-01 09:00:00 UTC"
    assert clocked.next_run(dt.datetime(2026, 5, 1, tzinfo=UTC)) == clocked.clocked_time


def test_a_periodic_task_needs_exactly_one_schedule_and_a_registered_task():
    two = PeriodicTask(name="two", task=ADD, interval=every(60), crontab=CrontabSchedule.objects.create())
    with pytest.raises(ValidationError, match="exactly one schedule"):
        two.full_clean()
    unknown = PeriodicTask(name="unknown", task="tests.taskapp.tasks.nope", interval=every(60))
    with pytest.raises(ValidationError) as error:
        unknown.full_clean()
    assert "not registered" in error.value.message_dict["task"][0]
    assert ADD in error.value.message_dict["task"][0]  # the registered tasks are listed
    bad_args = PeriodicTask(name="args", task=ADD, interval=every(60), args={"x": 1}, priority=500)
    with pytest.raises(ValidationError) as error:
        bad_args.full_clean()
    assert set(error.value.message_dict) == {"args", "priority"}


# -- the lease ------------------------------------------------------------------------

def _lease(owner: str, seconds: float = 30) -> LeaderLease:
    return LeaderLease(database="default", owner=owner, lease_seconds=seconds)


def test_one_beat_leads_until_it_gives_up_the_lease():
    first, second = _lease("first"), _lease("second")
    assert first.acquire() and first.held
    assert not second.acquire() and not second.held
    assert first.acquire()  # renewing
    assert second.holder().owner == "first"
    first.release()
    assert not first.held
    assert second.acquire()
    assert BeatLease.objects.get().owner == "second"


def test_an_expired_lease_is_taken_over_and_its_old_owner_cannot_renew():
    first, second = _lease("first"), _lease("second")
    assert first.acquire()
    acquired_at = BeatLease.objects.get().acquired_at
    BeatLease.objects.update(expires_at=F("expires_at") - dt.timedelta(seconds=60))  # the leader stopped renewing
    assert second.acquire()
    assert BeatLease.objects.get().acquired_at >= acquired_at
    assert not first.acquire()


def test_a_beat_ticks_only_while_it_leads():
    task = periodic(interval=every(1))
    leader, standby = make_beat(), Beat(backend=task_backends["default"], beat_id="standby")
    PeriodicTask.objects.filter(pk=task.pk).update(date_changed=F("date_changed") - dt.timedelta(seconds=5))
    leader.run_once()
    standby.run_once()
    assert leader.leading and not standby.leading
    assert PeriodicTaskTick.objects.count() == 1  # the latest due tick, enqueued by the leader
    assert {t.periodic_task_id for t in PeriodicTaskTick.objects.all()} == {task.pk}
    leader.request_stop()
    leader._shut_down()  # what run() does on its way out: give up the lead
    standby.run_once()
    assert standby.leading
