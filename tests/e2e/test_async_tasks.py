"""``async def`` tasks in a real ``runworker``: on the worker's event loop, many at once, whatever the pool."""

from __future__ import annotations

import json

import pytest

from .conftest import Workers
from .helpers import E2EDatabase, call, enqueue, run_manage, wait_until
from .test_gevent import peak_overlap, run_intervals, wait_all_successful

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]


@pytest.mark.parametrize("pool", ["threads", "prefork", "gevent", "solo"])
def test_two_hundred_coroutines_await_at_once_beside_the_pool(pool: str, sqlite_db: E2EDatabase,
                                                               workers: Workers) -> None:
    # Two pool slots (one for solo): the coroutines do not take them.
    enqueue(sqlite_db, [call("await_io", 0.2)] * 200 + [call("record_run", f"plain-{n}") for n in range(4)])
    worker = workers.start(sqlite_db, pool, "--pool", pool, "-c", "2")
    wait_all_successful(sqlite_db, 204, [worker])
    intervals = run_intervals(sqlite_db, "await_io")
    assert len(intervals) == 200
    assert peak_overlap(intervals) >= 50
    assert len(sqlite_db.runs()) == 4  # the plain tasks ran in the pool meanwhile


def test_async_concurrency_caps_the_coroutines_awaited_at_once(sqlite_db: E2EDatabase, workers: Workers) -> None:
    enqueue(sqlite_db, [call("await_io", 0.2)] * 40)
    worker = workers.start(sqlite_db, "threads", "--pool", "threads", "-c", "2", "--async-concurrency", "8")
    wait_all_successful(sqlite_db, 40, [worker])
    intervals = run_intervals(sqlite_db, "await_io")
    assert len(intervals) == 40
    assert 4 <= peak_overlap(intervals) <= 8


@pytest.mark.parametrize("pool", ["threads", "prefork"])
def test_the_soft_time_limit_cancels_a_coroutine_that_cleans_up(pool: str, sqlite_db: E2EDatabase,
                                                                 workers: Workers) -> None:
    worker = workers.start(sqlite_db, pool, "--pool", pool, "-c", "1")
    [task] = enqueue(sqlite_db, [call("async_cleans_up_after_soft_limit", f"async-{pool}")])
    wait_until(lambda: sqlite_db.status(task) == "SUCCESSFUL", timeout=30, what="the task to finish", alive=[worker])
    assert sqlite_db.task_row(task)["return_value"] == "cleaned up"
    assert len(sqlite_db.runs(f"async-{pool}-cleaned-up")) == 1  # written with the async ORM


def test_progress_of_a_coroutine_and_revoke_terminate(sqlite_db: E2EDatabase, workers: Workers) -> None:
    worker = workers.start(sqlite_db, "threads", "--pool", "threads", "-c", "1")
    [task] = enqueue(sqlite_db, [call("async_progress_then_wait", 30)])

    def progress() -> dict | None:
        value = sqlite_db.scalar("SELECT progress FROM djtasks_taskrecord WHERE id = %s", [sqlite_db.task_id(task)])
        return json.loads(value) if isinstance(value, str) else value

    assert wait_until(progress, timeout=30, what="the progress to be stored") == {"done": 1, "total": 2,
                                                                                  "message": "halfway"}
    assert sqlite_db.status(task) == "RUNNING"
    run_manage(sqlite_db, "djtasks", "revoke", "--terminate", task)
    wait_until(lambda: sqlite_db.status(task) == "CANCELLED", timeout=30, what="the coroutine to be cancelled")
    error = sqlite_db.task_row(task)["errors"][-1]
    assert error["exception_class_path"] == "djtasks.exceptions.TaskRevoked"
    assert error["message"] == "revoked while it ran"
    [after] = enqueue(sqlite_db, [call("await_io", 0.01)])
    wait_until(lambda: sqlite_db.status(after) == "SUCCESSFUL", timeout=30, what="the next coroutine")
    assert worker.alive()
