"""Remote control of real workers: ping, inspect, revoke, shutdown, pool resizing."""

from __future__ import annotations

import pytest

from .conftest import Workers
from .helpers import E2EDatabase, call, enqueue, run_manage, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_ping_and_inspect_answer_from_every_worker(sqlite_db: E2EDatabase, workers: Workers) -> None:
    first = workers.start(sqlite_db, "first", "--pool", "threads", "-c", "2", "-Q", "default")
    second = workers.start(sqlite_db, "second", "--pool", "prefork", "-c", "1")
    ids = [first.wait_serving(), second.wait_serving()]
    [running] = enqueue(sqlite_db, [call("report_pid_then_sleep", "inspected", 30)])
    wait_until(lambda: sqlite_db.runs("inspected-started"), timeout=30, what="the long task to start")

    ping = run_manage(sqlite_db, "djtasks", "ping").stdout
    assert all(f"{worker_id}: pong" in ping for worker_id in ids)
    assert "2 worker(s) answered" in ping

    def inspected() -> str | None:
        out = run_manage(sqlite_db, "djtasks", "inspect").stdout
        return out if f"running testproject.demo.tasks.report_pid_then_sleep [{running}]" in out else None

    out = wait_until(inspected, timeout=10, what="inspect to show the running task")
    assert f"{ids[0]}: pool threads x2, queues default" in out
    assert f"{ids[1]}: pool prefork x1, queues all" in out
    status = run_manage(sqlite_db, "djtasks", "status").stdout
    assert "workers (2):" in status


def test_a_revoked_task_never_runs_and_says_who_revoked_it(database: E2EDatabase, workers: Workers) -> None:
    [later] = enqueue(database, [call("record_run", "revoked-later", countdown=2)])
    out = run_manage(database, "djtasks", "revoke", later).stdout
    assert "1 cancelled before they started" in out
    workers.start(database, "worker", "--pool", "threads", "-c", "2")
    [after] = enqueue(database, [call("record_run", "after-revoke", countdown=2.5)])
    wait_until(lambda: database.status(after) == "SUCCESSFUL", timeout=30, what="a later task to run")
    row = database.task_row(later)
    assert row["status"] == "CANCELLED"
    # Recorded once, by the revoke, even where the message stayed in the queue until a worker dropped it (Redis).
    [error] = row["errors"]
    assert error["exception_class_path"] == "djtasks.exceptions.TaskRevoked"
    assert "revoked by " in error["message"]
    assert database.runs("revoked-later") == []
    assert database.redis_leftovers() == {}


@pytest.mark.parametrize("pool", ["prefork", "threads"])
def test_revoke_terminate_stops_a_running_task(pool: str, sqlite_db: E2EDatabase, workers: Workers) -> None:
    worker = workers.start(sqlite_db, pool, "--pool", pool, "-c", "1")
    [victim] = enqueue(sqlite_db, [call("report_pid_then_sleep", f"terminated-{pool}", 30)])
    wait_until(lambda: sqlite_db.runs(f"terminated-{pool}-started"), timeout=30, what="the task to start")
    run_manage(sqlite_db, "djtasks", "revoke", "--terminate", victim)
    # A thread is stopped when its blocking call returns (here the 30 s sleep), a child process at once.
    wait_until(lambda: sqlite_db.status(victim) == "CANCELLED", timeout=45, what="the task to be stopped")
    assert sqlite_db.runs(f"terminated-{pool}") == []
    [after] = enqueue(sqlite_db, [call("record_run", f"after-terminate-{pool}")])
    wait_until(lambda: sqlite_db.status(after) == "SUCCESSFUL", timeout=30, what="the next task")
    assert worker.alive()


def test_shutdown_and_pool_resizing(sqlite_db: E2EDatabase, workers: Workers) -> None:
    worker = workers.start(sqlite_db, "resized", "--pool", "threads", "-c", "2")
    worker_id = worker.wait_serving()
    assert f"{worker_id}: concurrency 5" in run_manage(sqlite_db, "djtasks", "pool-grow", "3").stdout
    assert f"{worker_id}: concurrency 4" in run_manage(sqlite_db, "djtasks", "pool-shrink", "1").stdout
    assert "pool threads x4" in run_manage(sqlite_db, "djtasks", "inspect").stdout
    run_manage(sqlite_db, "djtasks", "shutdown", worker_id)
    assert worker.wait_exit(30) == 0


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_autoscale_grows_under_a_backlog_and_shrinks_when_idle(pool: str, sqlite_db: E2EDatabase,
                                                               workers: Workers) -> None:
    worker = workers.start(sqlite_db, "autoscaled", "--pool", pool, "--autoscale", "3,1", "--autoscale-idle", "1")
    worker.wait_for_log(r"concurrency 1\)", 10)
    enqueue(sqlite_db, [call("sleep_then_record", f"backlog-{n}", 0.4) for n in range(24)])
    worker.wait_for_log(r"autoscale: tasks are waiting; 3 slots", 30)
    wait_until(lambda: len(sqlite_db.runs()) == 24, timeout=60, what="the backlog to drain")
    worker.wait_for_log(r"autoscale: idle; 1 slots", 30)
