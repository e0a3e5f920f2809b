"""Workers that die or are stopped mid-task: nothing is lost, nothing runs twice."""

from __future__ import annotations

import signal
from typing import Any

import pytest

from .conftest import Workers
from .helpers import E2EDatabase, WorkerProcess, call, enqueue, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

#: A short lease, so that a task of a dead worker comes back within seconds.
SHORT_LEASE = {"DJTASKS_LEASE_SECONDS": 2}
#: Seconds a long task sleeps: more than a lease, so only heartbeats keep it leased.
LONG_TASK_SECONDS = 4
#: Seconds after which a running task has surely been re-delivered or finished, in these tests.
SETTLE_TIMEOUT_SECONDS = 45
ONE_THREAD = ("--pool", "threads", "-c", "1")


def wait_running(db: E2EDatabase, task_id: str, worker_id: str) -> None:
    """Wait until ``task_id`` is RUNNING on the worker ``worker_id``."""

    def running() -> bool:
        row = db.task_row(task_id)
        return row["status"] == "RUNNING" and row["worker_ids"] == [worker_id]

    wait_until(running, timeout=20, what=f"task {task_id} to run on {worker_id}", state=lambda: db.task_row(task_id))


def wait_finished(db: E2EDatabase, task_id: str, timeout: float = SETTLE_TIMEOUT_SECONDS) -> dict[str, Any]:
    """Wait until ``task_id`` is SUCCESSFUL or FAILED; return its row."""

    def finished() -> dict[str, Any] | None:
        row = db.task_row(task_id)
        return row if row["status"] in ("SUCCESSFUL", "FAILED") else None

    return wait_until(finished, timeout=timeout, what=f"task {task_id} to finish", state=lambda: db.task_row(task_id))


def assert_deliveries(db: E2EDatabase, row: dict[str, Any], expected: int) -> None:
    """Check the row's count of deliveries: an ORM broker column (Redis counts them in the message)."""
    if not db.on_redis:
        assert row["deliveries"] == expected, row


def start_two_and_run_one_long_task(db: E2EDatabase, workers: Workers,
                                    key: str) -> tuple[str, WorkerProcess, WorkerProcess]:
    """Start two workers, enqueue one long task; return its id, the worker that runs it, and the other."""
    pair = [workers.start(db, name, *ONE_THREAD, env=SHORT_LEASE, wait_serving=False) for name in ("one", "two")]
    for worker in pair:
        worker.wait_serving()
    [task_id] = enqueue(db, [call("sleep_then_record", key, LONG_TASK_SECONDS)])
    by_id = {worker.worker_id: worker for worker in pair}

    def holder() -> WorkerProcess | None:
        row = db.task_row(task_id)
        return by_id.get(row["worker_ids"][0]) if row["status"] == "RUNNING" else None

    running = wait_until(holder, timeout=20, what=f"task {task_id} to run", state=lambda: db.task_row(task_id))
    return task_id, running, next(worker for worker in pair if worker is not running)


def test_task_of_a_worker_killed_by_sigkill_is_run_to_completion_by_another(database: E2EDatabase,
                                                                             workers: Workers) -> None:
    task_id, doomed, survivor = start_two_and_run_one_long_task(database, workers, "killed-mid-task")

    doomed.signal(signal.SIGKILL)
    assert doomed.wait_exit(10) == -signal.SIGKILL
    assert database.runs("killed-mid-task") == [], "the task should still run when its worker is killed"

    row = wait_finished(database, task_id)
    assert row["status"] == "SUCCESSFUL", row
    assert row["attempts"] == 2
    assert_deliveries(database, row, 2)
    assert row["worker_ids"] == [doomed.worker_id, survivor.worker_id]
    assert row["broker_state"] is None
    assert database.runs("killed-mid-task") == [("killed-mid-task", survivor.pid)]
    survivor.wait_for_log(r"1 task\(s\) whose worker stopped answering are queued again", 5)
    assert survivor.alive()


def test_a_task_longer_than_the_lease_is_not_redelivered_while_its_worker_lives(database: E2EDatabase,
                                                                                workers: Workers) -> None:
    task_id, holder, bystander = start_two_and_run_one_long_task(database, workers, "longer-than-lease")

    row = wait_finished(database, task_id)
    assert row["status"] == "SUCCESSFUL", row
    assert (row["attempts"], row["worker_ids"]) == (1, [holder.worker_id])
    assert_deliveries(database, row, 1)
    assert database.runs("longer-than-lease") == [("longer-than-lease", holder.pid)]
    assert "queued again" not in holder.log() + bystander.log()


def test_sigterm_lets_the_running_task_finish_takes_no_more_work_and_exits_0(database: E2EDatabase,
                                                                              workers: Workers) -> None:
    worker = workers.start(database, "stopping", "--pool", "threads", "-c", "2", env=SHORT_LEASE)
    [task_id] = enqueue(database, [call("sleep_then_record", "finished-after-sigterm", LONG_TASK_SECONDS)])
    wait_running(database, task_id, worker.worker_id)

    worker.signal(signal.SIGTERM)
    worker.wait_for_log("SIGTERM received", 10)
    assert database.runs("finished-after-sigterm") == [], "the task should still run when SIGTERM arrives"
    # The worker has a free thread, but a stopping worker takes no new work.
    [later_id] = enqueue(database, [call("record_run", "enqueued-after-sigterm")])

    assert worker.wait_exit(SETTLE_TIMEOUT_SECONDS) == 0
    row = database.task_row(task_id)
    assert row["status"] == "SUCCESSFUL", row
    assert (row["attempts"], row["worker_ids"], row["broker_state"]) == (1, [worker.worker_id], None)
    assert database.runs("finished-after-sigterm") == [("finished-after-sigterm", worker.pid)]
    later = database.task_row(later_id)
    assert (later["status"], later["attempts"], later["broker_state"]) == ("READY", 0, database.queued_state)
    assert database.runs("enqueued-after-sigterm") == []


def test_second_sigterm_stops_at_once_and_the_task_comes_back_through_its_lease(database: E2EDatabase,
                                                                                 workers: Workers) -> None:
    task_seconds = 6  # long enough that "at once" cannot be confused with "after the task"
    stopped = workers.start(database, "stopped", *ONE_THREAD, env=SHORT_LEASE)
    [task_id] = enqueue(database, [call("sleep_then_record", "redelivered-after-sigterm", task_seconds)])
    wait_running(database, task_id, stopped.worker_id)

    stopped.signal(signal.SIGTERM)
    stopped.wait_for_log("SIGTERM received", 10)
    stopped.signal(signal.SIGTERM)
    code = stopped.wait_exit(3)
    assert code != 0
    assert code == 128 + signal.SIGTERM
    assert "second signal: stopping now" in stopped.log()
    assert database.status(task_id) == "RUNNING"
    assert database.runs("redelivered-after-sigterm") == []

    finisher = workers.start(database, "finisher", *ONE_THREAD, env=SHORT_LEASE)
    row = wait_finished(database, task_id)
    assert row["status"] == "SUCCESSFUL", row
    assert row["attempts"] == 2
    assert_deliveries(database, row, 2)
    assert row["worker_ids"] == [stopped.worker_id, finisher.worker_id]
    assert database.runs("redelivered-after-sigterm") == [("redelivered-after-sigterm", finisher.pid)]
