"""Messages a worker cannot run are recorded FAILED with the reason; the worker goes on serving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .conftest import Workers
from .helpers import DEMO, E2EDatabase, call, enqueue, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def rewrite_message(db: E2EDatabase, task_id: str, *, message: str | None = None, **fields: object) -> None:
    """Change the envelope ``fields`` of a queued message (a new ``task`` also goes to the
    ``task_path`` column), or replace its whole text with ``message``."""
    if isinstance(fields.get("task"), str):
        db.execute("UPDATE djtasks_taskrecord SET task_path = %s WHERE id = %s", [fields["task"], db.task_id(task_id)])
    if db.on_redis:
        _rewrite_in_redis(db, task_id, message, fields)
        return
    if message is None:
        envelope = json.loads(db.task_row(task_id)["message"])
        envelope.update(fields)
        message = json.dumps(envelope)
    assert db.execute("UPDATE djtasks_taskrecord SET message = %s WHERE id = %s", [message, db.task_id(task_id)]) == 1


def _rewrite_in_redis(db: E2EDatabase, task_id: str, message: str | None, fields: dict[str, object]) -> None:
    """The same in Redis, before any worker read the stream: the entry is replaced by one with the new body."""
    with db.redis() as client:
        for stream in client.scan_iter(match=f"{{{db.redis_prefix}:*}}:s:*"):
            for entry_id, entry in client.xrange(stream):
                if entry["id"] == task_id:
                    if message is None:
                        envelope = json.loads(entry["body"])
                        envelope.update(fields)
                        message = json.dumps(envelope)
                    client.xdel(stream, entry_id)
                    client.xadd(stream, {**entry, "body": message})
                    return
    raise AssertionError(f"no message of task {task_id} in Redis")


def wait_all_finished(db: E2EDatabase, ids: list[str], timeout: float, alive: tuple = ()) -> None:
    wait_until(lambda: all(db.status(i) in ("SUCCESSFUL", "FAILED") for i in ids), timeout=timeout,
               what=f"tasks {ids} to finish", alive=alive, state=lambda: [db.task_row(i) for i in ids])


def last_error(db: E2EDatabase, task_id: str) -> dict:
    row = db.task_row(task_id)
    assert row["status"] == "FAILED", row
    assert (len(row["errors"]), row["broker_state"]) == (1, None), "recorded once, then acked"
    return row["errors"][-1]


def test_unknown_tasks_and_undecodable_messages_fail_with_the_reason_and_the_worker_goes_on(
        database: E2EDatabase, workers: Workers, tmp_path: Path) -> None:
    unknown, outside_apps, not_json = enqueue(database, [call("record_run", f"bad-{n}") for n in range(3)])
    rewrite_message(database, unknown, task=f"{DEMO}.no_such_task")
    # Only registered tasks run: a message never names an arbitrary callable.
    marker = tmp_path / "os-system-ran"
    rewrite_message(database, outside_apps, task="os.system", args=[f"touch {marker}"])
    rewrite_message(database, not_json, message="{this is not JSON")

    worker = workers.start(database, "server", "--pool", "threads", "-c", "2")
    bad = [unknown, outside_apps, not_json]
    wait_all_finished(database, bad, timeout=20, alive=(worker,))

    error = last_error(database, unknown)
    assert error["exception_class_path"] == "djtasks.exceptions.UnknownTaskError"
    assert f"{DEMO}.no_such_task" in error["message"]
    error = last_error(database, outside_apps)
    assert error["exception_class_path"] == "djtasks.exceptions.UnknownTaskError"
    assert "'os.system'" in error["message"]
    assert not marker.exists()
    error = last_error(database, not_json)
    assert error["exception_class_path"] == "djtasks.exceptions.MessageDecodeError"
    assert "cannot decode" in error["message"]
    assert database.runs() == []
    assert database.redis_leftovers() == {}
    worker.wait_for_log(rf"Task {DEMO}\.no_such_task\[{unknown}\] FAILED in .*UnknownTaskError", 5)
    worker.wait_for_log(rf"\[{not_json}\] FAILED in .*MessageDecodeError", 5)

    # The same worker process still serves.
    [good] = enqueue(database, [call("record_run", "after-bad-messages")])
    wait_all_finished(database, [good], timeout=20, alive=(worker,))
    row = database.task_row(good)
    assert row["status"] == "SUCCESSFUL", row
    assert row["worker_ids"] == [worker.worker_id]
    assert database.runs() == [("after-bad-messages", worker.pid)]


def test_a_message_whose_task_field_is_not_a_string_fails_and_the_worker_goes_on(
        database: E2EDatabase, workers: Workers) -> None:
    [bad] = enqueue(database, [call("record_run", "task-is-a-number")])
    rewrite_message(database, bad, task=123)
    worker = workers.start(database, "server", "--pool", "threads", "-c", "1")
    wait_all_finished(database, [bad], timeout=5, alive=(worker,))
    assert last_error(database, bad)["exception_class_path"].startswith("djtasks.exceptions.")

    [good] = enqueue(database, [call("record_run", "after-task-is-a-number")])
    wait_all_finished(database, [good], timeout=10, alive=(worker,))
    assert database.status(good) == "SUCCESSFUL"
