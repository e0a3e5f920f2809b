"""``DjTask``, a ``django.tasks.Task`` with the options Celery users expect, and ``@djtask``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from inspect import iscoroutinefunction
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync, sync_to_async
from django.db import transaction
from django.tasks import (
    DEFAULT_TASK_BACKEND_ALIAS,
    DEFAULT_TASK_QUEUE_NAME,
    Task,
    TaskResultStatus,
)
from django.tasks.base import DEFAULT_TASK_PRIORITY
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.utils import timezone

from . import registry
from .ratelimit.rates import parse_rate
from .retry import RetryPolicy
from .taskresult import DjTaskContext, DjTaskResult

if TYPE_CHECKING:
    from .backend import DjTasksBackend

#: ``run_after`` and ``expires`` may be given as a moment, a delay, or seconds of delay.
When = dt.datetime | dt.timedelta | float | int


@dataclass(frozen=True, slots=True, kw_only=True)
class DjTask(Task):
    """A task with retries, expiry and the Celery-style calling API.

    ``run_after`` may also be a ``timedelta`` (or seconds), counted from the
    moment of each ``enqueue()``.
    """

    #: Runs allowed after the first failed one.
    max_retries: int = 0
    #: Exception classes that cause a retry (while retries remain).
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    #: Seconds before a retry; with backoff, the delay of the first retry.
    retry_delay: float = 1.0
    #: ``True`` doubles the delay each retry; a number also sets the first delay in seconds.
    retry_backoff: bool | float = False
    #: Cap of the backoff delay, in seconds.
    retry_backoff_max: float = 600.0
    #: Spread retry delays randomly (between half and all of the delay).
    retry_jitter: bool = True
    #: A task not started this long after enqueue (or by this moment) does not run.
    expires: When | None = None
    #: Fire and forget: no result row is kept, and ``get_result`` raises.
    ignore_result: bool = False
    #: Seconds after which the task is stopped hard (prefork: its process is killed).
    time_limit: float | None = None
    #: Seconds after which ``SoftTimeLimitExceeded`` is raised inside the task.
    soft_time_limit: float | None = None
    #: At most this often across all workers, e.g. ``"100/m"``; over it, tasks wait.
    rate_limit: str | None = None
    #: Extra envelope headers of the next enqueues (e.g. the periodic task that sent them).
    headers: dict[str, Any] | None = None
    #: Whether the function is an ``async def`` one (as ``django.tasks`` decides it), worked out once.
    is_coroutine: bool = field(init=False, default=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_options(self)
        super(DjTask, self).__post_init__()
        object.__setattr__(self, "is_coroutine", iscoroutinefunction(self.func))
        registry.register(self)

    def call(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function in this thread, an ``async def`` one to its end, as ``django.tasks`` does."""
        if self.is_coroutine:
            return async_to_sync(self.func)(*args, **kwargs)
        return self.func(*args, **kwargs)

    async def acall(self, *args: Any, **kwargs: Any) -> Any:
        """Await the function, a plain one in a thread, as ``django.tasks`` does."""
        if self.is_coroutine:
            return await self.func(*args, **kwargs)
        return await sync_to_async(self.func)(*args, **kwargs)

    # -- running inline ----------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the task in this process, like a plain function call."""
        if self.takes_context:
            result = DjTaskResult(task=self, id="inline", status=TaskResultStatus.RUNNING, enqueued_at=None,
                                  started_at=timezone.now(), finished_at=None, last_attempted_at=timezone.now(),
                                  args=list(args), kwargs=dict(kwargs), backend=self.backend, errors=[],
                                  worker_ids=["inline"])
            return self.call(DjTaskContext(task_result=result), *args, **kwargs)
        return self.call(*args, **kwargs)

    # -- enqueueing --------------------------------------------------------

    def using(self, *, priority: int | None = None, queue_name: str | None = None, run_after: When | None = None,
              backend: str | None = None, expires: When | None = None,
              headers: dict[str, Any] | None = None) -> DjTask:
        """Return a copy with other defaults for the next ``enqueue()``."""
        changes: dict[str, Any] = {}
        for name, value in (("priority", priority), ("queue_name", queue_name), ("run_after", run_after),
                            ("backend", backend), ("expires", expires), ("headers", headers)):
            if value is not None:
                changes[name] = value
        return replace(self, **changes)

    def delay(self, *args: Any, **kwargs: Any) -> DjTaskResult:
        """Celery-style alias of :meth:`enqueue`."""
        return self.enqueue(*args, **kwargs)

    def apply_async(self, args: Sequence[Any] | None = None, kwargs: Mapping[str, Any] | None = None, *,
                    countdown: float | None = None, eta: dt.datetime | None = None, expires: When | None = None,
                    queue: str | None = None, priority: int | None = None) -> DjTaskResult:
        """Enqueue with per-call options, as Celery's ``apply_async``."""
        if countdown is not None and eta is not None:
            raise InvalidTask("Pass countdown or eta, not both.")
        run_after = eta if eta is not None else (dt.timedelta(seconds=countdown) if countdown is not None else None)
        task = self.using(run_after=run_after, expires=expires, queue_name=queue, priority=priority)
        return task.enqueue(*(args or ()), **(kwargs or {}))

    def enqueue_many(self, calls: Iterable[Sequence[Any] | Mapping[str, Any]]) -> list[DjTaskResult]:
        """Enqueue many calls in one round trip.

        Each item is the positional arguments (a tuple or list) or the
        keyword arguments (a dict) of one call.
        """
        batch = [((), dict(call)) if isinstance(call, Mapping) else (tuple(call), {}) for call in calls]
        return self.get_backend().enqueue_many(self, batch)

    def enqueue_on_commit(self, *args: Any, **kwargs: Any) -> None:
        """Enqueue when the current transaction commits (at once outside one).

        The arguments are checked now, so a mistake fails here, not later.
        """
        backend: DjTasksBackend = self.get_backend()
        backend.validate_call(self, args, kwargs)
        transaction.on_commit(lambda: self.enqueue(*args, **kwargs), using=backend.config.results_database)

    def get_result(self, result_id: str) -> DjTaskResult:
        """The result of call ``result_id``, from any process."""
        self.check_results_kept()
        return super(DjTask, self).get_result(result_id)

    async def aget_result(self, result_id: str) -> DjTaskResult:
        self.check_results_kept()
        return await super(DjTask, self).aget_result(result_id)

    def check_results_kept(self) -> None:
        """Raise ``TaskResultDoesNotExist`` for a task whose results are not stored."""
        if self.ignore_result:
            raise TaskResultDoesNotExist(f"Task {self.module_path} is declared with ignore_result=True: "
                                         "its results are not stored.")

    @property
    def retry_policy(self) -> RetryPolicy:
        backoff = self.retry_backoff
        base = float(backoff) if not isinstance(backoff, bool) else self.retry_delay
        return RetryPolicy(max_retries=self.max_retries, retry_on=self.retry_on, retry_delay_seconds=base,
                           retry_backoff=bool(backoff), retry_backoff_max_seconds=self.retry_backoff_max,
                           retry_jitter=self.retry_jitter)


