"""The prefork pool in a real ``runworker``: dead children, time limits, recycling."""

from __future__ import annotations

import os
import signal

import pytest

from .conftest import Workers
from .helpers import E2EDatabase, call, enqueue, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_a_killed_child_is_replaced_and_its_task_fails_with_the_reason(database: E2EDatabase,
                                                                       workers: Workers) -> None:
    worker = workers.start(database, "prefork", "--pool", "prefork", "-c", "2")
    [victim] = enqueue(database, [call("report_pid_then_sleep", "victim", 30)])
    started = wait_until(lambda: database.runs("victim-started"), timeout=30, what="the task to start")
    child_pid = started[0][1]
    assert child_pid != worker.pid
    os.kill(child_pid, signal.SIGKILL)

    wait_until(lambda: database.status(victim) == "FAILED", timeout=30, what="the task to end FAILED")
    error = database.task_row(victim)["errors"][-1]
    assert error["exception_class_path"] == "djtasks.exceptions.WorkerLostError"
    assert "SIGKILL" in error["message"]

    [after] = enqueue(database, [call("record_run", "after-the-crash")])
    wait_until(lambda: database.status(after) == "SUCCESSFUL", timeout=30, what="the next task")
    assert database.runs("after-the-crash")[0][1] not in (child_pid, worker.pid)
    assert worker.alive()


def test_the_hard_time_limit_kills_the_child_and_fails_the_task(database: E2EDatabase, workers: Workers) -> None:
    workers.start(database, "prefork", "--pool", "prefork", "-c", "1")
    [late] = enqueue(database, [call("sleeps_past_its_time_limit", "late", 20)])
    wait_until(lambda: database.status(late) == "FAILED", timeout=30, what="the task to be stopped")
    error = database.task_row(late)["errors"][-1]
    assert error["exception_class_path"] == "djtasks.exceptions.TimeLimitExceeded"
    assert database.runs("late") == []
    [after] = enqueue(database, [call("record_run", "after-the-limit")])
    wait_until(lambda: database.status(after) == "SUCCESSFUL", timeout=30, what="the next task")


@pytest.mark.parametrize("pool", ["prefork", "threads", "solo"])
def test_the_soft_time_limit_lets_the_task_clean_up(pool: str, sqlite_db: E2EDatabase, workers: Workers) -> None:
    workers.start(sqlite_db, pool, "--pool", pool, "-c", "1")
    [task] = enqueue(sqlite_db, [call("cleans_up_after_soft_limit", pool)])
    wait_until(lambda: sqlite_db.status(task) == "SUCCESSFUL", timeout=30, what="the task to finish")
    assert sqlite_db.task_row(task)["return_value"] == "cleaned up"
    assert len(sqlite_db.runs(f"{pool}-cleaned-up")) == 1


def test_children_are_recycled_after_max_tasks(sqlite_db: E2EDatabase, workers: Workers) -> None:
    keys = [f"recycle-{n}" for n in range(6)]
    workers.start(sqlite_db, "prefork", "--pool", "prefork", "-c", "1", "--max-tasks-per-child", "2")
    enqueue(sqlite_db, [call("record_run", key) for key in keys])
    wait_until(lambda: len(sqlite_db.runs()) == 6, timeout=30, what="all six tasks")
    pids = [pid for _, pid in sorted(sqlite_db.runs())]
    assert len(set(pids)) == 3


def test_children_are_recycled_when_their_memory_grows(sqlite_db: E2EDatabase, workers: Workers) -> None:
    keys = [f"memory-{n}" for n in range(4)]
    # Each task keeps 64 MiB alive; a child over 100 MiB is replaced after its task.
    workers.start(sqlite_db, "prefork", "--pool", "prefork", "-c", "1", "--max-memory-per-child", str(100 * 1024))
    enqueue(sqlite_db, [call("allocate", key, 64) for key in keys])
    wait_until(lambda: len(sqlite_db.runs()) == 4, timeout=30, what="all four tasks")
    assert len({pid for _, pid in sqlite_db.runs()}) >= 2


def test_children_die_with_a_killed_supervisor(database: E2EDatabase, workers: Workers) -> None:
    worker = workers.start(database, "prefork", "--pool", "prefork", "-c", "2")
    [task] = enqueue(database, [call("report_pid_then_sleep", "orphan", 30)])
    child_pid = wait_until(lambda: database.runs("orphan-started"), timeout=30, what="the task to start")[0][1]
    worker.kill()

    def gone() -> bool:
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            return True
        with open(f"/proc/{child_pid}/stat") as stat:  # a zombie waiting for its reaper is gone too
            return stat.read().split()[2] == "Z"

    wait_until(gone, timeout=10, what="the child to die with its supervisor")
    assert database.runs("orphan") == []
