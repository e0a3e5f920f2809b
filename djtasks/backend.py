"""``DjTasksBackend``: the ``django.tasks`` backend, thin over the broker and result layers."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Any

from asgiref.sync import sync_to_async
from django.core import checks
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connections
from django.tasks import TaskResultStatus
from django.tasks.backends.base import BaseTaskBackend
from django.tasks.exceptions import InvalidTask, TaskResultDoesNotExist
from django.tasks.signals import task_enqueued
from django.utils import timezone

from . import brokers, messages, registry
from .conf import BackendOptions, parse_options
from .exceptions import ConfigurationError, DjTasksError
from .models import CANCELLED, TaskRecord
from .results import ResultStore
from .task import DjTask
from .taskresult import DjTaskError, DjTaskResult

logger = logging.getLogger("djtasks")

#: Tasks a backend remembers as valid, so that their next enqueues skip the checks (tasks are immutable).
VALID_TASKS_KEPT = 256

#: One call of a task: positional and keyword arguments.
Call = tuple[Sequence[Any], Mapping[str, Any]]


class DjTasksBackend(BaseTaskBackend):
    """Queue tasks through a djtasks broker; keep their results as ORM rows."""

    task_class = DjTask
    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        # An empty QUEUES list allows any queue name.
        self.queues = set(params.get("QUEUES", []))
        #: id(task) -> task, for tasks that passed validate_task() (kept alive, so an id is never reused).
        self._valid_tasks: dict[int, Any] = {}

    @cached_property
    def config(self) -> BackendOptions:
        return parse_options(self.alias, self.options)

    @cached_property
    def broker(self) -> brokers.Broker:
        return brokers.from_url(self.config.broker_url, self.config)

    @cached_property
    def results(self) -> ResultStore:
        return ResultStore(self.config.results_database)

    # -- validation --------------------------------------------------------

    def validate_task(self, task: Any) -> None:
        # run_after may be relative (timedelta or seconds); Django's checks
        # apply to an absolute moment only.
        run_after = task.run_after
        if isinstance(run_after, dt.timedelta | int | float) and not isinstance(run_after, bool):
            if _seconds(run_after) < 0:
                raise InvalidTask("run_after must not be negative.")
            task = _with_run_after(task, None)
        super().validate_task(task)

    def _validate_once(self, task: DjTask) -> None:
        """:meth:`validate_task`, unless ``task`` (this very object) passed it before."""
        if self._valid_tasks.get(id(task)) is task:
            return
        self.validate_task(task)
        if len(self._valid_tasks) >= VALID_TASKS_KEPT:
            self._valid_tasks.clear()  # e.g. one-off copies made by using() for each call
        self._valid_tasks[id(task)] = task

    def validate_call(self, task: DjTask, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[list, dict]:
        """Check the task and encode its arguments; raise before anything is written."""
        self.validate_task(task)
        return messages.dump_arguments(task.module_path, args, kwargs)

    # -- enqueue -----------------------------------------------------------

    def enqueue(self, task: DjTask, args: Sequence[Any], kwargs: Mapping[str, Any]) -> DjTaskResult:
        return self.enqueue_many(task, [(args, kwargs)])[0]

    def enqueue_many(self, task: DjTask, calls: Sequence[Call]) -> list[DjTaskResult]:
        """Enqueue many calls of ``task`` in one write."""
        now = timezone.now()
        self._validate_once(task)  # once for the batch: the calls differ in arguments only
        outgoing = self._outgoing(task, calls, now)
        if not outgoing:
            return []
        if self.broker.creates_result_rows or getattr(task, "ignore_result", False):
            self.broker.enqueue(outgoing)
        else:
            self._enqueue_with_rows(outgoing, now)
        results = [self._pending_result(task, message, args, kwargs, now)
                   for message, (args, kwargs) in zip(outgoing, calls, strict=True)]
        for result in results:
            task_enqueued.send(type(self), task_result=result)
        return results

    def _enqueue_with_rows(self, outgoing: list[brokers.OutgoingMessage], now: dt.datetime) -> None:
        """The messages first, then their result rows (a broker other than the ORM one).

        If the broker refuses the messages, nothing is written. A worker may
        start a task before its row is written, or its row may never be (the
        database failed here): the worker then writes the row from the message,
        so the outcome is stored either way. The rows go in the caller's
        transaction if there is one, while the messages leave at once: use
        ``enqueue_on_commit`` there.
        """
        self.broker.enqueue(outgoing)
        connection = connections[self.results.alias]
        try:
            self.results.create_pending([m.envelope for m in outgoing], now)
        except DatabaseError:
            if connection.in_atomic_block:
                raise  # the caller's transaction is broken: it must know
            logger.warning("%d task(s) queued, but their result rows could not be written now; the workers "
                           "that run them will write them", len(outgoing), exc_info=True)

    async def aenqueue(self, task: DjTask, args: Sequence[Any], kwargs: Mapping[str, Any]) -> DjTaskResult:
        return await sync_to_async(self.enqueue, thread_sensitive=True)(task, args, kwargs)

    def _outgoing(self, task: DjTask, calls: Sequence[Call], now: dt.datetime) -> list[brokers.OutgoingMessage]:
        """The messages of ``calls`` to ``task``; what they share is worked out once."""
        path, queue, priority = task.module_path, task.queue_name, task.priority
        eta, expires = _moment(task.run_after, now), _moment(task.expires, now)
        headers = getattr(task, "headers", None) or {}
        if len(calls) == 1:
            encode = messages.encode
        else:
            encode = messages.CallEncoder(messages.Envelope(id="", task=path, backend=self.alias, queue=queue,
                                                            priority=priority, eta=eta, expires=expires,
                                                            headers=dict(headers))).encode
        outgoing = []
        for task_id, (args, kwargs) in zip(messages.new_ids(len(calls)), calls, strict=True):
            dumped_args, dumped_kwargs = messages.dump_arguments(path, args, kwargs)
            envelope = messages.Envelope(id=task_id, task=path, backend=self.alias, queue=queue, priority=priority,
                                         args=dumped_args, kwargs=dumped_kwargs, eta=eta, expires=expires,
                                         headers=dict(headers))
            outgoing.append(brokers.OutgoingMessage(id=task_id, queue=queue, priority=priority, enqueued_at=now,
                                                    available_at=eta or now, body=encode(envelope),
                                                    envelope=envelope))
        return outgoing

    def _pending_result(self, task: DjTask, message: brokers.OutgoingMessage, args: Sequence[Any],
                        kwargs: Mapping[str, Any], now: dt.datetime) -> DjTaskResult:
        return DjTaskResult(task=task, id=message.id, status=TaskResultStatus.READY, enqueued_at=now,
                            started_at=None, finished_at=None, last_attempted_at=None, args=list(args),
                            kwargs=dict(kwargs), backend=self.alias, errors=[], worker_ids=[])

    # -- results -----------------------------------------------------------

    def get_result(self, result_id: str) -> DjTaskResult:
        try:
            row = self.results.get(result_id)
        except (TaskRecord.DoesNotExist, ValidationError, ValueError, TypeError) as exc:
            raise TaskResultDoesNotExist(result_id) from exc
        return self.result_from_row(row)

    async def aget_result(self, result_id: str) -> DjTaskResult:
        return await sync_to_async(self.get_result, thread_sensitive=True)(result_id)

    def result_from_row(self, row: TaskRecord) -> DjTaskResult:
        """Build the ``TaskResult`` that a row describes."""
        try:
            task = registry.lookup(row.task_path).using(queue_name=row.queue_name, priority=row.priority,
                                                        backend=row.backend)
        except DjTasksError as exc:
            task = _unregistered_task(row, exc)
        args, kwargs = messages.load_value(row.args), messages.load_value(row.kwargs)
        result = DjTaskResult(
            task=task, id=str(row.id), status=_status(row.status), enqueued_at=row.enqueued_at,
            started_at=row.started_at, finished_at=row.finished_at, last_attempted_at=row.last_attempted_at,
            args=args, kwargs=kwargs, backend=row.backend, worker_ids=list(row.worker_ids or []),
            errors=[DjTaskError(exception_class_path=e["exception_class_path"], traceback=e.get("traceback", ""),
                                message=e.get("message", "")) for e in row.errors or []],
            progress=row.progress,
        )
        if row.status == TaskResultStatus.SUCCESSFUL:
            object.__setattr__(result, "_return_value", messages.load_value(row.return_value))
        return result

    # -- checks ------------------------------------------------------------

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        try:
            config = self.config
            brokers.parse_url(config.broker_url)
        except ConfigurationError as exc:
            return [checks.Error(str(exc), hint=_CONFIG_HINT, obj=f"TASKS[{self.alias!r}]", id="djtasks.E001")]
        return []


_CONFIG_HINT = ("Set TASKS[alias]['OPTIONS'], e.g. {'BROKER_URL': 'django://default'}; "
                "see the configuration reference in djtasks' README.")


def _status(value: str) -> TaskResultStatus:
    """A row's status as ``django.tasks`` knows it: a revoked (CANCELLED) task did not succeed."""
    return TaskResultStatus.FAILED if value == CANCELLED else TaskResultStatus(value)