def _check_options(task: DjTask) -> None:
    where = f"Task {task.func.__module__}.{task.func.__qualname__}"
    if isinstance(task.max_retries, bool) or not isinstance(task.max_retries, int) or task.max_retries < 0:
        raise InvalidTask(f"{where}: max_retries must be a whole number >= 0, not {task.max_retries!r}.")
    retry_on = task.retry_on if isinstance(task.retry_on, tuple) else (task.retry_on,)
    if not all(isinstance(cls, type) and issubclass(cls, BaseException) for cls in retry_on):
        raise InvalidTask(f"{where}: retry_on must be exception classes, not {task.retry_on!r}.")
    object.__setattr__(task, "retry_on", retry_on)
    for name in ("retry_delay", "retry_backoff_max"):
        value = getattr(task, name)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise InvalidTask(f"{where}: {name} must be a number of seconds >= 0, not {value!r}.")
    if task.rate_limit is not None:
        try:
            parse_rate(task.rate_limit)
        except ValueError as exc:
            raise InvalidTask(f"{where}: {exc}") from None
    for name in ("time_limit", "soft_time_limit"):
        value = getattr(task, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
            raise InvalidTask(f"{where}: {name} must be a positive number of seconds, not {value!r}.")
    for name in ("run_after", "expires"):
        value = getattr(task, name)
        valid = isinstance(value, dt.datetime | dt.timedelta | int | float) and not isinstance(value, bool)
        if value is not None and not valid:
            raise InvalidTask(f"{where}: {name} must be a datetime, a timedelta or seconds, not {value!r}.")


def djtask(function: Callable[..., Any] | None = None, *, priority: int = DEFAULT_TASK_PRIORITY,
           queue_name: str = DEFAULT_TASK_QUEUE_NAME, backend: str = DEFAULT_TASK_BACKEND_ALIAS,
           takes_context: bool = False, **options: Any) -> Any:
    """Make a function a task; use bare (``@djtask``) or with options.

    Options: ``queue_name``, ``priority``, ``takes_context``, ``backend``,
    ``max_retries``, ``retry_on``, ``retry_delay``, ``retry_backoff``,
    ``retry_backoff_max``, ``retry_jitter``, ``expires``, ``ignore_result``,
    ``time_limit``, ``soft_time_limit``, ``rate_limit``.
    """
    if "run_after" in options:
        raise TypeError("run_after cannot be set in @djtask; use .using(run_after=...) or apply_async(countdown=...).")

    def wrap(func: Callable[..., Any]) -> DjTask:
        return DjTask(func=func, priority=priority, queue_name=queue_name, backend=backend,
                      takes_context=takes_context, **options)

    return wrap(function) if function is not None else wrap
