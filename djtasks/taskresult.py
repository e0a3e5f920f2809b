"""The value objects a caller holds: result, error and context of a task."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.tasks import TaskContext, TaskResult, TaskResultStatus
from django.tasks.base import TaskError
from django.utils.module_loading import import_string

from .exceptions import Retry, TaskFailed

#: Seconds between the first polls of ``wait()``; doubles up to the maximum.
WAIT_FIRST_POLL_SECONDS = 0.005
WAIT_MAX_POLL_SECONDS = 0.25


@dataclass(frozen=True, slots=True, kw_only=True)
class DjTaskError(TaskError):
    """A failed attempt: Django's ``TaskError`` plus the error message."""

    message: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DjTaskResult(TaskResult):
    """A ``django.tasks.TaskResult`` that can also wait for its task."""

    progress: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # Arguments are already decoded values (datetime, Decimal, ...), which
        # Django's JSON normalisation would reject.
        pass

    def refresh(self) -> None:
        """Reload status, result, errors and progress from the result store."""
        if getattr(self.task, "ignore_result", False):
            self.task.check_results_kept()
        fresh = self.task.get_backend().get_result(self.id)
        for name in ("status", "_return_value", "errors", "enqueued_at", "started_at", "finished_at",
                     "last_attempted_at", "worker_ids", "progress"):
            object.__setattr__(self, name, getattr(fresh, name))

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the task finished; return its value.

        Raise the task's error (a :class:`TaskFailed`, which is also an
        instance of the original class when that can be imported) if it
        failed, and ``TimeoutError`` if it has not finished in ``timeout``
        seconds.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = WAIT_FIRST_POLL_SECONDS
        while not self.is_finished:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"task {self.task.module_path} [{self.id}] did not finish within {timeout} s")
            time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))
            pause = min(pause * 2, WAIT_MAX_POLL_SECONDS)
            self.refresh()
        if self.status == TaskResultStatus.FAILED:
            raise remote_error(self)
        return self.return_value


def remote_error(result: TaskResult) -> TaskFailed:
    """Build the exception that ``wait()`` raises for a failed task."""
    error = result.errors[-1] if result.errors else None
    path = error.exception_class_path if error else "djtasks.exceptions.TaskFailed"
    message = getattr(error, "message", "") or f"task {result.task.module_path} [{result.id}] failed"
    cls = _failure_class(path)
    exc = cls.__new__(cls)
    exc.args = (message,)
    exc.exception_class_path = path
    exc.remote_traceback = error.traceback if error else ""
    exc.task_id = result.id
    return exc


def _failure_class(path: str) -> type[TaskFailed]:
    try:
        original = import_string(path)
        if isinstance(original, type) and issubclass(original, Exception) and not issubclass(original, TaskFailed):
            return type(original.__name__, (TaskFailed, original), {"__module__": original.__module__,
                                                                    "__str__": TaskFailed.__str__})
    except (ImportError, TypeError):
        pass
    return TaskFailed


@dataclass(frozen=True, slots=True, kw_only=True)
class DjTaskContext(TaskContext):
    """What a ``takes_context=True`` task receives as its first argument."""

    progress_callback: Callable[[int, int | None, str | None], None] | None = field(default=None, repr=False)
    attempt_number: int = 0

    @property
    def attempt(self) -> int:
        """This attempt's number, counted from 1 (re-deliveries after a crash count too)."""
        return self.attempt_number or max(1, self.task_result.attempts)

    def retry(self, countdown: float | None = None, exc: BaseException | None = None) -> None:
        """Stop this attempt and run the task again in ``countdown`` seconds.

        If the task has used its ``max_retries``, it fails with ``exc``
        instead. Never returns.
        """
        raise Retry(countdown=countdown, exc=exc)

    def set_progress(self, done: int, total: int | None = None, message: str | None = None) -> None:
        """Record how far the task got; visible through ``get_result()`` and the admin."""
        progress = {"done": done, "total": total, "message": message}
        object.__setattr__(self.task_result, "progress", progress)
        if self.progress_callback is not None:
            self.progress_callback(done, total, message)
