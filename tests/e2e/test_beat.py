"""Real ``runbeat`` processes (and ``runworker --beat``) against the demo project.

Three beats and a worker on one PostgreSQL database: a 1-second interval
ticks once a second, never twice; SIGKILL of the leader hands the lead over
within the lease. On SQLite: an edit made through the ORM in another process
takes effect within 2 s; ``runworker --beat`` ticks and stops with the worker.

Tick precision and takeover time are measured here on the real clocks and
printed (``pytest -s`` shows them): lateness of a tick is ``enqueued_at -
scheduled_at`` of its row; takeover is from the SIGKILL to the first tick the
new leader enqueues.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import statistics
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import Workers
from .helpers import (
    MANAGE_PY,
    PYTHON,
    REPO_ROOT,
    WORKER_START_TIMEOUT_SECONDS,
    E2EDatabase,
    WorkerProcess,
    _die_with_the_test_process,
    run_manage,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

TASK = "testproject.demo.tasks.add"
#: The leader's lease in these tests (the default is 10 s): takeover is bounded by it.
LEASE_SECONDS = 3.0
#: How often a standby beat tries to take the lead (BeatConfig.reload_seconds).
RELOAD_SECONDS = 1.0


# -- helpers ---------------------------------------------------------------------------

def start_beat(db: E2EDatabase, log_dir: Path, name: str, *args: str) -> WorkerProcess:
    """Start ``manage.py runbeat *args`` on ``db``, logging to ``log_dir/beat-<name>.log``."""
    log_path = log_dir / f"beat-{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen([PYTHON, str(MANAGE_PY), "runbeat", *args], cwd=REPO_ROOT, env=db.env(),
                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 preexec_fn=_die_with_the_test_process())  # noqa: PLW1509 - prctl only
    return WorkerProcess(name=f"beat-{name}", popen=popen, log_path=log_path)


@pytest.fixture
def beats(workers: Workers, tmp_path: Path):  # noqa: ANN201 - a starter function
    """``beats(db, name, *args)`` starts a runbeat process, SIGKILLed and its log printed at teardown."""
    log_dir = tmp_path / "logs"

    def start(db: E2EDatabase, name: str, *args: str) -> WorkerProcess:
        beat = start_beat(db, log_dir, name, *args)
        workers.started.append(beat)  # killed and its log printed with the workers
        return beat

    return start


def orm(db: E2EDatabase, code: str) -> str:
    """Run ``code`` in ``manage.py shell`` on ``db``; return what it printed."""
    return run_manage(db, "shell", "-c", code).stdout


def create_every_second(db: E2EDatabase, name: str, args: list[int]) -> None:
    orm(db, "from djtasks.models import IntervalSchedule, PeriodicTask\n"
            "interval, _ = IntervalSchedule.objects.get_or_create(every=1, period='seconds')\n"
            f"PeriodicTask.objects.create(name={name!r}, task={TASK!r}, interval=interval, args={args!r})\n")


def moment(value: object) -> dt.datetime:
    """A datetime column as an aware datetime (SQLite returns text in UTC)."""
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)


def ticks(db: E2EDatabase) -> list[tuple[dt.datetime, dt.datetime, str]]:
    """``(scheduled_at, enqueued_at, task_id)`` of every tick, in order."""
    rows = db.query("SELECT scheduled_at, enqueued_at, task_id FROM djtasks_periodictasktick ORDER BY scheduled_at")
    return [(moment(s), moment(e), str(t)) for s, e, t in rows]


def results(db: E2EDatabase) -> list[tuple[str, list, str]]:
    """``(id, args, status)`` of the demo task's result rows."""
    rows = db.query("SELECT id, args, status FROM djtasks_taskrecord WHERE task_path = %s", [TASK])
    return [(str(i), json.loads(a) if isinstance(a, str) else a, s) for i, a, s in rows]


def lease_owner(db: E2EDatabase) -> str | None:
    rows = db.query("SELECT owner FROM djtasks_beatlease")
    return rows[0][0] if rows else None


def pid_of(owner: str) -> int:
    """The process id in a beat id ``beat.<host>.<pid>.<token>``."""
    return int(owner.rsplit(".", 2)[1])


def assert_none_doubled(db: E2EDatabase) -> None:
    scheduled = [s for s, _, _ in ticks(db)]
    assert len(scheduled) == len(set(scheduled)), "a tick was enqueued twice"
    tick_ids = {t for _, _, t in ticks(db)}
    result_ids = {db.task_id(i) if db.engine == "sqlite" else i for i, _, _ in results(db)}
    assert {db.task_id(t) if db.engine == "sqlite" else t for t in tick_ids} == result_ids
    assert all(s.microsecond == 0 for s in scheduled)  # moments of the schedule, not "now"


def lateness_report(rows: list[tuple[dt.datetime, dt.datetime, str]]) -> str:
    late_ms = sorted((e - s).total_seconds() * 1000 for s, e, _ in rows)
    p95 = late_ms[min(len(late_ms) - 1, round(len(late_ms) * 0.95))]
    return f"{len(late_ms)} ticks late by median {statistics.median(late_ms):.1f} ms, p95 {p95:.1f} ms, " \
           f"max {late_ms[-1]:.1f} ms"


# -- tests -----------------------------------------------------------------------------

