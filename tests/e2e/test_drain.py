"""Two real workers drain a queue together: every task runs once, none is lost."""

from __future__ import annotations

import json
import signal

import pytest

from .conftest import Workers
from .helpers import E2EDatabase, call, enqueue, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

TASKS = 2000


@pytest.mark.parametrize("pool", [("threads", "4"), ("prefork", "2")], ids=["threads", "prefork"])
def test_two_workers_drain_the_queue_running_each_task_exactly_once(database: E2EDatabase, workers: Workers,
                                                                    pool: tuple[str, str]) -> None:
    first, second = (workers.start(database, name, "--pool", pool[0], "-c", pool[1], wait_serving=False)
                     for name in ("first", "second"))
    first.wait_serving()
    second.wait_serving()
    keys = [f"drain-{number}" for number in range(TASKS)]

    ids = enqueue(database, [call("record_run", key) for key in keys])

    def finished() -> bool:
        counts = database.status_counts()
        return counts.get("SUCCESSFUL", 0) + counts.get("FAILED", 0) == TASKS

    wait_until(finished, timeout=120, what=f"{TASKS} tasks to finish", alive=[first, second],
               state=database.status_counts)
    assert len(set(ids)) == TASKS
    assert database.status_counts() == {"SUCCESSFUL": TASKS}
    # Each ran once: one attempt (one delivery: a column of the ORM broker), acked (no longer in the queue).
    once = "attempts = 1" + ("" if database.on_redis else " AND deliveries = 1")
    sql = f"SELECT COUNT(*) FROM djtasks_taskrecord WHERE {once} AND broker_state IS NULL"
    assert database.query(sql) == [(TASKS,)]
    assert database.redis_leftovers() == {}
    runs = database.runs()
    assert sorted(key for key, _ in runs) == sorted(keys)  # the key is UNIQUE: a second run would have FAILED
    # Both workers ran some of the tasks (with prefork, in their children): each row names its worker.
    holders: set[str] = set()
    for (ids,) in database.query("SELECT worker_ids FROM djtasks_taskrecord"):
        holders.update(json.loads(ids) if isinstance(ids, str) else ids)
    assert holders == {first.worker_id, second.worker_id}, "both workers should have run some of the tasks"
    if pool[0] == "threads":
        assert {pid for _, pid in runs} == {first.pid, second.pid}
    for worker in (first, second):
        assert "Traceback" not in worker.log()
        worker.signal(signal.SIGTERM)
    assert first.wait_exit(30) == 0
    assert second.wait_exit(30) == 0
    stopped = [worker.wait_for_log(r"stopped: (\d+) succeeded, 0 failed", 5) for worker in (first, second)]
    assert sum(int(match.group(1)) for match in stopped) == TASKS
