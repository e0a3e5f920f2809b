"""The admin of periodic tasks and schedules: list, validation, enable/disable and "run now"."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from djtasks.models import (
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTaskTick,
    TaskRecord,
)

pytestmark = pytest.mark.django_db

ADD = "tests.taskapp.tasks.add"


@pytest.fixture
def nightly() -> PeriodicTask:
    cron = CrontabSchedule.objects.create(minute="34", hour="1", timezone="Asia/Kolkata")
    return PeriodicTask.objects.create(name="nightly", task=ADD, crontab=cron, args=[1, 2])


def _action(admin_client, action: str, *tasks: PeriodicTask):
    return admin_client.post(reverse("admin:djtasks_periodictask_changelist"),
                             {"action": action, "_selected_action": [t.pk for t in tasks]}, follow=True)


def test_the_list_shows_schedule_in_words_and_next_run(admin_client, nightly):
    page = admin_client.get(reverse("admin:djtasks_periodictask_changelist")).content.decode()
    assert "at 01:34 every day, Asia/Kolkata" in page
    next_run = timezone.localtime(nightly.next_run_at()).isoformat(sep=" ", timespec="seconds")
    assert next_run in page


def test_disable_then_enable_without_catching_up_the_disabled_time(admin_client, nightly):
    _action(admin_client, "disable", nightly)
    assert PeriodicTask.objects.get(pk=nightly.pk).enabled is False
    PeriodicTask.objects.filter(pk=nightly.pk).update(date_changed=timezone.now() - dt.timedelta(days=3))
    _action(admin_client, "enable", nightly)
    enabled = PeriodicTask.objects.get(pk=nightly.pk)
    assert enabled.enabled is True
    assert enabled.due_tick(timezone.now()) is None  # the nights it was disabled are not caught up


def test_run_now_enqueues_and_the_task_page_links_the_result(admin_client, nightly):
    page = _action(admin_client, "run_now", nightly).content.decode()
    tick = PeriodicTaskTick.objects.get()
    assert f"Enqueued &#x27;nightly&#x27; as {tick.task_id}." in page
    assert TaskRecord.objects.get(id=tick.task_id).args == [1, 2]
    detail = admin_client.get(reverse("admin:djtasks_periodictask_change", args=[nightly.pk])).content.decode()
    assert reverse("admin:djtasks_taskrecord_change", args=[tick.task_id]) in detail


def test_a_crontab_with_a_bad_field_is_refused_naming_the_field(admin_client):
    form = {"minute": "61", "hour": "1", "day_of_month": "*", "month_of_year": "*", "day_of_week": "*",
            "timezone": "UTC"}
    response = admin_client.post(reverse("admin:djtasks_crontabschedule_add"), form)
    assert response.status_code == 200  # the form again, with the error
    assert "&#x27;61&#x27; is not a valid minute field" in response.content.decode()
    assert CrontabSchedule.objects.count() == 0


def test_a_periodic_task_needs_one_schedule_and_a_registered_task(admin_client):
    interval = IntervalSchedule.objects.create(every=5, period="minutes")
    cron = CrontabSchedule.objects.create()
    form = {"name": "both", "task": ADD, "crontab": cron.pk, "interval": interval.pk, "args": "[]", "kwargs": "{}",
            "enabled": "on"}
    response = admin_client.post(reverse("admin:djtasks_periodictask_add"), form)
    assert "Choose exactly one schedule" in response.content.decode()
    form.update(crontab="", task="tests.taskapp.tasks.nope")
    response = admin_client.post(reverse("admin:djtasks_periodictask_add"), form)
    assert "Select a valid choice" in response.content.decode()
    form.update(task=ADD)
    response = admin_client.post(reverse("admin:djtasks_periodictask_add"), form)
    assert response.status_code == 302
    assert PeriodicTask.objects.get(name="both").describe_schedule() == "every 5 minutes"
