"""Configuration errors found by ``manage.py check``; the ``djtasks`` management command."""

import datetime as dt
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.tasks import TaskResultStatus, task_backends
from django.test import override_settings
from django.utils import timezone

from djtasks.checks import check_sqlite_for_workers
from djtasks.models import TaskRecord
from djtasks.testing import drain
from tests.taskapp import tasks


def _backend_errors(options):
    with override_settings(TASKS={"default": {"BACKEND": "djtasks.backend.DjTasksBackend", "OPTIONS": options}}):
        return task_backends["default"].check()


@pytest.mark.parametrize(("options", "text"), [
    ({"BROKER_URL": "postgres//oops"}, "is not a URL"),
    ({"BROKER_URL": "amqp://localhost"}, "unsupported scheme 'amqp'"),
    ({"BROKR_URL": "django://default"}, "unknown option 'BROKR_URL'"),
    ({"LEASE_SECONDS": 0}, "must be a positive number"),
])
def test_bad_options_are_reported_with_a_hint(options, text):
    [error] = _backend_errors(options)
    assert text in error.msg
    assert error.id == "djtasks.E001"
    assert "BROKER_URL" in error.hint


def test_good_options_pass():
    assert _backend_errors({"BROKER_URL": "django://default", "LEASE_SECONDS": 30}) == []


def test_a_broker_on_an_unknown_database_is_reported():
    with override_settings(TASKS={"default": {"BACKEND": "djtasks.backend.DjTasksBackend",
                                              "OPTIONS": {"BROKER_URL": "django://nowhere"}}}):
        [error] = check_sqlite_for_workers()
    assert error.id == "djtasks.E002"


@pytest.mark.filterwarnings("ignore:Overriding setting DATABASES")
def test_sqlite_without_immediate_transactions_is_warned_about():
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    backend = {"BACKEND": "djtasks.backend.DjTasksBackend", "OPTIONS": {"BROKER_URL": "django://default"}}
    with override_settings(DATABASES={"default": database}, TASKS={"default": backend}):
        [warning] = check_sqlite_for_workers()
    assert warning.id == "djtasks.W001"
    assert "IMMEDIATE" in warning.hint


@pytest.mark.django_db
def test_status_shows_queues_and_last_failures():
    tasks.add.enqueue(1, 1)
    tasks.mail_task.apply_async(args=("x@example.com",), countdown=600)
    tasks.fail.enqueue("the reason")
    drain("default")
    tasks.add.enqueue(2, 2)
    out = StringIO()
    call_command("djtasks", "status", stdout=out)
    lines = out.getvalue().splitlines()
    assert any(line.split() == ["default", "1", "0", "0"] for line in lines)
    assert any(line.split() == ["mail", "0", "1", "0"] for line in lines)
    assert any("tests.taskapp.tasks.fail" in line and "builtins.ValueError: the reason" in line for line in lines)


@pytest.mark.django_db
def test_cleanup_deletes_old_finished_rows_only():
    old, recent = tasks.add.enqueue(1, 1), tasks.add.enqueue(2, 2)
    waiting = tasks.add.enqueue(3, 3)
    drain()
    TaskRecord.objects.filter(id=old.id).update(finished_at=timezone.now() - dt.timedelta(days=8))
    TaskRecord.objects.filter(id=waiting.id).update(status=TaskResultStatus.READY, finished_at=None)
    out = StringIO()
    call_command("djtasks", "cleanup", "--older-than", "7d", stdout=out)
    assert "deleted 1" in out.getvalue()
    assert set(TaskRecord.objects.values_list("id", flat=True)) == {
        TaskRecord.objects.get(id=recent.id).id, TaskRecord.objects.get(id=waiting.id).id}


def test_cleanup_needs_an_age():
    with pytest.raises(CommandError, match="older-than"):
        call_command("djtasks", "cleanup")
    with pytest.raises(CommandError, match="not a duration"):
        call_command("djtasks", "cleanup", "--older-than", "soon")


@pytest.mark.django_db
def test_purge_drops_waiting_tasks_of_one_queue():
    for n in range(3):
        tasks.mail_task.enqueue(f"{n}@example.com")
    kept = tasks.add.enqueue(1, 1)
    out = StringIO()
    call_command("djtasks", "purge", "mail", stdout=out)
    assert "purged 3" in out.getvalue()
    assert [r.id for r in drain()] == [kept.id]


@pytest.mark.django_db
def test_retry_enqueues_a_finished_task_again():
    failed = tasks.fail.enqueue("again")
    drain()
    out = StringIO()
    call_command("djtasks", "retry", failed.id, stdout=out)
    new_id = out.getvalue().split()[-1]
    assert TaskRecord.objects.get(id=new_id).args == ["again"]
    with pytest.raises(CommandError, match="only finished tasks"):
        call_command("djtasks", "retry", new_id)
