"""System checks of ``OPTIONS["BEAT_SCHEDULE"]``: its format, and that its tasks are registered."""

from __future__ import annotations

from typing import Any

from django.core import checks

HINT = ("Each entry: {'task': 'app.tasks.name', 'schedule': '*/5 * * * *' or timedelta(minutes=5), ...}; "
        "see 'Periodic tasks' in djtasks' README.")


@checks.register()
def check_beat_schedule(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Report a malformed ``BEAT_SCHEDULE`` entry, or one naming a task that is not registered."""
    from django.tasks import task_backends

    from .. import registry
    from ..backend import DjTasksBackend
    from ..exceptions import ConfigurationError, UnknownTaskError
    from .declared import parse_beat_schedule

    messages: list[checks.CheckMessage] = []
    for backend in task_backends.all():
        if not isinstance(backend, DjTasksBackend):
            continue
        where = f"TASKS[{backend.alias!r}]"
        try:
            schedule = backend.config.beat_schedule
        except ConfigurationError:
            continue  # reported by the backend's own check
        try:
            declared = parse_beat_schedule(schedule)
        except ConfigurationError as exc:
            messages.append(checks.Error(str(exc), hint=HINT, obj=where, id="djtasks.E010"))
            continue
        for entry in declared:
            try:
                registry.lookup(entry.task)
            except UnknownTaskError as exc:
                messages.append(checks.Error(
                    f"OPTIONS['BEAT_SCHEDULE'][{entry.name!r}] names task {entry.task!r}: {exc}.",
                    hint="Give the dotted path of a function decorated with @djtask in an installed app.",
                    obj=where, id="djtasks.E011"))
    return messages
