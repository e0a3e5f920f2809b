"""Insert result rows fast: one statement per batch, whatever the number of rows.

Used by the result store (rows only) and by the ORM broker (rows that are
also its queued messages).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from django.db import connections, transaction

from .messages import Envelope
from .models import BrokerState, TaskRecord
from .sqlfiles import load_sql

#: Rows per INSERT where each row has its own parameters (SQLite allows 32,766 per statement).
INSERT_BATCH = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRecord:
    """A row to insert; ``available_at`` and ``message`` only when it is also a queued message."""

    envelope: Envelope
    enqueued_at: dt.datetime
    available_at: dt.datetime | None = None
    message: str = ""


def insert_records(alias: str, records: Sequence[NewRecord], *, queued: bool, durable: bool = True) -> None:
    """Insert READY rows; ``queued`` marks them as the ORM broker's waiting messages.

    A row whose id exists already is left as it is: with a broker other than
    the ORM one, the worker that ran the task may have written it first.
    ``durable=False``: outside a transaction, on PostgreSQL, the rows commit
    without waiting for the disk; for rows that can be written again if a
    crash lost them. In a transaction, its own setting holds.
    """
    if not records:
        return
    connection = connections[alias]
    if connection.vendor == "postgresql":
        synchronous_commit = None if durable or connection.in_atomic_block else "off"
        _insert_postgresql(alias, records, queued, synchronous_commit)
    else:
        _insert_orm(alias, records, queued)


def _values(record: NewRecord) -> tuple:
    e = record.envelope
    return (e.id, e.backend, e.task, e.queue, e.priority, json.dumps(e.args), json.dumps(e.kwargs),
            record.enqueued_at, e.eta, e.expires, record.available_at, record.message)


def _insert_postgresql(alias: str, records: Sequence[NewRecord], queued: bool,
                       synchronous_commit: str | None) -> None:
    if len(records) == 1:
        # The common .delay(): a plain INSERT parses and plans cheaper than a JSON array.
        values = _values(records[0])
        sql = _sql("insert_record_v2.postgresql.sql")
        if not queued:
            sql = sql.rpartition(";")[0]
        with connections[alias].cursor() as cursor:
            cursor.execute(sql, [*values, queued, synchronous_commit, *([values[3]] if queued else [])])
        return
    rows = json.dumps([_json_values(record) for record in records], separators=(",", ":"))
    with connections[alias].cursor() as cursor:
        cursor.execute(_sql("insert_records_v2.postgresql.sql"), [queued, synchronous_commit, rows, queued])


def _json_values(record: NewRecord) -> list:
    """A row for the JSON parameter of the batch insert: arguments as JSON values, moments as text."""
    e = record.envelope
    return [e.id, e.backend, e.task, e.queue, e.priority, e.args, e.kwargs, record.enqueued_at.isoformat(),
            _iso(e.eta), _iso(e.expires), _iso(record.available_at), record.message]


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _sql(name: str) -> str:
    return load_sql(Path(__file__).with_name("sql") / name)


def _insert_orm(alias: str, records: Sequence[NewRecord], queued: bool) -> None:
    rows = []
    for record in records:
        row = TaskRecord.from_envelope(record.envelope, enqueued_at=record.enqueued_at)
        if queued:
            row.broker_state = BrokerState.QUEUED
            row.available_at = record.available_at
            row.message = record.message
        rows.append(row)
    with transaction.atomic(using=alias, savepoint=False):
        # ORM broker rows have new ids; rows of other brokers may exist (see insert_records).
        TaskRecord.objects.using(alias).bulk_create(rows, batch_size=INSERT_BATCH, ignore_conflicts=not queued)
