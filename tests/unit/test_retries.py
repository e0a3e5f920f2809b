"""Retries: policy maths, attempts recorded, final failure with traceback."""

import random

import pytest
from django.tasks import TaskResultStatus

from djtasks.models import TaskRecord
from djtasks.retry import RetryPolicy
from djtasks.testing import drain
from tests.taskapp import tasks


@pytest.fixture(autouse=True)
def _clear_calls():
    tasks.CALLS.clear()


def test_backoff_doubles_up_to_the_cap():
    policy = RetryPolicy(max_retries=10, retry_delay_seconds=2, retry_backoff=True, retry_backoff_max_seconds=30,
                         retry_jitter=False)
    assert [policy.delay_seconds(n) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]


def test_jitter_stays_between_half_and_all_of_the_delay():
    policy = RetryPolicy(max_retries=3, retry_delay_seconds=8, retry_backoff=True, retry_jitter=True)
    rng = random.Random(7)
    delays = [policy.delay_seconds(2, rng) for _ in range(200)]
    assert all(8 <= d <= 16 for d in delays)
    assert len(set(delays)) > 100


def test_should_retry_honours_count_and_error_type():
    policy = RetryPolicy(max_retries=2, retry_on=(ConnectionError,))
    assert policy.should_retry(ConnectionError(), 1)
    assert policy.should_retry(ConnectionResetError(), 2)
    assert not policy.should_retry(ConnectionError(), 3)
    assert not policy.should_retry(ValueError(), 1)


@pytest.mark.django_db
def test_a_flaky_task_is_retried_until_it_succeeds():
    result = tasks.flaky.enqueue(failures=2)
    assert drain() != []  # first attempt fails; the retry waits 10 s
    row = TaskRecord.objects.get(id=result.id)
    assert row.status == TaskResultStatus.READY
    assert row.run_after is not None
    drain(include_scheduled=True)
    done = tasks.flaky.get_result(result.id)
    assert done.status == TaskResultStatus.SUCCESSFUL
    assert done.return_value == 3
    assert done.attempts == 3
    assert [e.message for e in done.errors] == ["attempt 1", "attempt 2"]
    assert tasks.CALLS == [("flaky", 1), ("flaky", 2), ("flaky", 3)]


@pytest.mark.django_db
def test_the_final_failure_keeps_every_attempt_and_the_traceback():
    result = tasks.flaky.enqueue(failures=10)
    drain(include_scheduled=True)
    done = tasks.flaky.get_result(result.id)
    assert done.status == TaskResultStatus.FAILED
    assert done.attempts == 4  # max_retries=3: four runs in all
    assert len(done.errors) == 4
    assert done.errors[-1].exception_class_path == "tests.taskapp.tasks.Flaky"
    assert "raise Flaky" in done.errors[-1].traceback
    attempts = [e["attempt"] for e in TaskRecord.objects.get(id=result.id).errors]
    assert attempts == [1, 2, 3, 4]


@pytest.mark.django_db
def test_an_error_outside_retry_on_is_not_retried():
    result = tasks.wrong_error.enqueue()
    drain(include_scheduled=True)
    assert tasks.wrong_error.get_result(result.id).status == TaskResultStatus.FAILED
    assert tasks.CALLS == [("wrong_error", 1)]


@pytest.mark.django_db
def test_context_retry_uses_its_countdown_then_gives_up_with_exc():
    result = tasks.asks_retry.enqueue(countdown=120)
    drain()
    row = TaskRecord.objects.get(id=result.id)
    delay = (row.run_after - row.last_attempted_at).total_seconds()
    assert 119 <= delay <= 121
    drain(include_scheduled=True)
    done = tasks.asks_retry.get_result(result.id)
    assert done.status == TaskResultStatus.FAILED
    assert tasks.CALLS == [("asks_retry", 1), ("asks_retry", 2), ("asks_retry", 3)]
    assert done.errors[-1].exception_class_path == "builtins.RuntimeError"
    assert done.errors[-1].message == "try again after attempt 3"
