"""The calling API a user sees: @djtask, enqueue/delay/apply_async, results, wait."""

import asyncio
import datetime as dt
from decimal import Decimal

import pytest
from django.db import transaction
from django.tasks import Task, TaskResultStatus, default_task_backend
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued, task_finished, task_started
from django.utils import timezone

from djtasks import DjTask, djtask
from djtasks.exceptions import SerializationError, TaskFailed
from djtasks.models import TaskRecord
from djtasks.testing import drain
from tests.taskapp import tasks

pytestmark = pytest.mark.django_db


def test_backend_declares_its_capabilities():
    assert default_task_backend.supports_defer
    assert default_task_backend.supports_priority
    assert default_task_backend.supports_get_result
    assert default_task_backend.supports_async_task
    assert default_task_backend.task_class is DjTask
    assert issubclass(DjTask, Task)


def test_plain_django_task_becomes_a_djtask_and_runs():
    assert isinstance(tasks.plain, DjTask)
    result = tasks.plain.enqueue("world")
    drain()
    result.refresh()
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "hello world"


def test_delay_writes_a_ready_row_and_returns_its_result():
    result = tasks.add.delay(2, 3)
    assert result.status == TaskResultStatus.READY
    row = TaskRecord.objects.get(id=result.id)
    assert (row.task_path, row.status, row.args, row.queue_name) == (
        "tests.taskapp.tasks.add", "READY", [2, 3], "default")


def test_a_drained_task_has_its_value_and_times():
    result = tasks.add.enqueue(2, 3)
    [done] = drain()
    assert done.id == result.id
    assert done.return_value == 5
    assert done.attempts == 1
    assert done.enqueued_at <= done.started_at <= done.finished_at
    assert tasks.add.get_result(result.id).return_value == 5


def test_arguments_and_return_values_keep_their_types():
    moment = dt.datetime(2026, 5, 1, 8, 30, tzinfo=dt.UTC)
    result = tasks.echo.enqueue(moment, Decimal("9.99"), when=dt.date(2026, 5, 1))
    drain()
    value = tasks.echo.get_result(result.id).return_value
    assert value == {"args": [moment, Decimal("9.99")], "kwargs": {"when": dt.date(2026, 5, 1)}}
    assert tasks.echo.get_result(result.id).args == [moment, Decimal("9.99")]


def test_an_unserializable_argument_fails_at_enqueue_and_writes_nothing():
    with pytest.raises(SerializationError, match="argument 'obj' of task 'tests.taskapp.tasks.echo'"):
        tasks.echo.enqueue(1, obj=object())
    assert TaskRecord.objects.count() == 0


def test_apply_async_countdown_queue_and_priority():
    before = timezone.now()
    result = tasks.add.apply_async(args=(1, 2), countdown=30, queue="slow", priority=7)
    row = TaskRecord.objects.get(id=result.id)
    assert row.queue_name == "slow" and row.priority == 7
    assert row.run_after >= before + dt.timedelta(seconds=30)
    assert drain() == []  # not due yet: never early
    [done] = drain(include_scheduled=True)
    assert done.return_value == 3


def test_apply_async_eta_and_expires():
    eta = timezone.now() + dt.timedelta(hours=1)
    result = tasks.add.apply_async(args=(1, 1), eta=eta, expires=dt.timedelta(hours=2))
    row = TaskRecord.objects.get(id=result.id)
    assert row.run_after == eta
    assert row.expires_at > eta
    with pytest.raises(InvalidTask, match="countdown or eta"):
        tasks.add.apply_async(args=(1, 1), eta=eta, countdown=5)


def test_using_run_after_a_timedelta_counts_from_enqueue():
    result = tasks.add.using(run_after=dt.timedelta(minutes=5)).enqueue(1, 1)
    row = TaskRecord.objects.get(id=result.id)
    assert dt.timedelta(minutes=4, seconds=59) < row.run_after - row.enqueued_at <= dt.timedelta(minutes=5)


def test_a_task_not_started_before_it_expires_is_failed_not_run():
    result = tasks.add.apply_async(args=(1, 1), countdown=60, expires=30)
    [done] = drain(include_scheduled=True)
    assert done.id == result.id
    assert done.status == TaskResultStatus.FAILED
    assert done.errors[-1].exception_class_path == "djtasks.exceptions.TaskExpired"


def test_enqueue_on_commit_waits_for_the_commit():
    with transaction.atomic():
        tasks.add.enqueue_on_commit(1, 2)
        assert TaskRecord.objects.count() == 0
    # pytest-django wraps the test in a transaction: run the on-commit hooks as a commit would.
    assert TaskRecord.objects.count() in (0, 1)


def test_enqueue_on_commit_runs_on_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        tasks.add.enqueue_on_commit(1, 2)
        assert TaskRecord.objects.count() == 0
    assert len(callbacks) == 1
    assert TaskRecord.objects.get().args == [1, 2]


def test_enqueue_on_commit_checks_arguments_at_once():
    with pytest.raises(SerializationError):
        tasks.add.enqueue_on_commit(1, object())


def test_a_plain_call_runs_inline():
    assert tasks.add(2, 3) == 5
    assert TaskRecord.objects.count() == 0


