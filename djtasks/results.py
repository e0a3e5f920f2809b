"""Result rows: create, mark started, record outcomes, read back.

Writes come in batches from the worker: one UPDATE marks a whole fetched
batch started, and the outcomes of many tasks are written in one transaction
together with their broker acks when the broker shares the database.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import connections, models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.tasks import TaskResultStatus

from .messages import Envelope
from .models import CANCELLED, TaskRecord
from .records import NewRecord, insert_records
from .sqlexpressions import JSONAppend
from .sqlfiles import load_sql

#: Successful outcomes written per statement.
SUCCESS_BATCH = 500


def _sql(name: str) -> str:
    return load_sql(Path(__file__).with_name("sql") / name)


def _execute(connection: BaseDatabaseWrapper, sql: str, params: Sequence[Any]) -> tuple[int, list[tuple]]:
    """Run one of the statements of ``sql/`` on every worker cycle; return its row count and rows.

    On PostgreSQL the server binds the parameters: the worker then neither
    quotes each value in Python nor parses the statement again each time, as
    Django's default (client-side binding) cursor does.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.rowcount, cursor.fetchall() if cursor.description else []
    import psycopg

    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount, cursor.fetchall() if cursor.description else []


@dataclass(frozen=True, slots=True)
class Start:
    """When an attempt of a task started, and its message (to write its row from, if missing)."""

    at: dt.datetime
    envelope: Envelope


def _start_mark(worker_id: str, at: dt.datetime) -> dict[str, Any]:
    """The column changes of a start mark (besides ``status``), for ``QuerySet.update``."""
    return {"started_at": Coalesce("started_at", Value(at, output_field=models.DateTimeField())),
            "last_attempted_at": at, "attempts": F("attempts") + 1,
            "worker_ids": JSONAppend("worker_ids", worker_id)}


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorInfo:
    exception_class_path: str
    message: str
    traceback: str

    def as_json(self, attempt: int, at: dt.datetime) -> dict[str, Any]:
        return {"exception_class_path": self.exception_class_path, "message": self.message,
                "traceback": self.traceback, "attempt": attempt, "at": at.isoformat()}


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """How one attempt of a task ended, as the worker reports it."""

    task_id: str
    status: TaskResultStatus  # SUCCESSFUL, FAILED, or READY for a scheduled retry
    at: dt.datetime
    attempt: int
    return_value: Any = None  # dumped (JSON-safe) value
    error: ErrorInfo | None = None
    retry_at: dt.datetime | None = None


