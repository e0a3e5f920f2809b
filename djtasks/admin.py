"""The admin of result rows: list with filters and search, detail with arguments, result and traceback."""

from __future__ import annotations

import json

from django.contrib import admin
from django.utils.html import format_html

from .models import TaskRecord


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


@admin.register(TaskRecord)
class TaskRecordAdmin(admin.ModelAdmin):
    list_display = ("task_path", "status", "queue_name", "priority", "attempts", "enqueued_at", "finished_at",
                    "short_id")
    list_filter = ("status", "queue_name", "task_path")
    search_fields = ("=id", "task_path", "queue_name")
    date_hierarchy = "enqueued_at"
    ordering = ("-enqueued_at",)
    list_per_page = 50
    show_full_result_count = False  # COUNT(*) of a large table on every page load is slow
    readonly_fields = ("id", "task_path", "backend", "queue_name", "priority", "status", "enqueued_at", "run_after",
                       "started_at", "finished_at", "last_attempted_at", "expires_at", "attempts", "worker_list",
                       "arguments", "result", "progress_text", "last_error", "error_history")
    fieldsets = (
        (None, {"fields": ("id", "task_path", "status", "queue_name", "priority", "backend")}),
        ("Call", {"fields": ("arguments", "result", "progress_text")}),
        ("Failure", {"fields": ("last_error", "error_history")}),
        ("Times", {"fields": ("enqueued_at", "run_after", "expires_at", "started_at", "last_attempted_at",
                              "finished_at")}),
        ("Workers", {"fields": ("attempts", "worker_list")}),
    )

    def has_add_permission(self, request) -> bool:  # noqa: ANN001
        return False

    def has_change_permission(self, request, obj=None) -> bool:  # noqa: ANN001
        return False

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
        return f"{done}/{total}" + (f" - {message}" if message else "")

    @admin.display(description="workers")
    def worker_list(self, row: TaskRecord) -> str:
        return ", ".join(row.worker_ids or []) or "-"

    @admin.display(description="last error")
    def last_error(self, row: TaskRecord) -> str:
        error = row.last_error
        if not error:
            return "-"
        return format_html("<strong>{}: {}</strong><pre>{}</pre>", error.get("exception_class_path"),
                           error.get("message", ""), error.get("traceback", ""))

    @admin.display(description="earlier attempts")
    def error_history(self, row: TaskRecord) -> str:
        earlier = (row.errors or [])[:-1]
        if not earlier:
            return "-"
        return format_html("<pre>{}</pre>", "\n".join(
            f"attempt {e.get('attempt')} at {e.get('at')}: {e.get('exception_class_path')}: {e.get('message')}"
            for e in earlier))
