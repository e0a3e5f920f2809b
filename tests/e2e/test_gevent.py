"""The gevent pool in a real ``runworker``: many I/O waits at once, cooperative drivers, time limits.

``manage.py`` monkey-patches before Django is imported when it sees
``runworker --pool gevent``; these tests start workers exactly so.
Overlap is measured from the start and end times each task returns, never
from how long a test took.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence

import pytest

from .conftest import Workers
from .helpers import (
    COMMAND_TIMEOUT_SECONDS,
    DEMO,
    PYTHON,
    REPO_ROOT,
    E2EDatabase,
    WorkerProcess,
    call,
    enqueue,
    run_manage,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]


def peak_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals that were open at one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    running = peak = 0
    for _, change in events:  # at equal times an end (-1) sorts first: touching intervals do not overlap
        running += change
        peak = max(peak, running)
    return peak


def run_intervals(db: E2EDatabase, task: str) -> list[tuple[float, float]]:
    """The [start, end] times that the successful runs of demo task ``task`` returned."""
    rows = db.query("SELECT return_value FROM djtasks_taskrecord WHERE task_path = %s AND status = 'SUCCESSFUL'",
                    [f"{DEMO}.{task}"])
    values = [json.loads(value) if isinstance(value, str) else value for (value,) in rows]
    return [(start, end) for start, end in values]


def wait_all_successful(db: E2EDatabase, count: int, alive: Sequence[WorkerProcess], timeout: float = 180) -> None:
    wait_until(lambda: db.status_counts().get("SUCCESSFUL", 0) == count, timeout=timeout,
               what=f"{count} tasks to succeed", alive=alive, state=db.status_counts)


def test_two_thousand_io_waits_overlap_on_500_greenlets(database: E2EDatabase, workers: Workers) -> None:
    enqueue(database, [call("wait_on_io", 0.05)] * 2000)
    worker = workers.start(database, "gevent", "--pool", "gevent", "-c", "500")
    wait_all_successful(database, 2000, [worker])
    intervals = run_intervals(database, "wait_on_io")
    assert len(intervals) == 2000
    assert peak_overlap(intervals) >= 100
    assert database.status_counts() == {"SUCCESSFUL": 2000}


@pytest.mark.postgres
def test_postgres_queries_of_tasks_wait_cooperatively(postgres_db: E2EDatabase, workers: Workers) -> None:
    # Each greenlet has its own connection: 50 of them stay below PostgreSQL's default 100.
    enqueue(postgres_db, [call("wait_on_postgres", 0.2)] * 200)
    worker = workers.start(postgres_db, "gevent", "--pool", "gevent", "-c", "50")
    wait_all_successful(postgres_db, 200, [worker])
    # A blocking driver would run the 200 pg_sleep() one at a time.
    assert peak_overlap(run_intervals(postgres_db, "wait_on_postgres")) >= 25


def test_time_limits_in_greenlets(sqlite_db: E2EDatabase, workers: Workers) -> None:
    worker = workers.start(sqlite_db, "gevent", "--pool", "gevent", "-c", "10")
    soft, hard = enqueue(sqlite_db, [call("cleans_up_after_soft_limit", "gevent"),
                                     call("sleeps_past_its_time_limit", "gevent-late", 20)])
    wait_until(lambda: sqlite_db.status(soft) == "SUCCESSFUL", timeout=30, what="the soft-limited task",
               alive=[worker])
    assert sqlite_db.task_row(soft)["return_value"] == "cleaned up"
    assert len(sqlite_db.runs("gevent-cleaned-up")) == 1
    wait_until(lambda: sqlite_db.status(hard) == "FAILED", timeout=30, what="the hard-limited task", alive=[worker])
    error = sqlite_db.task_row(hard)["errors"][-1]
    assert error["exception_class_path"] == "djtasks.exceptions.TimeLimitExceeded"
    assert sqlite_db.runs("gevent-late") == []


def test_revoke_terminate_stops_a_task_in_its_greenlet(sqlite_db: E2EDatabase, workers: Workers) -> None:
    worker = workers.start(sqlite_db, "gevent", "--pool", "gevent", "-c", "10")
    [victim] = enqueue(sqlite_db, [call("report_pid_then_sleep", "terminated-gevent", 30)])
    wait_until(lambda: sqlite_db.runs("terminated-gevent-started"), timeout=30, what="the task to start")
    run_manage(sqlite_db, "djtasks", "revoke", "--terminate", victim)
    wait_until(lambda: sqlite_db.status(victim) == "CANCELLED", timeout=30, what="the task to be stopped")
    assert sqlite_db.task_row(victim)["errors"][-1]["message"] == "revoked while it ran"
    assert sqlite_db.runs("terminated-gevent") == []
    [after] = enqueue(sqlite_db, [call("record_run", "after-terminate-gevent")])
    wait_until(lambda: sqlite_db.status(after) == "SUCCESSFUL", timeout=30, what="the next task")
    assert worker.alive()


def test_the_pool_refuses_a_process_that_was_not_patched(sqlite_db: E2EDatabase) -> None:
    # django-admin's entry point knows nothing of gevent: Django is imported unpatched.
    done = subprocess.run([PYTHON, "-m", "django", "runworker", "--pool", "gevent", "--burst"], cwd=REPO_ROOT,
                          env=sqlite_db.env(), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS,
                          check=False)
    assert done.returncode != 0
    assert "The gevent pool needs gevent's monkey-patching, done before Django is imported" in done.stderr