class ResultStore:
    """Result rows in database ``alias``."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    def rows(self) -> models.QuerySet[TaskRecord]:
        return TaskRecord.objects.using(self.alias)

    def create_pending(self, envelopes: Sequence[Envelope], enqueued_at: dt.datetime) -> None:
        """Insert READY rows for envelopes a broker other than the ORM one queued; keep rows that exist.

        Outside a transaction they commit without waiting for the disk
        (PostgreSQL): a row a database crash lost is written again from its
        message by the worker that runs it (see :meth:`mark_started`).
        """
        insert_records(self.alias, [NewRecord(envelope=e, enqueued_at=enqueued_at) for e in envelopes], queued=False,
                       durable=False)

    def mark_started(self, envelopes: Sequence[Envelope], worker_id: str, at: dt.datetime, *,
                     durable: bool = True) -> None:
        """Mark the tasks of ``envelopes`` started on ``worker_id``, first writing any row that is missing.

        A row is missing when the worker got the message before the producer
        wrote the row (it writes it right after), or never will (it failed, or
        a database crash lost it): the row is then made from the message, so
        the outcome is never lost. One UPDATE in the common case where every
        row is there. ``durable=False`` lets the caller's transaction commit
        without waiting for the disk (PostgreSQL), for a transaction that
        holds start marks only.
        """
        if not envelopes:
            return
        if not durable:
            self._commit_without_flush()
        ids = [e.id for e in envelopes]
        if self._mark_started(ids, worker_id, at) == len(ids):
            return
        # Write the missing rows, then mark every row that no mark reached yet: those
        # just written, and any the producer wrote since the first UPDATE.
        self.create_pending(envelopes, at)
        self._mark_started(ids, worker_id, at, only_ready=True)

    def _mark_started(self, ids: Sequence[str], worker_id: str, at: dt.datetime, *, only_ready: bool = False) -> int:
        """One UPDATE; return how many rows it marked."""
        connection = connections[self.alias]
        if connection.vendor == "postgresql" and not only_ready:  # every worker cycle: no ORM compilation
            marked, _ = _execute(connection, _sql("mark_started_v1.postgresql.sql"),
                                 [at, at, json.dumps(worker_id), list(ids)])
            return marked
        rows = self.rows().filter(id__in=ids)
        if only_ready:
            rows = rows.filter(status=TaskResultStatus.READY)
        return rows.update(status=TaskResultStatus.RUNNING, **_start_mark(worker_id, at))

    def _commit_without_flush(self) -> None:
        """Let the current transaction commit without waiting for its WAL flush (PostgreSQL)."""
        connection = connections[self.alias]
        if connection.vendor == "postgresql" and connection.in_atomic_block:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")

    def record(self, outcomes: Iterable[Outcome], *, unmarked: Mapping[str, Start] | None = None,
               worker_id: str = "") -> None:
        """Write outcomes: all successes in one UPDATE, failures and retries one by one.

        ``unmarked`` holds, by task id, the starts that ``worker_id`` has not
        marked yet (the task ended first). A success gets its start mark in
        the same UPDATE: one row version instead of two. Anything else gets
        its mark first. A row that is missing is written from its message,
        as :meth:`mark_started` does. The caller holds the transaction.
        """
        unmarked = unmarked or {}
        successes = []
        for outcome in outcomes:
            if outcome.status == TaskResultStatus.SUCCESSFUL:
                successes.append(outcome)
                continue
            start = unmarked.get(outcome.task_id)
            if start is not None:
                self.mark_started([start.envelope], worker_id, start.at)
            self._record_failure(outcome)
        for first in range(0, len(successes), SUCCESS_BATCH):
            batch = successes[first:first + SUCCESS_BATCH]
            stored = self._record_successes(batch, unmarked, worker_id)
            # Only a task whose start was not marked can lack its row here (a mark writes a missing one).
            missing = [o for o in batch if o.task_id not in stored and o.task_id in unmarked]
            if missing:
                starts = [unmarked[o.task_id] for o in missing]
                self.create_pending([start.envelope for start in starts], min(start.at for start in starts))
                self._record_successes(missing, unmarked, worker_id)

    def _record_successes(self, outcomes: Sequence[Outcome], unmarked: Mapping[str, Start],
                          worker_id: str) -> set[str]:
        """Store successes (with the start marks of ``unmarked`` ones); return the ids of the rows updated."""
        connection = connections[self.alias]
        if connection.vendor not in ("postgresql", "sqlite"):
            return {o.task_id for o in outcomes if self._record_success_orm(o, unmarked.get(o.task_id), worker_id)}
        # Django stores UUIDs as 32 hex digits where the database has no UUID type.
        native_uuid = connection.vendor == "postgresql"
        adapt = connection.ops.adapt_datetimefield_value
        params: list[Any] = []
        for outcome in outcomes:
            start = unmarked.get(outcome.task_id)
            params += [outcome.task_id if native_uuid else uuid.UUID(outcome.task_id).hex, adapt(outcome.at),
                       json.dumps(outcome.return_value), adapt(start.at) if start is not None else None]
        params.append(json.dumps(worker_id))
        sql = _sql(f"record_successes_v1.{connection.vendor}.sql").format(
            rows=", ".join(["(%s, %s, %s, %s)"] * len(outcomes)))
        _, rows = _execute(connection, sql, params)
        return {str(uuid.UUID(str(row[0]))) for row in rows}

    def _record_success_orm(self, outcome: Outcome, start: Start | None, worker_id: str) -> bool:
        """One success on a vendor without a batch statement; whether its row was there."""
        changes: dict[str, Any] = {"status": outcome.status, "finished_at": outcome.at,
                                   "return_value": outcome.return_value, "progress": None, "broker_state": None,
                                   "leased_until": None}
        if start is not None:
            changes.update(_start_mark(worker_id, start.at))
        return bool(self.rows().filter(id=outcome.task_id).update(**changes))

    def _record_failure(self, outcome: Outcome) -> None:
        changes: dict[str, Any] = {"status": outcome.status, "progress": None}
        if outcome.status == TaskResultStatus.READY:
            changes["run_after"] = outcome.retry_at
        else:
            # A finished row holds no message any more (ORM broker).
            changes.update(finished_at=outcome.at, broker_state=None, leased_until=None)
        if outcome.error is not None:
            changes["errors"] = JSONAppend("errors", outcome.error.as_json(outcome.attempt, outcome.at))
        rows = self.rows().filter(id=outcome.task_id)
        if outcome.status == CANCELLED:
            # Revoked while it waited: the row already says so, and who revoked it (see cancel_waiting).
            rows = rows.exclude(status=CANCELLED)
        rows.update(**changes)

    def set_progress(self, task_id: str, done: int, total: int | None, message: str | None) -> None:
        self.rows().filter(id=task_id).update(progress={"done": done, "total": total, "message": message})

    def get(self, task_id: str) -> TaskRecord:
        """The row of ``task_id``; raise ``TaskRecord.DoesNotExist``."""
        return self.rows().get(id=task_id)

    def atomic(self) -> transaction.Atomic:
        return transaction.atomic(using=self.alias, savepoint=False)

    def cancel_waiting(self, task_ids: Sequence[str], now: dt.datetime, *, by: str) -> int:
        """Mark tasks that have not started CANCELLED (and out of the ORM broker's queue); return how many."""
        error = ErrorInfo(exception_class_path="djtasks.exceptions.TaskRevoked",
                          message=f"revoked by {by} at {now.isoformat(timespec='seconds')}", traceback="")
        return self.rows().filter(id__in=task_ids, status=TaskResultStatus.READY).update(
            status=CANCELLED, finished_at=now, broker_state=None, leased_until=None,
            errors=JSONAppend("errors", error.as_json(0, now)))

    def delete(self, task_ids: Sequence[str]) -> None:
        if task_ids:
            self.rows().filter(id__in=task_ids).delete()

    def delete_finished_before(self, moment: dt.datetime) -> int:
        """Remove finished rows older than ``moment``; return how many."""
        done = (TaskResultStatus.SUCCESSFUL, TaskResultStatus.FAILED)
        deleted, _ = self.rows().filter(status__in=done, finished_at__lt=moment, broker_state__isnull=True).delete()
        return deleted
