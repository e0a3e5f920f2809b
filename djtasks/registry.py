"""Dotted task name -> task. Only tasks registered here ever run in a worker."""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING

from django.apps import apps

from .exceptions import UnknownTaskError

if TYPE_CHECKING:
    from django.tasks import Task

_tasks: dict[str, Task] = {}
_rate_limited = False  # some registered task has a rate limit


def register(task: Task) -> None:
    """Record ``task`` under its dotted path; the first definition wins.

    ``Task.using()`` makes modified copies; they must not replace the task
    defined by the decorator.
    """
    global _rate_limited
    _tasks.setdefault(task.module_path, task)
    _rate_limited = _rate_limited or bool(getattr(task, "rate_limit", None))


def lookup(path: str) -> Task:
    """Return the task registered as ``path``.

    A task module of an installed app that was not imported yet is imported
    once; a path outside installed apps is never imported.
    """
    task = _tasks.get(path)
    if task is not None:
        return task
    module_name = path.rpartition(".")[0]
    if module_name and _belongs_to_installed_app(module_name):
        try:
            importlib.import_module(module_name)
        except ImportError as exc:
            raise UnknownTaskError(
                f"task {path!r} is not registered (importing {module_name!r} failed: {exc})") from exc
        task = _tasks.get(path)
        if task is not None:
            return task
    raise UnknownTaskError(f"task {path!r} is not registered in this worker")


def has_rate_limits() -> bool:
    """Whether any registered task has a rate limit (the worker skips the check otherwise)."""
    return _rate_limited


def registered_names() -> list[str]:
    """The dotted paths of all registered tasks, sorted."""
    return sorted(_tasks)


def autodiscover() -> None:
    """Import the ``tasks`` module of every installed app that has one."""
    for config in apps.get_app_configs():
        name = f"{config.name}.tasks"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name)


def _belongs_to_installed_app(module_name: str) -> bool:
    return any(module_name == c.name or module_name.startswith(c.name + ".") for c in apps.get_app_configs())
