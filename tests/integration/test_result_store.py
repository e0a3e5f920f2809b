"""The result store on each database: an outcome written with the start mark its task ended before."""

import datetime as dt

import pytest
from django.tasks import TaskResultStatus
from django.utils import timezone

from djtasks.backend import DjTasksBackend
from djtasks.messages import Envelope
from djtasks.models import TaskRecord
from djtasks.results import Outcome, Start
from tests.taskapp import tasks


def _database(alias: str, *marks: pytest.MarkDecorator):  # noqa: ANN202 - a pytest.param
    return pytest.param(alias, marks=[*marks, pytest.mark.django_db(databases=[alias], transaction=True)], id=alias)


DATABASES = [_database("default"), _database("postgresql", pytest.mark.postgres),
             _database("mysql", pytest.mark.mysql)]


def _backend(alias: str) -> DjTasksBackend:
    return DjTasksBackend(alias, {"OPTIONS": {"BROKER_URL": "memory://", "RESULTS_DATABASE": alias}})


def _success(task_id: str, at: dt.datetime, value: int) -> Outcome:
    return Outcome(task_id=task_id, status=TaskResultStatus.SUCCESSFUL, at=at, attempt=1, return_value=value)


@pytest.mark.parametrize("alias", DATABASES)
def test_a_success_takes_its_unwritten_start_mark_in_the_same_update(alias):  # noqa: ANN001
    backend = _backend(alias)
    marked, unmarked = backend.enqueue_many(tasks.add, [((1, 1), {}), ((2, 2), {})])
    started = timezone.now().replace(microsecond=0)
    envelope = Envelope(id=unmarked.id, task=tasks.add.module_path, backend=alias, queue="default")
    backend.results.mark_started([Envelope(id=marked.id, task=tasks.add.module_path, backend=alias,
                                           queue="default")], "worker-a", started)
    ended = started + dt.timedelta(seconds=1)
    with backend.results.atomic():
        backend.results.record([_success(marked.id, ended, 2), _success(unmarked.id, ended, 4)],
                               unmarked={unmarked.id: Start(started, envelope)}, worker_id="worker-b")
    for result, worker, value in ((marked, "worker-a", 2), (unmarked, "worker-b", 4)):
        row = TaskRecord.objects.using(alias).get(id=result.id)
        assert (row.status, row.attempts, row.worker_ids, row.return_value) == ("SUCCESSFUL", 1, [worker], value)
        assert (row.started_at, row.last_attempted_at, row.finished_at) == (started, started, ended)


@pytest.mark.parametrize("alias", DATABASES)
def test_a_success_whose_row_is_missing_gets_its_row_from_the_message(alias):  # noqa: ANN001
    backend = _backend(alias)
    started = timezone.now().replace(microsecond=0)
    envelope = Envelope(id="0b0f5c1e-8d7a-4c39-9a51-2f6f4b8e7d10", task=tasks.add.module_path, backend=alias,
                        queue="default", args=[3, 4])
    with backend.results.atomic():
        backend.results.record([_success(envelope.id, started + dt.timedelta(seconds=1), 7)],
                               unmarked={envelope.id: Start(started, envelope)}, worker_id="worker-c")
    result = backend.get_result(envelope.id)
    assert result.status == TaskResultStatus.SUCCESSFUL and result.return_value == 7
    assert result.args == [3, 4] and result.worker_ids == ["worker-c"] and result.started_at == started
    assert TaskRecord.objects.using(alias).get(id=envelope.id).attempts == 1