def test_three_beats_tick_once_a_second_and_a_killed_leader_is_replaced_within_the_lease(
        postgres_db: E2EDatabase, workers: Workers, beats) -> None:
    db = postgres_db
    create_every_second(db, "every-second", [1, 2])
    workers.start(db, "worker", "--pool", "threads", "-c", "4")
    started = [beats(db, str(n), "--lease-seconds", str(LEASE_SECONDS)) for n in range(3)]
    for beat in started:
        beat.wait_for_log(r"beat \S+ started", WORKER_START_TIMEOUT_SECONDS)
    owner = wait_until(lambda: lease_owner(db), timeout=10, what="a beat to lead", alive=started)

    # Ten seconds of ticks, counted by their scheduled moments.
    window_start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
    window_end = window_start + dt.timedelta(seconds=10)
    wait_until(lambda: any(s >= window_end for s, _, _ in ticks(db)), timeout=20, what="ten seconds of ticks",
               alive=started)
    in_window = [row for row in ticks(db) if window_start <= row[0] < window_end]
    assert 9 <= len(in_window) <= 11, [s.isoformat() for s, _, _ in in_window]
    steady = lateness_report(in_window)
    assert max((e - s).total_seconds() for s, e, _ in in_window) < 1.0, steady
    assert_none_doubled(db)
    wait_until(lambda: {status for _, _, status in results(db)} == {"SUCCESSFUL"}, timeout=20,
               what="the worker to run every tick", state=lambda: results(db)[-3:])

    # SIGKILL the leader: a standby takes the lead once its lease ran out, and the ticks go on.
    leader = next(beat for beat in started if beat.pid == pid_of(owner))
    leader.kill()
    killed = dt.datetime.now(dt.UTC)
    survivors = [beat for beat in started if beat is not leader]
    first_after = wait_until(lambda: next((row for row in ticks(db) if row[1] > killed), None),
                             timeout=LEASE_SECONDS + 10, what="a tick by a new leader", alive=survivors)
    takeover = (first_after[1] - killed).total_seconds()
    assert takeover <= LEASE_SECONDS + RELOAD_SECONDS + 0.5, takeover
    assert pid_of(lease_owner(db)) in {beat.pid for beat in survivors}
    count = len(ticks(db))
    wait_until(lambda: len(ticks(db)) >= count + 3, timeout=10, what="three more ticks", alive=survivors)
    assert_none_doubled(db)
    after = [row for row in ticks(db) if row[1] > first_after[1]]
    print(f"\n[beat e2e, PostgreSQL] steady state: {steady}; takeover after SIGKILL: {takeover:.2f} s "
          f"(lease {LEASE_SECONDS:g} s); after takeover: {lateness_report(after)}")


def test_an_edit_through_the_orm_is_picked_up_within_2_seconds(sqlite_db: E2EDatabase, beats) -> None:
    db = sqlite_db
    create_every_second(db, "edited", [1, 1])
    beat = beats(db, "only")
    wait_until(lambda: len(ticks(db)) >= 2, timeout=WORKER_START_TIMEOUT_SECONDS, what="two ticks", alive=[beat])

    edited_at = float(orm(db, "import time\nfrom djtasks.models import PeriodicTask\n"
                              "task = PeriodicTask.objects.get(name='edited')\n"
                              "task.args = [5, 5]\ntask.save()\nprint(time.time())").split()[-1])
    wait_until(lambda: any(args == [5, 5] for _, args, _ in results(db)), timeout=5, what="a tick with the new args",
               alive=[beat])
    first_new = min(e for (_, e, t) in ticks(db)
                    if any(db.task_id(i) == db.task_id(t) and a == [5, 5] for i, a, _ in results(db)))
    picked_up = first_new.timestamp() - edited_at
    assert picked_up <= 2.0, picked_up

    disabled_at = float(orm(db, "import time\nfrom djtasks.models import PeriodicTask\n"
                                "PeriodicTask.objects.filter(name='edited').update(enabled=False)\n"
                                "print(time.time())").split()[-1])
    count = len(ticks(db))
    # Observing that nothing more comes needs a window: 3 s of a task that ticked every second.
    wait_until(lambda: time.time() > disabled_at + 3, timeout=10, what="3 s after disabling", alive=[beat])
    late_ticks = [e for _, e, _ in ticks(db) if e.timestamp() > disabled_at + 2.0]
    assert late_ticks == [], f"ticks after disabling: {late_ticks} ({len(ticks(db)) - count} after the edit)"
    assert_none_doubled(db)
    print(f"\n[beat e2e, SQLite] an ORM edit was picked up after {picked_up:.2f} s")


def test_runworker_beat_enqueues_runs_and_stops_with_the_worker(sqlite_db: E2EDatabase, workers: Workers) -> None:
    db = sqlite_db
    create_every_second(db, "in-worker", [2, 3])
    worker = workers.start(db, "with-beat", "--beat", "--pool", "threads", "-c", "2")
    wait_until(lambda: sum(status == "SUCCESSFUL" for _, _, status in results(db)) >= 2, timeout=20,
               what="two ticks run by the worker", alive=[worker])
    worker.signal(signal.SIGTERM)
    assert worker.wait_exit(30) == 0
    assert re.search(r"beat \S+ stopped and gave up the lead", worker.log())
    expires_at = moment(db.scalar("SELECT expires_at FROM djtasks_beatlease"))
    assert expires_at <= dt.datetime.now(dt.UTC)  # a standby may lead at once
    assert_none_doubled(db)
