"""Access to the active contestant's task module.

Each ``tasks_<contestant>`` module defines the task ``noop(tag, enqueued_at)``
with that contestant's decorator, plus the functions of :class:`TasksModule`
used by the ``bench_enqueue`` and ``bench_status`` commands.
"""

from collections.abc import Sequence
from importlib import import_module
from importlib.util import find_spec
from types import ModuleType
from typing import Protocol, cast

from django.conf import settings


class TasksModule(Protocol):
    """What a ``tasks_<contestant>`` module offers."""

    def enqueue_one(self, tag: str, enqueued_at: float) -> None:
        """Enqueue one task, one call, the way a user would."""

    def enqueue_one_nores(self, tag: str, enqueued_at: float) -> None:
        """Enqueue one fire-and-forget task (no result kept), one call."""

    def enqueue_many(self, items: Sequence[tuple[str, float]]) -> None:
        """Enqueue many tasks in bulk (raises ``NotImplementedError`` if unsupported)."""

    def enqueue_many_nores(self, items: Sequence[tuple[str, float]]) -> None:
        """Enqueue many fire-and-forget tasks in bulk (raises ``NotImplementedError`` if unsupported)."""

    def count_results(self) -> dict[str, int]:
        """Count the stored results, by final state (``succeeded``, ``failed``, ``other``)."""


def tasks_module() -> TasksModule:
    """Import and return the task module named by ``settings.BENCH_TASKS_MODULE``."""
    return cast(TasksModule, import_module(settings.BENCH_TASKS_MODULE))


def engine_module() -> ModuleType | None:
    """Import and return ``benchapp.engine_<contestant>`` (the worker-engine tasks), None if it has none."""
    name = f"benchapp.engine_{settings.BENCH_CONTESTANT}"
    return import_module(name) if find_spec(name) is not None else None
