"""Remote control pushed through the broker: Redis pub/sub, PostgreSQL LISTEN/NOTIFY.

The workers and the ``djtasks`` command run with the fallback poll of remote
control an hour long (``DJTASKS_CONTROL_FALLBACK_POLL``), so a command, a
revocation or a reply that takes effect within the deadlines below (seconds)
can only have come through the broker's signal. Each test first waits until
the broker reports the workers' subscriptions, so that no look made on
subscribing can stand in for a signal. The last test shortens the fallback
poll instead: a command written without a signal is still carried out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from djtasks.control.wakeup import FALLBACK_POLL_ENV
from tests.conftest import REDIS_URL

from .conftest import Workers
from .helpers import E2EDatabase, WorkerProcess, call, enqueue, run_manage, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

#: The fallback poll of these tests, in seconds: far longer than any deadline below.
NEVER_SECONDS = 3600
#: Seconds within which a pushed command, revocation or reply must take effect.
PROMPTLY_SECONDS = 30
#: Countdown of the task revoked while queued: the revocation must reach the worker before it is due.
QUEUED_SECONDS = 10


class Pushed:
    """The database of a test, and how to see its workers subscribed on the broker."""

    def __init__(self, db: E2EDatabase, redis_prefix: str | None) -> None:
        self.db = db
        self.redis_prefix = redis_prefix

    def subscribed(self) -> int:
        """How many connections listen for commands and revocations now."""
        if self.redis_prefix is None:
            return self.db.scalar("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                                  "AND query = 'LISTEN \"djtasks_control\"'")
        import redis

        with redis.Redis.from_url(REDIS_URL) as client:
            [(_, count)] = client.pubsub_numsub(f"{self.redis_prefix}:control")
        return count

    def wait_subscribed(self, count: int) -> None:
        wait_until(lambda: self.subscribed() == count, timeout=PROMPTLY_SECONDS,
                   what=f"{count} worker(s) to subscribe to control signals", state=self.subscribed)


@pytest.fixture(params=[pytest.param("redis", marks=pytest.mark.redis),
                        pytest.param("orm-postgres", marks=pytest.mark.postgres)])
def pushed(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pushed]:
    """The Redis broker (results in SQLite) and the ORM broker on PostgreSQL, with the fallback poll off.

    The environment of the test process is the one of every worker and command it starts.
    """
    monkeypatch.setenv(FALLBACK_POLL_ENV, str(NEVER_SECONDS))
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix")
        monkeypatch.setenv("DJTASKS_BROKER_URL", REDIS_URL)
        monkeypatch.setenv("DJTASKS_KEY_PREFIX", prefix)
        yield Pushed(request.getfixturevalue("sqlite_db"), prefix)
    else:
        yield Pushed(request.getfixturevalue("postgres_db"), None)


def start(pushed: Pushed, workers: Workers, *names: str, pool: str = "threads") -> list[WorkerProcess]:
    """Start a worker with one slot per name; return once all serve and listen for control signals."""
    started = [workers.start(pushed.db, name, "--pool", pool, "-c", "1", wait_serving=False) for name in names]
    for worker in started:
        worker.wait_serving()
    pushed.wait_subscribed(len(started))
    return started


def manage_promptly(db: E2EDatabase, *args: str) -> str:
    """Run ``manage.py *args``; fail unless it ends within ``PROMPTLY_SECONDS``; return its output."""
    began = time.monotonic()
    out = run_manage(db, *args).stdout
    assert time.monotonic() - began < PROMPTLY_SECONDS, f"manage.py {' '.join(args)} took too long:\n{out}"
    return out


def test_ping_and_inspect_are_answered_through_the_broker(pushed: Pushed, workers: Workers) -> None:
    first, second = start(pushed, workers, "first", "second")
    # A timeout ten minutes long: the command returns once both replies are signalled, not at its end.
    ping = manage_promptly(pushed.db, "djtasks", "ping", "--timeout", "600")
    assert f"{first.worker_id}: pong" in ping
    assert f"{second.worker_id}: pong" in ping
    assert "2 worker(s) answered" in ping
    inspect = manage_promptly(pushed.db, "djtasks", "inspect", "--timeout", "600")
    assert f"{first.worker_id}: pool threads x1" in inspect
    assert "2 worker(s) answered" in inspect
    grown = manage_promptly(pushed.db, "djtasks", "pool-grow", "2", "--worker", first.worker_id, "--timeout", "600")
    assert f"{first.worker_id}: concurrency 3" in grown


def test_revocations_reach_a_running_worker_through_the_broker(pushed: Pushed, workers: Workers) -> None:
    db = pushed.db
    # Prefork: its --terminate kills the task's process, which a sleeping thread would not notice.
    [worker] = start(pushed, workers, "revoked", pool="prefork")
    # Queued, not due yet: no worker holds it, however many tasks it reserves ahead.
    enqueued_at = time.monotonic()
    queued, after = enqueue(db, [call("record_run", "revoked-while-queued", countdown=QUEUED_SECONDS),
                                 call("record_run", "after-revocations", countdown=QUEUED_SECONDS + 0.5)])
    assert "1 cancelled before they started" in manage_promptly(db, "djtasks", "revoke", queued)
    assert time.monotonic() - enqueued_at < QUEUED_SECONDS, "the revocation came after the task was due"
    [running] = enqueue(db, [call("report_pid_then_sleep", "busy", 60)])
    wait_until(lambda: db.runs("busy-started"), timeout=PROMPTLY_SECONDS, what="the long task to start",
               alive=[worker])
    manage_promptly(db, "djtasks", "revoke", "--terminate", running)
    wait_until(lambda: db.status(running) == "CANCELLED", timeout=PROMPTLY_SECONDS,
               what="the running task to be stopped", alive=[worker])
    wait_until(lambda: db.status(after) == "SUCCESSFUL", timeout=PROMPTLY_SECONDS,
               what="the task due after the revoked one", alive=[worker])
    if pushed.redis_prefix is not None:
        # Its message stayed in Redis: the worker itself turned it down once due, knowing of the revocation.
        worker.wait_for_log(rf"\[{queued}\] CANCELLED after .*: revoked before it started", PROMPTLY_SECONDS)
    assert db.runs("revoked-while-queued") == []
    assert db.runs("busy") == []
    row = db.task_row(queued)
    assert row["status"] == "CANCELLED"
    [error] = row["errors"]  # the revocation's, with who revoked it: the worker's turning down adds nothing
    assert error["message"].startswith("revoked by ")


def test_shutdown_reaches_the_worker_through_the_broker(pushed: Pushed, workers: Workers) -> None:
    stopped, kept = start(pushed, workers, "stopped", "kept")
    manage_promptly(pushed.db, "djtasks", "shutdown", stopped.worker_id)
    assert stopped.wait_exit(PROMPTLY_SECONDS) == 0
    assert kept.alive()


def test_a_command_sent_without_a_signal_is_found_by_the_fallback_poll(pushed: Pushed, workers: Workers,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(FALLBACK_POLL_ENV, "1")
    [worker] = start(pushed, workers, "polling")
    pushed.db.execute("INSERT INTO djtasks_controlcommand (created_at, command, target, arguments) "
                      "VALUES (CURRENT_TIMESTAMP, 'ping', %s, '{}')", [worker.worker_id])
    wait_until(lambda: pushed.db.scalar("SELECT COUNT(*) FROM djtasks_controlreply"), timeout=PROMPTLY_SECONDS,
               what="the worker to find the unsignalled command", alive=[worker])

