"""The worker in-process: bad input, errors, pools, leases."""

import datetime as dt
import json
import threading

import pytest
from django.tasks import TaskResultStatus, task_backends
from django.utils import timezone

from djtasks.models import BrokerState, TaskRecord
from djtasks.testing import drain
from djtasks.worker import Worker
from tests.taskapp import tasks

pytestmark = pytest.mark.django_db


def _rewrite_message(task_id: str, **changes) -> None:
    row = TaskRecord.objects.get(id=task_id)
    body = json.loads(row.message)
    body.update(changes)
    TaskRecord.objects.filter(id=task_id).update(message=json.dumps(body), task_path=body["task"])


def test_an_unknown_task_ends_failed_with_the_reason_and_the_worker_goes_on():
    bad = tasks.add.enqueue(1, 1)
    _rewrite_message(bad.id, task="tests.taskapp.tasks.does_not_exist")
    good = tasks.add.enqueue(2, 2)
    drain()
    row = TaskRecord.objects.get(id=bad.id)
    assert row.status == TaskResultStatus.FAILED
    assert row.errors[-1]["exception_class_path"] == "djtasks.exceptions.UnknownTaskError"
    assert "tests.taskapp.tasks.does_not_exist" in row.errors[-1]["message"]
    assert row.broker_state is None  # acked: it is not delivered again
    assert tasks.add.get_result(good.id).return_value == 4


def test_a_task_outside_installed_apps_is_never_imported():
    bad = tasks.add.enqueue(1, 1)
    _rewrite_message(bad.id, task="os.system")
    drain()
    row = TaskRecord.objects.get(id=bad.id)
    assert row.status == TaskResultStatus.FAILED
    assert "not registered" in row.errors[-1]["message"]


def test_an_undecodable_message_ends_failed_and_the_worker_goes_on():
    bad = tasks.add.enqueue(1, 1)
    TaskRecord.objects.filter(id=bad.id).update(message="{not json")
    good = tasks.add.enqueue(3, 3)
    drain()
    row = TaskRecord.objects.get(id=bad.id)
    assert row.status == TaskResultStatus.FAILED
    assert row.errors[-1]["exception_class_path"] == "djtasks.exceptions.MessageDecodeError"
    assert tasks.add.get_result(good.id).return_value == 6


def test_undecodable_arguments_end_failed():
    bad = tasks.add.enqueue(1, 1)
    _rewrite_message(bad.id, args=[{"__djtasks__": "decimal", "value": "x"}])
    drain()
    assert TaskRecord.objects.get(id=bad.id).status == TaskResultStatus.FAILED


def test_a_failing_task_does_not_stop_the_worker():
    failing = [tasks.fail.enqueue(f"boom {n}") for n in range(3)]
    ok = tasks.add.enqueue(1, 2)
    results = {r.id: r for r in drain()}
    assert all(results[r.id].status == TaskResultStatus.FAILED for r in failing)
    assert results[ok.id].return_value == 3


@pytest.mark.django_db(transaction=True)
def test_the_threads_pool_runs_tasks_at_once():
    results = tasks.add.enqueue_many([(n, n) for n in range(40)])
    worker = Worker(backend=task_backends["default"], pool="threads", concurrency=4, burst=True)
    stats = worker.run()
    assert stats.succeeded == 40
    assert sorted(tasks.add.get_result(r.id).return_value for r in results) == [2 * n for n in range(40)]
    workers = {tuple(TaskRecord.objects.get(id=r.id).worker_ids) for r in results}
    assert workers == {(worker.worker_id,)}


def test_the_memory_broker_keeps_result_rows_in_the_database():
    memory_add = tasks.add.using(backend="memory")
    result = memory_add.enqueue(5, 5)
    assert TaskRecord.objects.get(id=result.id).broker_state is None
    [done] = drain(backend="memory")
    assert done.return_value == 10


def test_a_leased_task_of_a_dead_worker_runs_again_with_attempts_counted():
    result = tasks.add.enqueue(1, 2)
    backend = task_backends["default"]
    backend.broker.fetch(None, 1, worker_id="dead-worker", lease_seconds=0.0, now=timezone.now())
    assert TaskRecord.objects.get(id=result.id).broker_state == BrokerState.LEASED
    [done] = drain()
    assert done.return_value == 3
    assert done.attempts == 2
    assert done.worker_ids == ["dead-worker", "djtasks.testing"]


