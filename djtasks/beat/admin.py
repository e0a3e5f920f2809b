"""The admin of periodic tasks and their schedules.

Periodic tasks list their schedule in words, next and last run; actions
enable, disable and run them now. Edits take effect in the running beat
within a second or two. Each task's page lists its recent ticks, linked to
their results.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .. import registry
from ..exceptions import DjTasksError
from .models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    PeriodicTaskTick,
    timezone_choices,
)
from .ticker import backend_of_database, run_now

#: Ticks listed on a periodic task's page.
RECENT_TICKS = 10


class CrontabScheduleForm(forms.ModelForm):
    timezone = forms.ChoiceField(choices=timezone_choices, initial="UTC",
                                 help_text="The zone the times are in; daylight saving is followed.")

    class Meta:
        model = CrontabSchedule
        fields = ("minute", "hour", "day_of_month", "month_of_year", "day_of_week", "timezone")


@admin.register(CrontabSchedule)
class CrontabScheduleAdmin(admin.ModelAdmin):
    form = CrontabScheduleForm
    list_display = ("__str__", "expression", "timezone", "next_run")
    list_filter = ("timezone",)

    @admin.display(description="next run")
    def next_run(self, schedule: CrontabSchedule) -> str:
        return _moment(schedule.next_run())


@admin.register(IntervalSchedule)
class IntervalScheduleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "every", "period")


@admin.register(ClockedSchedule)
class ClockedScheduleAdmin(admin.ModelAdmin):
    list_display = ("__str__", "clocked_time")


class PeriodicTaskForm(forms.ModelForm):
    task = forms.ChoiceField(help_text="A task registered with @djtask (or @task) in an installed app.")

    class Meta:
        model = PeriodicTask
        fields = "__all__"

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        registry.autodiscover()
        names = registry.registered_names()
        current = self.instance.task if self.instance.pk else None
        if current and current not in names:
            names = [current, *names]  # shown, and reported as unregistered by clean()
        self.fields["task"].choices = [("", "---------"), *((name, name) for name in names)]


@admin.register(PeriodicTask)
class PeriodicTaskAdmin(admin.ModelAdmin):
    form = PeriodicTaskForm
    list_display = ("name", "enabled", "task", "schedule", "next_run", "last_run_at", "total_run_count", "one_off")
    list_filter = ("enabled", "one_off", "from_settings", "task")
    search_fields = ("name", "task", "description")
    actions = ("enable", "disable", "run_now")
    readonly_fields = ("last_run_at", "total_run_count", "date_changed", "from_settings", "next_run",
                       "recent_ticks")
    fieldsets = (
        (None, {"fields": ("name", "task", "enabled", "description", "from_settings")}),
        ("Schedule (exactly one)", {"fields": ("crontab", "interval", "clocked", "start_time", "expires",
                                               "one_off")}),
        ("Call", {"fields": ("args", "kwargs", "queue_name", "priority")}),
        ("Runs", {"fields": ("next_run", "last_run_at", "total_run_count", "date_changed", "recent_ticks")}),
    )

    def get_queryset(self, request):  # noqa: ANN001, ANN201
        return super().get_queryset(request).select_related("crontab", "interval", "clocked")

    @admin.display(description="schedule")
    def schedule(self, task: PeriodicTask) -> str:
        return task.describe_schedule()

    @admin.display(description="next run")
    def next_run(self, task: PeriodicTask) -> str:
        if task.pk is None:
            return "-"
        if not task.enabled:
            return "disabled"
        if task.expires is not None and timezone.now() >= task.expires:
            return "expired"
        return _moment(task.next_run_at())

    @admin.display(description="recent ticks")
    def recent_ticks(self, task: PeriodicTask) -> str:
        ticks = PeriodicTaskTick.objects.filter(periodic_task=task).order_by("-scheduled_at")[:RECENT_TICKS]
        rows = [(tick.scheduled_at.isoformat(sep=" ", timespec="seconds"), _result_link(tick)) for tick in ticks]
        if not rows:
            return "-"
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}: {}</li>", rows))

    @admin.action(description="Enable selected periodic tasks")
    def enable(self, request, queryset: QuerySet[PeriodicTask]) -> None:  # noqa: ANN001
        # The schedule counts from now: ticks of the disabled time are not caught up.
        count = queryset.filter(enabled=False).update(enabled=True, date_changed=timezone.now())
        self.message_user(request, f"{count} periodic task(s) enabled.", messages.SUCCESS)

    @admin.action(description="Disable selected periodic tasks")
    def disable(self, request, queryset: QuerySet[PeriodicTask]) -> None:  # noqa: ANN001
        count = queryset.filter(enabled=True).update(enabled=False, date_changed=timezone.now())
        self.message_user(request, f"{count} periodic task(s) disabled.", messages.SUCCESS)

    @admin.action(description="Run selected periodic tasks now")
    def run_now(self, request, queryset: QuerySet[PeriodicTask]) -> None:  # noqa: ANN001
        for task in queryset:
            try:
                task_id = run_now(task, backend=backend_of_database(queryset.db))
            except (DjTasksError, TypeError, ValueError) as exc:
                self.message_user(request, f"Could not enqueue {task.name!r}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Enqueued {task.name!r} as {task_id}.", messages.SUCCESS)


def _moment(value) -> str:  # noqa: ANN001 - a datetime or None
    if value is None:
        return "-"
    return timezone.localtime(value).isoformat(sep=" ", timespec="seconds")


def _result_link(tick: PeriodicTaskTick) -> str:
    if tick.task_id is None:
        return "-"
    url = reverse("admin:djtasks_taskrecord_change", args=[tick.task_id])
    return format_html('<a href="{}">{}</a>', url, str(tick.task_id))
