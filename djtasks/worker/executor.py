"""Run ONE delivered message and say how it ended. All worker hygiene lives here.

The executor never writes results or talks to the broker: it returns a
:class:`Completion`, which the supervisor writes in a batch and acks. So it
can run in any pool (a thread, a forked child, a greenlet).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.tasks import TaskResultStatus
from django.tasks.signals import task_finished, task_started
from django.utils import timezone

from .. import messages, registry
from ..brokers import Delivery
from ..exceptions import (
    DjTasksError,
    MaxRetriesExceeded,
    Retry,
    TaskExpired,
    TaskRevoked,
)
from ..models import CANCELLED
from ..results import ErrorInfo, Outcome, ResultStore
from ..task import DjTask
from ..taskresult import DjTaskContext, DjTaskError, DjTaskResult
from .deliveries import take_envelope, task_of
from .timelimits import async_time_limits, time_limits

logger = logging.getLogger("djtasks.worker")


@dataclass(frozen=True, slots=True, kw_only=True)
class Completion:
    """The end of one delivery: what to record, and how to settle the message."""

    delivery: Delivery
    outcome: Outcome
    task_path: str
    duration_seconds: float
    #: For a retry: the message to deliver again at ``outcome.retry_at``.
    retry_body: bytes | None = None
    #: False for a task declared ``ignore_result=True``.
    store_result: bool = True


def error_info(error: BaseException) -> ErrorInfo:
    cls = type(error)
    return ErrorInfo(exception_class_path=f"{cls.__module__}.{cls.__qualname__}", message=str(error),
                     traceback="".join(traceback.format_exception(error)))


class Executor:
    """Runs deliveries for one backend, as worker ``worker_id``."""

    def __init__(self, *, backend: Any, worker_id: str, clock: Any = timezone.now,
                 time_limit: float | None = None, soft_time_limit: float | None = None) -> None:
        self.backend = backend
        #: "Now" for expiry decisions; the supervisor's clock, which tests may move ahead.
        self.clock = clock
        self.worker_id = worker_id
        self.results: ResultStore = backend.results
        #: Worker-wide defaults for tasks that set no limits of their own.
        self.time_limit = time_limit
        self.soft_time_limit = soft_time_limit
        #: Whether the hard limit is raised in the task; the prefork pool kills the child instead.
        self.hard_limit_in_process = True

    def limits(self, task: DjTask) -> tuple[float | None, float | None]:
        """(soft, hard) time limits of ``task`` in seconds: its own, else the worker's."""
        return (task.soft_time_limit or self.soft_time_limit, task.time_limit or self.time_limit)

    def limits_of(self, delivery: Delivery) -> tuple[float | None, float | None]:
        """The time limits of the task a delivery names; none if it cannot be decoded."""
        task = task_of(delivery)
        return self.limits(task) if isinstance(task, DjTask) else (None, None)

    def lost(self, delivery: Delivery, error: BaseException, duration_seconds: float) -> Completion:
        """The completion of a run cut short from outside (its process died or was killed).

        The task's retry policy decides whether it runs again.
        """
        attempt = max(1, delivery.deliveries)
        try:
            envelope = messages.decode(delivery.body)
            task = registry.lookup(envelope.task)
        except DjTasksError:
            outcome = Outcome(task_id=delivery.id, status=TaskResultStatus.FAILED, at=timezone.now(),
                              attempt=attempt, error=error_info(error))
            return Completion(delivery=delivery, outcome=outcome, task_path="?", duration_seconds=duration_seconds)
        outcome, retry_body = self._failure(delivery, envelope, task, error, attempt)
        return Completion(delivery=delivery, outcome=outcome, task_path=envelope.task,
                          duration_seconds=duration_seconds, retry_body=retry_body,
                          store_result=not task.ignore_result)

    def __call__(self, delivery: Delivery) -> Completion:
        started = time.monotonic()
        try:
            return self._execute(delivery, started)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - whatever breaks, the message gets an outcome
            return self._broken(delivery, exc, started)

    def _broken(self, delivery: Delivery, exc: BaseException, started: float) -> Completion:
        logger.exception("djtasks could not run message %s", delivery.id, extra={"task_id": delivery.id})
        outcome = Outcome(task_id=delivery.id, status=TaskResultStatus.FAILED, at=timezone.now(),
                          attempt=max(1, delivery.deliveries), error=error_info(exc))
        return Completion(delivery=delivery, outcome=outcome, task_path="?",
                          duration_seconds=time.monotonic() - started)

    def _execute(self, delivery: Delivery, started: float) -> Completion:
        prepared = self._prepare(delivery, started)
        if isinstance(prepared, Completion):
            return prepared
        envelope, task, args, kwargs = prepared
        outcome, retry_body = self._run(delivery, envelope, task, args, kwargs, max(1, delivery.deliveries))
        return Completion(delivery=delivery, outcome=outcome, task_path=envelope.task,
                          duration_seconds=time.monotonic() - started, retry_body=retry_body,
                          store_result=not task.ignore_result)

    def _prepare(self, delivery: Delivery, started: float) -> tuple[messages.Envelope, DjTask, list, dict] | Completion:
        """The envelope, task and arguments of ``delivery``; or, if it must not run, its FAILED completion."""
        attempt = max(1, delivery.deliveries)
        task_path = "?"
        try:
            envelope = take_envelope(delivery)
            task_path = envelope.task
            task = registry.lookup(envelope.task)
            if not isinstance(task, DjTask):
                raise DjTasksError(f"{envelope.task!r} is not a djtasks task")
            if envelope.expires is not None and self.clock() > envelope.expires:
                raise TaskExpired(f"not started before it expired at {envelope.expires.isoformat()}")
            args, kwargs = envelope.load_args()
        except DjTasksError as exc:
            # Undecodable, unknown or expired: never run, recorded as FAILED with the reason.
            outcome = Outcome(task_id=delivery.id, status=TaskResultStatus.FAILED, at=timezone.now(),
                              attempt=attempt, error=error_info(exc))
            return Completion(delivery=delivery, outcome=outcome, task_path=task_path,
                              duration_seconds=time.monotonic() - started)
        return envelope, task, args, kwargs

    def _running_result(self, delivery: Delivery, envelope: messages.Envelope, task: DjTask, args: list,
                        kwargs: dict) -> DjTaskResult:
        now = timezone.now()
        return DjTaskResult(task=task, id=delivery.id, status=TaskResultStatus.RUNNING, enqueued_at=None,
                            started_at=now, finished_at=None, last_attempted_at=now, args=args, kwargs=kwargs,
                            backend=envelope.backend, errors=[], worker_ids=[self.worker_id])

    def _run(self, delivery: Delivery, envelope: messages.Envelope, task: DjTask, args: list, kwargs: dict,
             attempt: int) -> tuple[Outcome, bytes | None]:
        result = self._running_result(delivery, envelope, task, args, kwargs)
        close_old_connections()
        soft, hard = self.limits(task)
        try:
            task_started.send(sender=type(self.backend), task_result=result)
            with time_limits(soft, hard if self.hard_limit_in_process else None):
                if task.takes_context:
                    context = DjTaskContext(task_result=result, attempt_number=attempt,
                                            progress_callback=self._progress_writer(delivery.id))
                    value = task.call(context, *args, **kwargs)
                else:
                    value = task.call(*args, **kwargs)
            outcome, retry_body = self._success(delivery, value, attempt), None
        except KeyboardInterrupt:
            raise
        except BaseException as error:  # noqa: BLE001 - a task's error, sys.exit() included, never stops the worker
            outcome, retry_body = self._failure(delivery, envelope, task, error, attempt)
        finally:
            close_old_connections()
        self._finish_signal(result, outcome)
        return outcome, retry_body

    def _success(self, delivery: Delivery, value: Any, attempt: int) -> Outcome:
        try:
            dumped = messages.dump_value(value)
        except DjTasksError as exc:
            error = DjTasksError(f"the return value cannot be stored: {exc}")
            return Outcome(task_id=delivery.id, status=TaskResultStatus.FAILED, at=timezone.now(), attempt=attempt,
                           error=error_info(error))
        return Outcome(task_id=delivery.id, status=TaskResultStatus.SUCCESSFUL, at=timezone.now(), attempt=attempt,
                       return_value=dumped)

    def _failure(self, delivery: Delivery, envelope: messages.Envelope, task: DjTask, error: BaseException,
                 attempt: int) -> tuple[Outcome, bytes | None]:
        policy = task.retry_policy
        now = timezone.now()
        if isinstance(error, TaskRevoked):
            return Outcome(task_id=delivery.id, status=CANCELLED, at=now, attempt=attempt,
                           error=error_info(error)), None
        if isinstance(error, Retry):
            if attempt > policy.max_retries:
                reported = error.exc or MaxRetriesExceeded(f"gave up after {attempt} attempts")
                return Outcome(task_id=delivery.id, status=TaskResultStatus.FAILED, at=now, attempt=attempt,
                               error=error_info(reported)), None
            delay = error.countdown if error.countdown is not None else policy.delay_seconds(attempt)
            reported = error.exc or error
        elif policy.should_retry(error, attempt):
            delay, reported = policy.delay_seconds(attempt), error
        else:
            return Outcome(task_id=delivery.id, status=TaskResultStatus.FAILED, at=now, attempt=attempt,
                           error=error_info(error)), None
        retry_at = now + dt.timedelta(seconds=max(0.0, delay))
        body = messages.encode(replace(envelope, attempt=attempt + 1, eta=retry_at))
        outcome = Outcome(task_id=delivery.id, status=TaskResultStatus.READY, at=now, attempt=attempt,
                          error=error_info(reported), retry_at=retry_at)
        return outcome, body

    def _finish_signal(self, result: DjTaskResult, outcome: Outcome) -> None:
        object.__setattr__(result, "status", outcome.status)
        if outcome.status != TaskResultStatus.READY:
            object.__setattr__(result, "finished_at", outcome.at)
        if outcome.error is not None:
            e = outcome.error
            result.errors.append(DjTaskError(exception_class_path=e.exception_class_path, traceback=e.traceback,
                                             message=e.message))
        if outcome.status == TaskResultStatus.SUCCESSFUL:
            object.__setattr__(result, "_return_value", messages.load_value(outcome.return_value))
        try:
            task_finished.send(sender=type(self.backend), task_result=result)
        except Exception:  # noqa: BLE001 - a faulty receiver must not lose the outcome
            logger.exception("a task_finished receiver failed", extra={"task_id": result.id})

    def _progress_writer(self, task_id: str):  # noqa: ANN202
        def write(done: int, total: int | None, message: str | None) -> None:
            self.results.set_progress(task_id, done, total, message)

        return write

    # -- async def tasks: the same steps, the call awaited on the worker's event loop ----------

    async def arun(self, delivery: Delivery, *, run_sync: RunSync | None = None) -> Completion:
        """Run a delivery of an ``async def`` task on the running event loop: the twin of ``__call__``.

        Used by :mod:`djtasks.worker.asyncio_runner`. The steps that may touch
        the database (connection hygiene, signal receivers, progress writes)
        are awaited through ``run_sync``, which must run them in the thread of
        Django's async ORM (by default ``sync_to_async``, one hop per step; the
        runner batches the steps of many tasks into one hop); the coroutine
        itself runs on the loop.
        """
        started = time.monotonic()
        try:
            prepared = self._prepare(delivery, started)
            if isinstance(prepared, Completion):
                return prepared
            envelope, task, args, kwargs = prepared
            outcome, retry_body = await self._arun(delivery, envelope, task, args, kwargs,
                                                   max(1, delivery.deliveries), run_sync or _sync_to_async)
            return Completion(delivery=delivery, outcome=outcome, task_path=envelope.task,
                              duration_seconds=time.monotonic() - started, retry_body=retry_body,
                              store_result=not task.ignore_result)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # noqa: BLE001 - whatever breaks, the message gets an outcome
            return self._broken(delivery, exc, started)

    async def _arun(self, delivery: Delivery, envelope: messages.Envelope, task: DjTask, args: list, kwargs: dict,
                    attempt: int, run_sync: RunSync) -> tuple[Outcome, bytes | None]:
        result = self._running_result(delivery, envelope, task, args, kwargs)
        progress_writes: set[asyncio.Task] = set()
        soft, hard = self.limits(task)
        try:
            await run_sync(self._started, result)
            # Both limits in this process, whatever the pool: no child runs the coroutine.
            async with async_time_limits(soft, hard):
                if task.takes_context:
                    writer = self._async_progress_writer(delivery.id, run_sync, progress_writes)
                    context = DjTaskContext(task_result=result, attempt_number=attempt, progress_callback=writer)
                    value = await task.acall(context, *args, **kwargs)
                else:
                    value = await task.acall(*args, **kwargs)
            outcome, retry_body = self._success(delivery, value, attempt), None
        except KeyboardInterrupt:
            raise
        except asyncio.CancelledError:  # cancelled from outside: revoke --terminate
            outcome, retry_body = self._failure(delivery, envelope, task, TaskRevoked("revoked while it ran"), attempt)
        except BaseException as error:  # noqa: BLE001 - a task's error, sys.exit() included, never stops the worker
            outcome, retry_body = self._failure(delivery, envelope, task, error, attempt)
        if progress_writes:
            await asyncio.gather(*progress_writes, return_exceptions=True)
        await run_sync(self._finished, result, outcome)
        return outcome, retry_body

    def _started(self, result: DjTaskResult) -> None:
        close_old_connections()
        task_started.send(sender=type(self.backend), task_result=result)

    def _finished(self, result: DjTaskResult, outcome: Outcome) -> None:
        close_old_connections()
        self._finish_signal(result, outcome)

    def _async_progress_writer(self, task_id: str, run_sync: RunSync,  # noqa: ANN202 - as above
                               writes: set[asyncio.Task]):
        """``set_progress`` called in a coroutine: written in the background, in order, never blocking the loop."""
        write = self._progress_writer(task_id)

        def schedule(done: int, total: int | None, message: str | None) -> None:
            writes.add(asyncio.get_running_loop().create_task(run_sync(write, done, total, message)))

        return schedule


#: Awaits ``function(*args)`` run in the thread of Django's async ORM.
RunSync = Callable[..., Awaitable[Any]]


async def _sync_to_async(function: Callable[..., Any], *args: Any) -> Any:
    return await sync_to_async(function)(*args)
