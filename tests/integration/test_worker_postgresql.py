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
