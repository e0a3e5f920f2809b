"""Beats against a real database server: the leader lease, and each tick enqueued once even with two leaders.

Beats run in threads of this process, each thread with its own connection,
as separate processes would. Timings are measured on real clocks; waits are
on conditions with deadlines.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
import time
from collections.abc import Callable

import pytest
from django.db import connections
from django.db.models import F
from django.tasks import task_backends

from djtasks.beat.lease import LeaderLease
from djtasks.beat.ticker import Beat, BeatConfig
from djtasks.models import IntervalSchedule, PeriodicTask, PeriodicTaskTick, TaskRecord

ADD = "tests.taskapp.tasks.add"


def _database(alias: str, mark: pytest.MarkDecorator):  # noqa: ANN202 - a pytest.param
    return pytest.param(alias, marks=[mark, pytest.mark.django_db(databases=[alias], transaction=True)], id=alias)


DATABASES = [_database("postgresql", pytest.mark.postgres), _database("mysql", pytest.mark.mysql)]


def wait_until(condition: Callable[[], object], *, timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)  # the polling interval of this deadline loop
    return value


def _every_second(alias: str) -> PeriodicTask:
    interval = IntervalSchedule.objects.using(alias).create(every=1, period="seconds")
    task = PeriodicTask.objects.using(alias).create(name="every-second", task=ADD, interval=interval, args=[1, 2])
    # Made "a while ago", so that ticks are due at once.
    rows = PeriodicTask.objects.using(alias).filter(pk=task.pk)
    rows.update(date_changed=F("date_changed") - dt.timedelta(minutes=1))
    return PeriodicTask.objects.using(alias).get(pk=task.pk)


def _in_thread(target: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("alias", DATABASES)
def test_a_lease_is_taken_over_once_its_leader_stops_renewing_it(alias):
    leader = LeaderLease(database=alias, owner="leader", lease_seconds=1.0)
    standby = LeaderLease(database=alias, owner="standby", lease_seconds=1.0)
    assert leader.acquire()
    renewed = time.monotonic()
    assert not standby.acquire()
    wait_until(standby.acquire, timeout=5, what="the standby to take the lease")
    takeover = time.monotonic() - renewed
    assert 0.8 <= takeover <= 2.0, takeover  # the lease's 1 s, by the database's clock
    assert not leader.acquire()  # the old leader finds it lost the lead


@pytest.mark.parametrize("alias", DATABASES)
def test_two_leaders_at_once_enqueue_each_tick_once(alias):
    """A partition: both beats believe they lead and tick the same moments at the same instant."""
    task = _every_second(alias)
    beats = [Beat(backend=task_backends[alias], beat_id=f"beat-{n}") for n in (1, 2)]
    start = task.date_changed + dt.timedelta(seconds=1)
    moments = [start + dt.timedelta(seconds=n) for n in range(20)]
    barrier = threading.Barrier(len(beats), timeout=30)

    def tick_all(beat: Beat) -> None:
        for now in moments:
            barrier.wait()
            beat.tick(now)

    threads = [_in_thread(lambda beat=beat: tick_all(beat)) for beat in beats]
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()

    ticks = list(PeriodicTaskTick.objects.using(alias).order_by("scheduled_at"))
    assert len(ticks) == len({t.scheduled_at for t in ticks}) == 20
    assert TaskRecord.objects.using(alias).filter(task_path=ADD).count() == 20
    result_ids = TaskRecord.objects.using(alias).values_list("id", flat=True)
    assert {str(t.task_id) for t in ticks} == {str(i) for i in result_ids}
    assert PeriodicTask.objects.using(alias).get(pk=task.pk).total_run_count == 20


@pytest.mark.parametrize("alias", [DATABASES[0]])
def test_a_standby_beat_takes_over_when_the_leader_dies_and_no_tick_is_doubled(alias):
    task = _every_second(alias)
    config = BeatConfig(lease_seconds=1.5, reload_seconds=0.2)
    beats = [Beat(backend=task_backends[alias], config=config, beat_id=f"beat-{n}") for n in (1, 2)]
    threads = [_in_thread(beat.run) for beat in beats]
    ticks = PeriodicTaskTick.objects.using(alias).filter(periodic_task=task)
    try:
        wait_until(lambda: ticks.count() >= 3, timeout=10, what="three ticks")
        leader = next(beat for beat in beats if beat.leading)
        standby = next(beat for beat in beats if beat is not leader)
        leader.request_stop(release_lease=False)  # as if killed: it stops, and its lease stays until it runs out
        died = dt.datetime.now(dt.UTC)
        threads[beats.index(leader)].join(timeout=10)
        first = wait_until(lambda: ticks.filter(enqueued_at__gt=died).order_by("enqueued_at").first(), timeout=10,
                           what="a tick enqueued by the standby")
        takeover = (first.enqueued_at - died).total_seconds()
        assert standby.leading
        assert takeover <= config.lease_seconds + config.reload_seconds + 0.5, takeover
        count = ticks.count()
        wait_until(lambda: ticks.count() >= count + 3, timeout=10, what="three more ticks")
    finally:
        for beat in beats:
            beat.request_stop()
        for thread in threads:
            thread.join(timeout=10)

    rows = list(ticks.order_by("scheduled_at"))
    scheduled = [t.scheduled_at for t in rows]
    assert len(scheduled) == len(set(scheduled))  # none doubled
    assert all(moment.microsecond == 0 for moment in scheduled)  # whole seconds of the schedule, not "now"
    assert TaskRecord.objects.using(alias).filter(task_path=ADD).count() == len(rows)
    # The seconds of the takeover were caught up once: one tick, then the schedule's pace again.
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(scheduled)]
    assert sum(1 for gap in gaps if gap > 1) <= 1, gaps
