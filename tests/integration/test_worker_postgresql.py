"""A worker against a real PostgreSQL: NOTIFY wake-ups, batches, results."""


import pytest
from django.tasks import TaskResultStatus

from djtasks.backend import DjTasksBackend
from djtasks.worker import Worker
from tests.running_worker import RunningWorker
from tests.taskapp import tasks

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(databases=["postgresql"], transaction=True)]


def _backend(poll_interval: float) -> DjTasksBackend:
    return DjTasksBackend("postgresql", {"OPTIONS": {"BROKER_URL": "django://postgresql",
                                                     "RESULTS_DATABASE": "postgresql",
                                                     "POLL_INTERVAL": poll_interval}})



def test_notify_wakes_an_idle_worker_long_before_its_next_poll():
    worker = Worker(backend=_backend(poll_interval=3600), pool="threads", concurrency=2)
    on_pg = tasks.add.using(backend="postgresql")
    with RunningWorker(worker):
        assert on_pg.enqueue(1, 1).wait(timeout=30) == 2
        # The worker is idle now, waiting up to an hour for its next poll: only NOTIFY can wake it.
        assert on_pg.enqueue(2, 2).wait(timeout=10) == 4


def test_a_worker_drains_a_batch_with_results_stored():
    on_pg = tasks.add.using(backend="postgresql")
    results = on_pg.enqueue_many([(n, 1) for n in range(300)])
    worker = Worker(backend=_backend(poll_interval=0.05), pool="threads", concurrency=4, burst=True)
    stats = worker.run()
    assert stats.succeeded == 300
    for result in results[::37]:
        result.refresh()
        assert result.status == TaskResultStatus.SUCCESSFUL
        assert result.return_value == result.args[0] + 1


@pytest.mark.parametrize("broker_url", ["django://postgresql", "memory://"])
def test_a_batch_enqueue_stores_every_field_of_every_row(broker_url):
    """``enqueue_many`` writes its rows in one statement; each row reads back as enqueued."""
    import datetime as dt
    from decimal import Decimal
    from zoneinfo import ZoneInfo

    from djtasks.models import TaskRecord

    backend = DjTasksBackend("postgresql", {"OPTIONS": {"BROKER_URL": broker_url,
                                                        "RESULTS_DATABASE": "postgresql"}})
    moment = dt.datetime(2026, 3, 29, 2, 30, tzinfo=ZoneInfo("Europe/Paris"))
    task = tasks.echo.using(queue_name="bulk", priority=-7, run_after=dt.timedelta(hours=1))
    calls = [((n, moment, Decimal("1.50")), {"label": f"it's \"n\" {n}", "none": None}) for n in range(3)]
    results = backend.enqueue_many(task, calls)
    rows = {str(row.id): row for row in TaskRecord.objects.using("postgresql").filter(queue_name="bulk")}
    assert sorted(rows) == sorted(r.id for r in results)
    for result, (args, kwargs) in zip(results, calls, strict=True):
        row = rows[result.id]
        stored = backend.get_result(result.id)
        assert stored.args == list(args) and stored.kwargs == kwargs
        assert stored.args[1].tzinfo == ZoneInfo("Europe/Paris")
        assert (row.task_path, row.priority, row.backend, row.status) == (
            "tests.taskapp.tasks.echo", -7, "postgresql", "READY")
        assert row.enqueued_at == result.enqueued_at
        assert row.run_after == result.enqueued_at + dt.timedelta(hours=1)
        queued = broker_url.startswith("django:")
        assert (row.broker_state == "queued") is queued
        assert (row.available_at == row.run_after) if queued else row.available_at is None


