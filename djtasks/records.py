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


def insert_records(alias: str, records: Sequence[NewRecord], *, queued: bool) -> None:
    """Insert READY rows; ``queued`` marks them as the ORM broker's waiting messages."""
    if not records:
        return
    if connections[alias].vendor == "postgresql":
        _insert_postgresql(alias, records, queued)
    else:
        _insert_orm(alias, records, queued)


def _insert_postgresql(alias: str, records: Sequence[NewRecord], queued: bool) -> None:
    columns: list[list] = [[] for _ in range(12)]
    for record in records:
        e = record.envelope
        values = (e.id, e.backend, e.task, e.queue, e.priority, json.dumps(e.args), json.dumps(e.kwargs),
                  record.enqueued_at, e.eta, e.expires, record.available_at, record.message)
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    sql = load_sql(Path(__file__).with_name("sql") / "insert_records_v1.postgresql.sql")
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [queued, *columns, queued])


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
        TaskRecord.objects.using(alias).bulk_create(rows, batch_size=INSERT_BATCH)
