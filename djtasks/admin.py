"""The admin of result rows: list with filters and search, detail with arguments, result and traceback.

Above the list, the depth of each queue (ready, scheduled, reserved) as the
brokers count them.

Rows are read-only here: the worker owns them, and on the ORM broker a row
that has not finished is also the queued message. Old rows are removed with
``manage.py djtasks cleanup``.
"""

from __future__ import annotations

import json

from django.contrib import admin
from django.db import router
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from .beat import admin as beat_admin  # noqa: F401 - registers the periodic task admins
from .models import TaskRecord
from .queue_depths import queues_of_backends

#: Colour of each status in the list and on the detail page.
STATUS_COLOURS = {"READY": "#6c757d", "RUNNING": "#0d6efd", "SUCCESSFUL": "#198754", "FAILED": "#dc3545"}


def _pretty(value: object) -> str:
    """JSON on one line when short, indented otherwise; non-ASCII text kept as is."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    if len(text) > 80:
        text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return text


@admin.register(TaskRecord)
class TaskRecordAdmin(admin.ModelAdmin):
    list_display = ("task_path", "coloured_status", "queue_name", "attempts", "enqueued_at", "finished_at",
                    "duration", "short_id")
    list_filter = ("status", "queue_name", "task_path")
    search_fields = ("=id", "task_path", "queue_name")
    search_help_text = "Part of a task name or queue, or a whole task id."
    date_hierarchy = "enqueued_at"
    ordering = ("-enqueued_at",)
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) of a large table on every page load is slow
    readonly_fields = ("id", "task_path", "backend", "queue_name", "priority", "coloured_status", "enqueued_at",
                       "run_after", "started_at", "finished_at", "last_attempted_at", "expires_at", "duration",
                       "attempts", "delivery_count", "worker_list", "arguments", "result", "progress_text",
                       "last_error", "error_history")
    fieldsets = (
        (None, {"fields": ("id", "task_path", "coloured_status", "queue_name", "priority", "backend")}),
        ("Call", {"fields": ("arguments", "result", "progress_text")}),
        ("Failure", {"fields": ("last_error", "error_history")}),
        ("Times", {"fields": ("enqueued_at", "run_after", "expires_at", "started_at", "last_attempted_at",
                              "finished_at", "duration")}),
        ("Workers", {"fields": ("attempts", "delivery_count", "worker_list")}),
    )

    def changelist_view(self, request, extra_context=None):  # noqa: ANN001, ANN201
        # A callable: asked only when the page renders, after the permission checks.
        depths = {"queue_depths": lambda: queues_of_backends(router.db_for_read(TaskRecord), timezone.now())}
        return super().changelist_view(request, {**(extra_context or {}), **depths})

    def get_queryset(self, request):  # noqa: ANN001, ANN201
        # The encoded message duplicates the shown columns and can be large: never load it here.
        return super().get_queryset(request).defer("message")

    # Read-only: viewing needs the "view" (or "change") permission; nobody adds, edits or deletes.
    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    def has_delete_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

    @admin.display(description="status", ordering="status")
    def coloured_status(self, row: TaskRecord) -> str:
        return format_html('<strong style="color: {}">{}</strong>', STATUS_COLOURS.get(row.status, "inherit"),
                           row.get_status_display())

    @admin.display(description="duration")
    def duration(self, row: TaskRecord) -> str:
        """Run time of the last attempt (earlier attempts and retry delays not included)."""
        started = row.last_attempted_at or row.started_at
        if not (started and row.finished_at):
            return "-"
        seconds = max((row.finished_at - started).total_seconds(), 0.0)
        return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"

    @admin.display(description="id")
    def short_id(self, row: TaskRecord) -> str:
        return str(row.id)[:8]

    @admin.display(description="arguments")
    def arguments(self, row: TaskRecord) -> str:
        return format_html("<pre>{}</pre>", _pretty({"args": row.args, "kwargs": row.kwargs}))

    @admin.display(description="return value")
    def result(self, row: TaskRecord) -> str:
        return format_html("<pre>{}</pre>", _pretty(row.return_value)) if row.status == "SUCCESSFUL" else "-"

    @admin.display(description="progress")
    def progress_text(self, row: TaskRecord) -> str:
        if not row.progress:
            return "-"
        done, total, message = row.progress.get("done"), row.progress.get("total"), row.progress.get("message")
        text = f"{done}/{total}" if total else f"{done}"
        if message:
            text += f" - {message}"
        if not total:
            return text
        return format_html('<progress value="{}" max="{}"></progress> {}', done, total, text)

    @admin.display(description="deliveries")
    def delivery_count(self, row: TaskRecord) -> str:
        """Times the ORM broker handed the task out; the Redis broker counts them in the message instead."""
        return str(row.deliveries) if row.deliveries or not row.attempts else "-"

    @admin.display(description="workers")
    def worker_list(self, row: TaskRecord) -> str:
        return ", ".join(row.worker_ids or []) or "-"

    @admin.display(description="last error")
    def last_error(self, row: TaskRecord) -> str:
        error = row.last_error
        if not error:
            return "-"
        return format_html("<strong>{}: {}</strong> (attempt {}, {})<pre>{}</pre>",
                           error.get("exception_class_path"), error.get("message", ""), error.get("attempt"),
                           error.get("at"), error.get("traceback", ""))

    @admin.display(description="earlier attempts")
    def error_history(self, row: TaskRecord) -> str:
        earlier = (row.errors or [])[:-1]
        if not earlier:
            return "-"
        return format_html_join(
            "", "<details><summary>attempt {} at {}: {}: {}</summary><pre>{}</pre></details>",
            ((e.get("attempt"), e.get("at"), e.get("exception_class_path"), e.get("message"),
              e.get("traceback", "")) for e in earlier))
