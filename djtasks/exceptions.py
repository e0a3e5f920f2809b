"""The errors djtasks raises: a small tree under :class:`DjTasksError`."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured


class DjTasksError(Exception):
    """Base class of every error raised by djtasks."""


class ConfigurationError(DjTasksError, ImproperlyConfigured):
    """The ``TASKS`` settings are wrong (bad broker URL, unknown option, ...)."""


class SerializationError(DjTasksError, TypeError):
    """A task argument or return value cannot be encoded in a message."""


class MessageDecodeError(DjTasksError, ValueError):
    """A message body cannot be decoded into an envelope."""


class UnknownTaskError(DjTasksError, LookupError):
    """A message names a task that is not registered in this process."""


class BrokerError(DjTasksError):
    """The broker could not be reached or refused an operation."""


class TaskExpired(DjTasksError):
    """The task was not started before its ``expires`` deadline; it did not run."""


class TaskFailed(DjTasksError):
    """A task ended FAILED; raised by :meth:`DjTaskResult.wait`.

    ``exception_class_path`` names the error raised inside the task,
    ``remote_traceback`` holds its traceback as formatted by the worker.
    When that error class can be imported, the raised exception is also an
    instance of it, so ``except ValueError`` works as it would inline.
    """

    exception_class_path: str = ""
    remote_traceback: str = ""
    task_id: str = ""

    def __str__(self) -> str:
        message = super().__str__()
        return f"{message}\n\nRemote traceback:\n{self.remote_traceback}" if self.remote_traceback else message


class Retry(DjTasksError):
    """Raised by ``context.retry()`` to ask the worker to run the task again.

    Not an error of the task: the worker records the attempt and schedules
    the next one.
    """

    def __init__(self, countdown: float | None = None, exc: BaseException | None = None) -> None:
        super().__init__(f"retry requested (countdown={countdown!r})")
        self.countdown = countdown
        self.exc = exc


class MaxRetriesExceeded(DjTasksError):
    """``context.retry()`` was called on the last allowed attempt."""


class SoftTimeLimitExceeded(Exception):  # noqa: N818 - the name Celery users know
    """Raised inside a task that ran past its ``soft_time_limit``; it may catch it and clean up."""


class TimeLimitExceeded(DjTasksError):  # noqa: N818 - the name Celery users know
    """A task ran past its hard ``time_limit`` and was stopped (its process killed)."""


class WorkerLostError(DjTasksError):
    """The process running a task died (killed, crashed or out of memory) before the task finished."""


class TaskRevoked(BaseException):
    """A task was revoked: never started, or stopped while it ran (``revoke --terminate``).

    A ``BaseException``, like ``KeyboardInterrupt``, so that a task's broad
    ``except Exception`` does not swallow the stop.
    """