def test_stop_request_finishes_the_running_task():
    started, release = threading.Event(), threading.Event()
    from tests.taskapp import tasks as t

    result = t.add.enqueue(1, 1)
    worker = Worker(backend=task_backends["default"], pool="solo", burst=False)

    def stop_when_started(sender, task_result, **kwargs):
        worker.request_stop()
        started.set()

    from django.tasks.signals import task_started

    task_started.connect(stop_when_started)
    try:
        stats = worker.run()
    finally:
        task_started.disconnect(stop_when_started)
    assert started.is_set()
    assert stats.succeeded == 1
    assert t.add.get_result(result.id).return_value == 2
    release.set()


def test_the_worker_deletes_results_older_than_keep_results_days():
    from djtasks.backend import DjTasksBackend

    old, recent = tasks.add.enqueue(1, 1), tasks.add.enqueue(2, 2)
    drain()
    TaskRecord.objects.filter(id=old.id).update(finished_at=timezone.now() - dt.timedelta(days=3))
    backend = DjTasksBackend("default", {"OPTIONS": {"KEEP_RESULTS_DAYS": 2}})
    Worker(backend=backend, pool="solo", burst=True).run()
    assert list(TaskRecord.objects.values_list("id", flat=True)) == [TaskRecord.objects.get(id=recent.id).id]


def test_aenqueue_and_aget_result():
    from asgiref.sync import async_to_sync, sync_to_async

    async def enqueue_run_and_fetch():
        result = await tasks.add.aenqueue(4, 5)
        await sync_to_async(drain)()
        return await tasks.add.aget_result(result.id)

    assert async_to_sync(enqueue_run_and_fetch)().return_value == 9


def test_releasing_an_unstarted_task_restores_its_row():
    result = tasks.add.enqueue(1, 2)
    broker = task_backends["default"].broker
    [delivery] = broker.fetch(None, 1, worker_id="stopping", lease_seconds=60, now=timezone.now())
    assert TaskRecord.objects.get(id=result.id).status == TaskResultStatus.RUNNING
    broker.release([delivery])
    row = TaskRecord.objects.get(id=result.id)
    assert (row.status, row.attempts, row.worker_ids, row.started_at, row.broker_state) == (
        TaskResultStatus.READY, 0, [], None, BrokerState.QUEUED)
    [done] = drain()
    assert done.attempts == 1 and done.return_value == 3


@pytest.mark.django_db(transaction=True)
def test_sys_exit_in_a_task_fails_it_and_the_thread_goes_on():
    exiting = tasks.exits.enqueue()
    after = tasks.add.enqueue(1, 1)
    stats = Worker(backend=task_backends["default"], pool="threads", concurrency=1, burst=True).run()
    assert (stats.failed, stats.succeeded) == (1, 1)
    assert TaskRecord.objects.get(id=exiting.id).errors[-1]["exception_class_path"] == "builtins.SystemExit"
    assert tasks.add.get_result(after.id).return_value == 2


def test_a_worker_fed_coroutines_reserves_for_its_event_loop_not_a_pool_at_a_time():
    """The loop's room counts in proportion to the ``async def`` tasks lately delivered."""
    from djtasks.brokers import Delivery
    from djtasks.worker.asyncio_runner import PoolWithEventLoop
    from djtasks.worker.executor import Executor
    from djtasks.worker.pools.threads import ThreadPool

    backend = tasks.add.get_backend()

    def delivery(task, n):  # noqa: ANN001, ANN202
        [message] = backend._outgoing(task, [((n, n), {})], timezone.now())
        return Delivery(id=message.id, queue="default", body=message.body, deliveries=1)

    done = []
    pool = PoolWithEventLoop(ThreadPool(Executor(backend=backend, worker_id="w"), done.append, 2), limit=500)
    pool.start()
    try:
        plain_room = pool.room(4)
        assert plain_room == 8  # 2 slots x 4, nothing delivered yet
        for n in range(100):
            pool.submit(delivery(tasks.async_add, n))
        assert pool.room(4) > 200  # most of the loop's free places
        for n in range(100):
            pool.submit(delivery(tasks.add, n))
        assert pool.room(4) < 20  # back to about the pool's share
    finally:
        pool.stop(timeout=10)
    assert len(done) == 200


@pytest.mark.parametrize("pool", ["threads", "solo"])
def test_a_worker_remembers_no_envelope_of_the_tasks_it_finished(pool):  # noqa: ANN001
    """Decoded messages are kept while held, not for every task run so far: memory follows the work in hand."""
    from djtasks.worker import deliveries

    tasks.add.enqueue_many([(n, n) for n in range(300)])
    stats = Worker(backend=task_backends["default"], pool=pool, concurrency=4, burst=True).run()
    assert stats.succeeded == 300
    assert len(deliveries._envelopes._by_body) == 0
