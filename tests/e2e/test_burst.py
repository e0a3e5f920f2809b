"""``runworker --burst`` runs what is due, then exits; what is not due yet stays queued."""

from __future__ import annotations

import pytest

from .conftest import Workers
from .helpers import E2EDatabase, call, enqueue

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_burst_drains_what_is_due_and_exits_0_leaving_future_tasks_queued(database: E2EDatabase,
                                                                           workers: Workers) -> None:
    keys = [f"burst-{number}" for number in range(20)]
    *due, failing = enqueue(database, [call("record_run", key) for key in keys] + [call("always_fails", "on purpose")])
    [later] = enqueue(database, [call("record_run", "burst-later", countdown=3600)])

    worker = workers.start(database, "burst", "--burst", "--pool", "threads", "-c", "2", wait_serving=False)
    assert worker.wait_exit(60) == 0

    assert {database.status(task_id) for task_id in due} == {"SUCCESSFUL"}
    assert sorted(key for key, _ in database.runs()) == sorted(keys)
    failed = database.task_row(failing)
    assert failed["status"] == "FAILED"
    assert failed["errors"][-1]["exception_class_path"] == "builtins.ValueError"
    not_due = database.task_row(later)
    assert (not_due["status"], not_due["attempts"], not_due["broker_state"]) == ("READY", 0, database.queued_state)
    if database.on_redis:  # the rest was acked; the countdown waits in the queue's sorted set of delayed messages
        assert [key.rsplit(":", 1)[-1] for key in database.redis_leftovers()] == ["delayed"]
    assert database.runs("burst-later") == []
    worker.wait_for_log(r"stopped: 20 succeeded, 1 failed, 0 retried", 5)