def _seconds(value: dt.timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, dt.timedelta) else float(value)


def _moment(value: dt.datetime | dt.timedelta | float | None, now: dt.datetime) -> dt.datetime | None:
    """An absolute moment from a moment, a delay, or seconds of delay."""
    if value is None or isinstance(value, dt.datetime):
        return value
    return now + dt.timedelta(seconds=_seconds(value))


def _unchecked(cls: type, fields: Mapping[str, Any]) -> Any:
    """A task instance made without ``__post_init__``: not validated, not registered."""
    instance = object.__new__(cls)
    for name, field in cls.__dataclass_fields__.items():
        object.__setattr__(instance, name, fields.get(name, field.default))
    return instance


def _with_run_after(task: Any, run_after: dt.datetime | None) -> Any:
    """A copy of ``task`` with an absolute ``run_after``, for Django's validation."""
    values = {name: getattr(task, name) for name in task.__dataclass_fields__}
    return _unchecked(type(task), {**values, "run_after": run_after})


def _unregistered_task(row: TaskRecord, error: Exception) -> DjTask:
    """A stand-in task for a row whose task is not registered here: its result stays readable."""
    module, _, name = row.task_path.rpartition(".")

    def unregistered(*args: Any, **kwargs: Any) -> Any:
        raise error

    unregistered.__module__, unregistered.__name__, unregistered.__qualname__ = module, name, name
    return _unchecked(DjTask, {"func": unregistered, "backend": row.backend, "queue_name": row.queue_name,
                               "priority": row.priority, "retry_on": (Exception,)})