def test_a_task_tells_an_async_def_function_and_runs_either_kind_from_either_side():
    assert tasks.async_add.is_coroutine and not tasks.add.is_coroutine
    assert tasks.async_add.using(priority=5).is_coroutine
    assert tasks.async_add(2, 3) == 5  # awaited to its end in this thread
    assert asyncio.run(tasks.add.acall(2, 3)) == 5
    assert asyncio.run(tasks.async_add.acall(2, 3)) == 5


def test_enqueue_many_writes_all_rows_at_once(django_assert_max_num_queries):
    with django_assert_max_num_queries(3):
        results = tasks.add.enqueue_many([(i, i) for i in range(100)] + [{"x": 1, "y": 2}])
    assert len(results) == 101
    drain()
    assert tasks.add.get_result(results[-1].id).return_value == 3
    assert tasks.add.get_result(results[7].id).return_value == 14


def test_wait_returns_the_value():
    result = tasks.add.enqueue(20, 22)
    drain()
    assert result.wait(timeout=5) == 42


def test_wait_raises_the_tasks_error_with_its_remote_traceback():
    result = tasks.fail.enqueue("broken input")
    drain()
    with pytest.raises(ValueError, match="broken input") as info:
        result.wait(timeout=5)
    assert isinstance(info.value, TaskFailed)
    assert info.value.exception_class_path == "builtins.ValueError"
    assert 'raise ValueError(message)' in info.value.remote_traceback


def test_wait_times_out():
    result = tasks.add.enqueue(1, 1)
    with pytest.raises(TimeoutError):
        result.wait(timeout=0.05)


def test_get_result_of_an_unknown_id():
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result("00000000-0000-0000-0000-000000000000")
    with pytest.raises(TaskResultDoesNotExist):
        tasks.add.get_result("not-a-uuid")


def test_django_signals_fire():
    seen = []

    def receiver(signal_name):
        return lambda sender, task_result, **kwargs: seen.append((signal_name, task_result.status))

    receivers = {name: receiver(name) for name in ("enqueued", "started", "finished")}
    task_enqueued.connect(receivers["enqueued"])
    task_started.connect(receivers["started"])
    task_finished.connect(receivers["finished"])
    try:
        tasks.add.enqueue(1, 2)
        drain()
    finally:
        task_enqueued.disconnect(receivers["enqueued"])
        task_started.disconnect(receivers["started"])
        task_finished.disconnect(receivers["finished"])
    assert seen == [("enqueued", "READY"), ("started", "RUNNING"), ("finished", "SUCCESSFUL")]


def test_async_tasks_run():
    result = tasks.async_add.enqueue(1, 2)
    drain()
    assert tasks.async_add.get_result(result.id).return_value == 3


def test_progress_is_stored_and_readable():
    result = tasks.reports_progress.enqueue(3)
    drain()
    done = tasks.reports_progress.get_result(result.id)
    assert done.return_value == {"done": 3, "total": 3, "message": "step 3"}


def test_queue_and_priority_from_the_decorator():
    result = tasks.mail_task.enqueue("a@example.com")
    row = TaskRecord.objects.get(id=result.id)
    assert (row.queue_name, row.priority) == ("mail", 5)
    assert drain("default") == []
    assert [r.id for r in drain("mail")] == [result.id]


def test_higher_priority_runs_first():
    low = tasks.add.using(priority=-5).enqueue(0, 0)
    high = tasks.add.using(priority=50).enqueue(0, 1)
    assert [r.id for r in drain()] == [high.id, low.id]


@pytest.mark.parametrize(("options", "message"), [
    ({"max_retries": -1}, "max_retries"),
    ({"retry_on": ("nope",)}, "retry_on"),
    ({"retry_delay": "soon"}, "retry_delay"),
    ({"expires": "tomorrow"}, "expires"),
    ({"priority": 1000}, "priority"),
])
def test_bad_task_options_fail_at_definition(options, message):
    def task_function():
        pass

    task_function.__module__ = __name__
    task_function.__qualname__ = "task_function"
    globals()["task_function"] = task_function
    with pytest.raises(InvalidTask, match=message):
        djtask(**options)(task_function)


def test_run_after_in_the_decorator_is_refused():
    with pytest.raises(TypeError, match="run_after"):
        djtask(run_after=dt.timedelta(seconds=1))


def test_a_task_that_enqueues_another_one():
    tasks.enqueues_another.enqueue(41)
    results = drain()
    assert [r.task.name for r in results] == ["enqueues_another", "add"]
    assert results[1].return_value == 42


def test_a_return_value_that_cannot_be_stored_fails_the_task():
    result = tasks.returns_unserializable.enqueue()
    [done] = drain()
    assert done.id == result.id and done.status == TaskResultStatus.FAILED
    assert "cannot be stored" in done.errors[-1].message


def test_ignore_result_keeps_no_row_and_get_result_says_why():
    tasks.CALLS.clear()
    result = tasks.fire_and_forget.enqueue(7)
    drain()
    assert tasks.CALLS == [("fire_and_forget", 7)]
    assert not TaskRecord.objects.filter(id=result.id).exists()
    with pytest.raises(TaskResultDoesNotExist, match="ignore_result=True"):
        tasks.fire_and_forget.get_result(result.id)
    with pytest.raises(TaskResultDoesNotExist, match="ignore_result=True"):
        result.wait(timeout=1)