@pytest.mark.parametrize("batch", [1, 3])
def test_rows_written_at_enqueue_commit_without_waiting_for_the_disk_only_outside_a_transaction(batch):
    """With a broker apart from the results, a lost row is written again by the worker: no WAL flush to wait for.

    In the caller's transaction, that transaction's own durability holds.
    """
    from django.db import connections, transaction

    backend = DjTasksBackend("postgresql", {"OPTIONS": {"BROKER_URL": "memory://", "RESULTS_DATABASE": "postgresql"}})
    connection = connections["postgresql"]
    inserts: list[list] = []

    def record_inserts(execute, sql, params, many, context):  # noqa: ANN001, ANN202
        if sql.lstrip().startswith(("INSERT INTO djtasks_taskrecord", "WITH inserted")):
            inserts.append(list(params))
        return execute(sql, params, many, context)

    calls = [((n, 1), {}) for n in range(batch)]
    with connection.execute_wrapper(record_inserts):
        outside = backend.enqueue_many(tasks.add, calls)
        with transaction.atomic(using="postgresql"):
            inside = backend.enqueue_many(tasks.add, calls)
            assert _synchronous_commit(connection) == "on"
    assert len(inserts) == 2
    assert "off" in inserts[0] and "off" not in inserts[1]
    assert _synchronous_commit(connection) == "on"  # the setting ended with its statement
    for result in outside + inside:
        assert backend.get_result(result.id).status == TaskResultStatus.READY


def _synchronous_commit(connection) -> str:  # noqa: ANN001
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        return cursor.fetchone()[0]


def test_start_marks_count_attempts_and_keep_the_first_start():
    """Each attempt's start mark adds its worker; the first start time stays."""
    import datetime as dt

    from django.utils import timezone

    backend = DjTasksBackend("postgresql", {"OPTIONS": {"BROKER_URL": "memory://",
                                                        "RESULTS_DATABASE": "postgresql"}})
    from djtasks.messages import Envelope

    first, other = backend.enqueue_many(tasks.add, [((1, 1), {}), ((2, 2), {})])
    envelope = {r.id: Envelope(id=r.id, task=tasks.add.module_path, backend="postgresql", queue="default")
                for r in (first, other)}
    start = timezone.now()
    backend.results.mark_started([envelope[first.id]], "worker-a", start)
    backend.results.mark_started(list(envelope.values()), "worker-b", start + dt.timedelta(seconds=5))
    first, other = backend.get_result(first.id), backend.get_result(other.id)
    assert first.status == TaskResultStatus.RUNNING and other.status == TaskResultStatus.RUNNING
    assert first.worker_ids == ["worker-a", "worker-b"] and other.worker_ids == ["worker-b"]
    assert first.started_at == start and other.started_at == start + dt.timedelta(seconds=5)
    assert first.last_attempted_at == start + dt.timedelta(seconds=5)
    assert backend.results.get(first.id).attempts == 2


@pytest.mark.parametrize(("multiplier", "held"), [(4, 8), (1, 2)])
def test_a_worker_holds_prefetch_multiplier_tasks_per_slot_running_ones_included(multiplier, held):  # noqa: ANN001
    """As Celery's prefetch: with 2 busy threads a worker holds 2 x multiplier tasks, and refills as they end."""
    import threading
    import time

    from django.tasks.signals import task_started

    backend = DjTasksBackend("postgresql", {"OPTIONS": {"BROKER_URL": "django://postgresql",
                                                        "RESULTS_DATABASE": "postgresql",
                                                        "PREFETCH_MULTIPLIER": multiplier, "POLL_INTERVAL": 0.05}})
    permits, started = threading.Semaphore(0), []

    def block(sender, task_result, **kwargs):  # noqa: ANN001, ANN003
        started.append(task_result.id)
        permits.acquire(timeout=30)

    def wait_for(condition) -> None:  # noqa: ANN001
        deadline = time.monotonic() + 20
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.01)

    results = backend.enqueue_many(tasks.add, [((n, n), {}) for n in range(20)])
    worker = Worker(backend=backend, pool="threads", concurrency=2)
    task_started.connect(block)
    try:
        with RunningWorker(worker):
            wait_for(lambda: len(started) == 2 and len(worker.running()) == held)
            assert (len(started), len(worker.running())) == (2, held)
            permits.release(2)  # two tasks end; two waiting ones start, and the worker refills
            wait_for(lambda: len(started) == 4 and len(worker.running()) == held)
            assert (len(started), len(worker.running())) == (4, held)
            permits.release(20)
            wait_for(lambda: worker.stats.succeeded == 20)
    finally:
        permits.release(20)
        task_started.disconnect(block)
    assert worker.stats.succeeded == 20
    assert {backend.get_result(r.id).return_value for r in results} == {2 * n for n in range(20)}
