"""A worker on the Redis broker, results in the database: wake-ups, delays, retries."""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from django.tasks import TaskResultStatus, task_backends
from django.test import override_settings

from djtasks.testing import drain
from djtasks.worker import Worker
from tests.conftest import REDIS_URL
from tests.integration.test_redis_broker import blocked_clients
from tests.running_worker import RunningWorker
from tests.taskapp import tasks

pytestmark = [pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def redis_backend(redis_prefix):  # noqa: ANN001, ANN201
    def backend(**options):
        return {"BACKEND": "djtasks.backend.DjTasksBackend", "QUEUES": [],
                "OPTIONS": {"BROKER_URL": REDIS_URL, "KEY_PREFIX": redis_prefix, **options}}

    with override_settings(TASKS={"default": backend(POLL_INTERVAL=3600), "fast": backend(POLL_INTERVAL=0.05)}):
        yield task_backends["default"]


@pytest.fixture
def redis_backend_pg(redis_prefix):  # noqa: ANN001, ANN201
    """The Redis broker with its result rows on PostgreSQL, for a test that reads while a worker thread writes.

    SQLite's shared in-memory test database locks a table for the length of
    a write, and a read then fails at once ("database table is locked").
    """
    options = {"BROKER_URL": REDIS_URL, "KEY_PREFIX": redis_prefix, "RESULTS_DATABASE": "postgresql",
               "POLL_INTERVAL": 3600}
    with override_settings(TASKS={"default": {"BACKEND": "djtasks.backend.DjTasksBackend", "QUEUES": [],
                                              "OPTIONS": options}}):
        yield task_backends["default"]


def reads_beside_a_running_worker(test):  # noqa: ANN001, ANN201
    """The marks of a test that uses :func:`redis_backend_pg`."""
    return pytest.mark.postgres(pytest.mark.django_db(databases=["postgresql"], transaction=True)(test))


@reads_beside_a_running_worker
def test_an_idle_worker_is_woken_at_once(redis_backend_pg):  # noqa: ANN001
    worker = Worker(backend=redis_backend_pg, pool="threads", concurrency=2)
    with RunningWorker(worker):
        assert tasks.add.enqueue(1, 1).wait(timeout=30) == 2
        # Idle now, with an hour until its next poll: only the wake-up list can wake it.
        assert tasks.add.enqueue(2, 2).wait(timeout=10) == 4


@pytest.fixture
def long_idle_waits(redis_backend_pg, monkeypatch):  # noqa: ANN001, ANN201
    """An idle worker waits in its fetch for up to a minute: only a message, a due time or a stop ends it."""
    from djtasks.worker import supervisor

    monkeypatch.setattr(supervisor, "IDLE_FETCH_WAIT_SECONDS", 60)
    monkeypatch.setattr(redis_backend_pg.broker, "timeout_seconds", 150)
    return redis_backend_pg


def wait_until_waiting_in_redis(broker, before: int) -> None:  # noqa: ANN001
    from tests.e2e.helpers import wait_until

    wait_until(lambda: blocked_clients(broker) > before, timeout=10,
               what="the worker to wait in Redis")


@contextmanager
def waiting_worker(backend) -> Iterator[Worker]:  # noqa: ANN001
    """A worker of queue ``default`` (threads, 2), running, once it waits in Redis for messages."""
    before = blocked_clients(backend.broker)
    # Named: a worker serving every queue would look for new queues only when its wait is over.
    with RunningWorker(Worker(backend=backend, pool="threads", concurrency=2, queues=["default"])) as worker:
        wait_until_waiting_in_redis(backend.broker, before)
        yield worker


@reads_beside_a_running_worker
def test_a_stop_ends_an_idle_workers_wait_at_once(long_idle_waits):  # noqa: ANN001
    before = blocked_clients(long_idle_waits.broker)
    worker = Worker(backend=long_idle_waits, pool="threads", concurrency=2)
    running = RunningWorker(worker)
    with running:
        wait_until_waiting_in_redis(long_idle_waits.broker, before)
        worker.request_stop()
        running.thread.join(timeout=10)
        assert not running.thread.is_alive(), "the worker still waits for messages"


@reads_beside_a_running_worker
def test_a_countdown_enqueued_while_a_worker_waits_starts_on_time(long_idle_waits):  # noqa: ANN001
    with waiting_worker(long_idle_waits):
        result = tasks.add.apply_async(args=(3, 4), countdown=1)
        assert result.wait(timeout=15) == 7  # not after the minute the worker was set to wait
        result.refresh()
        assert result.started_at >= result.enqueued_at + dt.timedelta(seconds=1)


@reads_beside_a_running_worker
def test_a_busy_worker_with_a_free_slot_starts_a_new_task_at_once(redis_backend_pg):  # noqa: ANN001
    from tests.e2e.helpers import wait_until

    tasks.GATE.clear()
    worker = Worker(backend=redis_backend_pg, pool="threads", concurrency=2)
    with RunningWorker(worker):
        long = tasks.waits_for_gate.enqueue(60)
        wait_until(lambda: long.refresh() or long.status == TaskResultStatus.RUNNING, timeout=10,
                   what="the long task to run")
        try:
            # Not idle (a task runs), with an hour until its next poll: the new message must wake it.
            assert tasks.add.enqueue(2, 3).wait(timeout=10) == 5
            long.refresh()
            assert long.status == TaskResultStatus.RUNNING
        finally:
            tasks.GATE.set()
        assert long.wait(timeout=10) is True


@reads_beside_a_running_worker
def test_a_task_that_reaches_an_idle_worker_shows_running_while_it_runs(long_idle_waits):  # noqa: ANN001
    from tests.e2e.helpers import wait_until

    tasks.GATE.clear()
    with waiting_worker(long_idle_waits) as worker:
        # The thread that fetched it runs it: its start is still recorded.
        result = tasks.waits_for_gate.enqueue(60)
        try:
            wait_until(lambda: result.refresh() or result.status == TaskResultStatus.RUNNING, timeout=10,
                       what="the task to show RUNNING")
        finally:
            tasks.GATE.set()
        assert result.wait(timeout=10) is True
        result.refresh()
        assert result.enqueued_at <= result.started_at <= result.finished_at
        assert result.worker_ids == [worker.worker_id]


@reads_beside_a_running_worker
def test_a_rate_limit_holds_for_tasks_that_reach_an_idle_worker(long_idle_waits):  # noqa: ANN001
    from django.utils import timezone

    from djtasks.ratelimit import limiter_for, parse_rate
    from tests.e2e.helpers import wait_until

    def scheduled() -> int:
        return sum(d.scheduled for d in long_idle_waits.broker.depths(timezone.now()) if d.queue == "default")

    # The minute's one token is taken.
    assert limiter_for(long_idle_waits).acquire(tasks.once_a_minute.module_path, parse_rate("1/m"),
                                                timezone.now()) <= 0
    with waiting_worker(long_idle_waits):
        over_the_limit = tasks.once_a_minute.enqueue(2)
        # Put back until its token comes, in a minute: not run by the thread that fetched it.
        wait_until(lambda: scheduled() == 1, timeout=10, what="the task over the limit to be put back")
        over_the_limit.refresh()
        assert over_the_limit.status == TaskResultStatus.READY


@reads_beside_a_running_worker
def test_a_task_revoked_before_it_reaches_an_idle_worker_never_runs(long_idle_waits):  # noqa: ANN001
    from tests.e2e.helpers import wait_until

    with waiting_worker(long_idle_waits) as worker:
        result = tasks.add.apply_async(args=(1, 2), countdown=1)
        worker.revoke_locally(result.id, terminate=False)
        wait_until(lambda: result.refresh() or result.is_finished, timeout=15, what="the revoked task to end")
        assert result.status == TaskResultStatus.FAILED  # CANCELLED, as django.tasks knows it
        assert result.errors[-1].exception_class_path == "djtasks.exceptions.TaskRevoked"
        # Counted as not succeeded (nor retried): the worker's summary line says so.
        wait_until(lambda: worker.stats.failed == 1, timeout=10, what="the worker to count the revoked task")
        assert (worker.stats.succeeded, worker.stats.retried) == (0, 0)


@reads_beside_a_running_worker
def test_a_worker_starts_new_tasks_while_it_cannot_store_outcomes(redis_backend_pg, monkeypatch):  # noqa: ANN001
    from django.db import DatabaseError

    from tests.e2e.helpers import wait_until

    tasks.CALLS.clear()
    worker = Worker(backend=redis_backend_pg, pool="threads", concurrency=2, queues=["default"])

    def database_down(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise DatabaseError("the results database is down")

    monkeypatch.setattr(worker.outcomes, "store", database_down)
    with RunningWorker(worker):
        tasks.fire_and_forget.enqueue(1)
        wait_until(lambda: ("fire_and_forget", 1) in tasks.CALLS, timeout=10, what="the first task to run")
        # Its outcome cannot be stored; the next task must not wait for the database to come back.
        tasks.fire_and_forget.enqueue(2)
        wait_until(lambda: ("fire_and_forget", 2) in tasks.CALLS, timeout=10, what="the second task to run")
        monkeypatch.undo()


@reads_beside_a_running_worker
def test_a_countdown_is_honoured_never_early(redis_backend_pg):  # noqa: ANN001
    worker = Worker(backend=redis_backend_pg, pool="threads", concurrency=2)
    with RunningWorker(worker):
        result = tasks.add.apply_async(args=(3, 4), countdown=1)
        assert result.wait(timeout=10) == 7
        result.refresh()
        assert result.started_at >= result.enqueued_at + dt.timedelta(seconds=1)


def test_retries_go_through_the_delayed_set(redis_backend):  # noqa: ANN001
    tasks.CALLS.clear()
    result = tasks.flaky.enqueue(failures=1)
    drain()
    assert tasks.flaky.get_result(result.id).status == TaskResultStatus.READY
    [done] = drain(include_scheduled=True)
    assert done.return_value == 2
    assert done.attempts == 2


def test_a_worker_drains_a_batch_with_results_stored(redis_backend):  # noqa: ANN001
    results = tasks.add.enqueue_many([(n, 1) for n in range(300)])
    stats = Worker(backend=task_backends["fast"], pool="threads", concurrency=4, burst=True).run()
    assert stats.succeeded == 300
    for result in results[::29]:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.return_value == result.args[0] + 1


def test_ignore_result_tasks_write_no_row_on_redis(redis_backend):  # noqa: ANN001
    from djtasks.models import TaskRecord

    tasks.CALLS.clear()
    results = tasks.fire_and_forget.enqueue_many([(n,) for n in range(20)])
    assert not TaskRecord.objects.exists()
    Worker(backend=task_backends["fast"], pool="threads", concurrency=2, burst=True).run()
    assert sorted(x for _, x in tasks.CALLS) == list(range(20))
    assert not TaskRecord.objects.exists()
    assert len(results) == 20


def test_enqueue_while_redis_is_unreachable_fails_clearly_and_writes_nothing():
    from djtasks.exceptions import BrokerError
    from djtasks.models import TaskRecord

    dead = {"BACKEND": "djtasks.backend.DjTasksBackend",
            "OPTIONS": {"BROKER_URL": "redis://127.0.0.1:1/0", "BROKER_TIMEOUT": 0.5}}
    with override_settings(TASKS={"default": dead}):
        with pytest.raises(BrokerError, match="could not enqueue"):
            tasks.add.enqueue(1, 2)
    assert not TaskRecord.objects.exists()


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_a_task_whose_row_is_missing_gets_it_from_the_worker(redis_backend, pool):  # noqa: ANN001
    """The row may come after the message, or never (a database crash): the worker writes it."""
    from djtasks.models import TaskRecord

    kept, lost = tasks.add.enqueue(1, 2), tasks.echo.using(priority=3).enqueue("x", n=1)
    TaskRecord.objects.filter(id=lost.id).delete()
    stats = Worker(backend=task_backends["fast"], pool=pool, concurrency=2, burst=True).run()
    assert stats.succeeded == 2
    kept.refresh()
    lost.refresh()
    assert (kept.status, kept.return_value) == (TaskResultStatus.SUCCESSFUL, 3)
    assert (lost.status, lost.args, lost.kwargs) == (TaskResultStatus.SUCCESSFUL, ["x"], {"n": 1})
    assert lost.worker_ids == kept.worker_ids and len(lost.worker_ids) == 1
    assert lost.started_at is not None and lost.finished_at >= lost.started_at
    row = TaskRecord.objects.get(id=lost.id)
    assert (row.task_path, row.priority, row.attempts) == ("tests.taskapp.tasks.echo", 3, 1)


@reads_beside_a_running_worker
def test_a_message_that_comes_while_outcomes_are_stored_starts_at_once(long_idle_waits):  # noqa: ANN001
    from django.db import connections, transaction

    from djtasks.models import TaskRecord
    from tests.e2e.helpers import wait_until

    tasks.GATE.clear()
    tasks.CALLS.clear()
    table = TaskRecord._meta.db_table
    with waiting_worker(long_idle_waits):
        first = tasks.waits_for_gate.enqueue(60)
        wait_until(lambda: first.refresh() or first.status == TaskResultStatus.RUNNING, timeout=10,
                   what="the first task to show RUNNING")
        with transaction.atomic(using="postgresql"), connections["postgresql"].cursor() as cursor:
            # Writes to the result rows wait until this block ends: the worker's next commit stalls.
            cursor.execute(f"LOCK TABLE {table} IN EXCLUSIVE MODE")
            tasks.GATE.set()

            def outcome_waits() -> bool:
                cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                               [table])
                return cursor.fetchone()[0] > 0

            wait_until(outcome_waits, timeout=10, what="the first task's outcome to wait for the lock")
            tasks.fire_and_forget.enqueue("during the commit")
            wait_until(lambda: ("fire_and_forget", "during the commit") in tasks.CALLS, timeout=10,
                       what="the new task to start while the worker stores the first one's outcome")
        assert first.wait(timeout=10) is True


@reads_beside_a_running_worker
def test_a_task_that_ends_while_the_worker_waits_for_messages_does_not_end_the_wait(long_idle_waits):  # noqa: ANN001
    from tests.e2e.helpers import wait_until

    def waits_ended() -> int:  # BLPOPs that returned: Redis counts a blocking call when it is over
        return int(long_idle_waits.broker.client.info("commandstats").get("cmdstat_blpop", {}).get("calls", 0))

    tasks.GATE.clear()
    with waiting_worker(long_idle_waits):
        long = tasks.waits_for_gate.enqueue(60)
        try:
            wait_until(lambda: long.refresh() or long.status == TaskResultStatus.RUNNING, timeout=10,
                       what="the task to show RUNNING")
            # Its start mark is written: the worker's other thread now waits for messages as long as it may.
            wait_until(lambda: blocked_clients(long_idle_waits.broker) > 0, timeout=10,
                       what="the worker to wait in Redis again")
            before = waits_ended()
        finally:
            tasks.GATE.set()
        assert long.wait(timeout=10) is True
        # Stored and acked while that wait went on: ending it would have cost a round trip and a fetch.
        assert waits_ended() == before
        assert blocked_clients(long_idle_waits.broker) > 0
        assert tasks.add.enqueue(2, 2).wait(timeout=10) == 4
