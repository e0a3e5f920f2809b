"""The ORM broker: messages wait in :class:`~djtasks.models.TaskRecord` rows.

PostgreSQL and SQLite claim with one ``UPDATE ... RETURNING`` statement
(``sql/claim_v1.*.sql``); MySQL/MariaDB with ``SELECT ... FOR UPDATE SKIP
LOCKED`` and an ``UPDATE`` in one transaction. PostgreSQL also wakes idle
workers through ``NOTIFY``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from pathlib import Path

from django.db import connections, transaction
from django.db.models import Case, Count, DateTimeField, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.tasks import TaskResultStatus
from django.utils import timezone

from ..models import BrokerState, TaskRecord
from ..records import NewRecord, insert_records
from ..sqlexpressions import JSONAppend, JSONRemoveLast
from ..sqlfiles import load_sql
from .base import Broker, Delivery, OutgoingMessage, QueueDepth

SQL_DIR = Path(__file__).with_name("sql")
#: The PostgreSQL channel that carries "a message is waiting in queue <payload>".
NOTIFY_CHANNEL = "djtasks"


def _sql(name: str) -> str:
    return load_sql(SQL_DIR / name)


class DatabaseBroker(Broker):
    """Queue in the result table of database alias ``alias``."""

    creates_result_rows = True
    records_starts = True
    settled_by_results = True

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self.database_alias = alias

    @property
    def vendor(self) -> str:
        return connections[self.alias].vendor

    def _rows(self):  # noqa: ANN202 - a QuerySet
        return TaskRecord.objects.using(self.alias)

    # -- producing ---------------------------------------------------------

    def enqueue(self, messages: Sequence[OutgoingMessage]) -> None:
        records = [NewRecord(envelope=m.envelope, enqueued_at=m.enqueued_at, available_at=m.available_at,
                             message=m.body.decode()) for m in messages]
        insert_records(self.alias, records, queued=True)

    # -- consuming ---------------------------------------------------------

    def fetch(self, queues: Sequence[str] | None, limit: int, *, worker_id: str, lease_seconds: float,
              now: dt.datetime, wait_seconds: float = 0.0) -> list[Delivery]:
        if limit <= 0:
            return []
        leased_until = now + dt.timedelta(seconds=lease_seconds)
        if self.vendor in ("postgresql", "sqlite"):
            rows = self._claim_with_sql(queues, limit, worker_id, leased_until, now)
        else:
            rows = self._claim_with_orm(queues, limit, worker_id, leased_until, now)
        rows.sort(key=lambda row: (-row[4], row[5]))
        return [Delivery(id=str(uuid.UUID(str(row[0]))), queue=row[1], body=row[2].encode(), deliveries=row[3])
                for row in rows]

    def _claim_with_sql(self, queues, limit, worker_id, leased_until, now) -> list[tuple]:  # noqa: ANN001
        connection = connections[self.alias]
        queue_filter = f"AND queue_name IN ({', '.join(['%s'] * len(queues))})" if queues else ""
        sql = _sql(f"claim_v1.{connection.vendor}.sql").format(queue_filter=queue_filter)
        adapt = connection.ops.adapt_datetimefield_value
        started_at = adapt(timezone.now())
        params = [adapt(leased_until), worker_id, started_at, started_at, worker_id, adapt(now), *(queues or ()), limit]
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
        # SQLite returns datetimes as text; the order only needs to compare like with like.
        return [list(row) for row in rows]

    def _claim_with_orm(self, queues, limit, worker_id, leased_until, now) -> list[tuple]:  # noqa: ANN001
        due = self._rows().filter(broker_state=BrokerState.QUEUED, available_at__lte=now)
        if queues:
            due = due.filter(queue_name__in=queues)
        with transaction.atomic(using=self.alias):
            rows = list(
                due.select_for_update(skip_locked=True)
                .order_by("-priority", "available_at", "id")
                .values_list("id", "queue_name", "message", "deliveries", "priority", "available_at")[:limit]
            )
            if rows:
                started_at = timezone.now()
                self._rows().filter(id__in=[row[0] for row in rows]).update(
                    broker_state=BrokerState.LEASED, leased_until=leased_until, lease_owner=worker_id,
                    deliveries=F("deliveries") + 1, status=TaskResultStatus.RUNNING,
                    started_at=Coalesce("started_at", Value(started_at, output_field=DateTimeField())),
                    last_attempted_at=started_at, attempts=F("attempts") + 1,
                    worker_ids=JSONAppend("worker_ids", worker_id),
                )
        return [[row[0], row[1], row[2], row[3] + 1, row[4], row[5]] for row in rows]

    def extend(self, deliveries: Sequence[Delivery], *, worker_id: str, lease_seconds: float,
               now: dt.datetime) -> None:
        if deliveries:
            self._rows().filter(id__in=[d.id for d in deliveries], broker_state=BrokerState.LEASED, lease_owner=worker_id).update(
                leased_until=now + dt.timedelta(seconds=lease_seconds))

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        # Recording a final outcome already clears the row's broker state
        # (see ResultStore.record), so this usually touches nothing.
        if deliveries:
            self._rows().filter(id__in=[d.id for d in deliveries], broker_state__isnull=False).update(broker_state=None, leased_until=None)

    def nack(self, delivery: Delivery, *, body: bytes | None = None, available_at: dt.datetime | None = None) -> None:
        changes: dict = {"broker_state": BrokerState.QUEUED, "leased_until": None, "lease_owner": ""}
        if body is not None:
            changes["message"] = body.decode()
        if available_at is not None:
            changes["available_at"] = available_at
        self._rows().filter(id=delivery.id).update(**changes)

    def release(self, deliveries: Sequence[Delivery], *, available_at: dt.datetime | None = None) -> None:
        """Undo the claim of tasks that never started: queue, delivery count and start marks."""
        if not deliveries:
            return
        later = {"available_at": available_at} if available_at is not None else {}
        self._rows().filter(id__in=[d.id for d in deliveries], broker_state=BrokerState.LEASED).update(
            **later,
            broker_state=BrokerState.QUEUED, leased_until=None, lease_owner="", status=TaskResultStatus.READY,
            deliveries=F("deliveries") - 1, attempts=F("attempts") - 1, worker_ids=JSONRemoveLast("worker_ids"),
            started_at=Case(When(attempts__lte=1, then=Value(None)), default=F("started_at")),
        )

    def recover(self, now: dt.datetime) -> int:
        return self._rows().filter(broker_state=BrokerState.LEASED, leased_until__lt=now).update(
            broker_state=BrokerState.QUEUED, leased_until=None, lease_owner="")

    # -- operating ---------------------------------------------------------

    def purge(self, queue: str) -> list[str]:
        with transaction.atomic(using=self.alias):
            waiting = self._rows().select_for_update().filter(broker_state=BrokerState.QUEUED, queue_name=queue)
            ids = [str(pk) for pk in waiting.values_list("id", flat=True)]
            self._rows().filter(id__in=ids).update(broker_state=None)
        return ids

    def depths(self, now: dt.datetime) -> list[QueueDepth]:
        rows = (
            self._rows().filter(broker_state__isnull=False).values("queue_name").order_by("queue_name")
            .annotate(
                ready=Count("id", filter=Q(broker_state=BrokerState.QUEUED, available_at__lte=now)),
                scheduled=Count("id", filter=Q(broker_state=BrokerState.QUEUED, available_at__gt=now)),
                reserved=Count("id", filter=Q(broker_state=BrokerState.LEASED)),
            )
        )
        return [QueueDepth(queue=r["queue_name"], ready=r["ready"], scheduled=r["scheduled"], reserved=r["reserved"])
                for r in rows]

    def wakeup_source(self, queues: Sequence[str] | None):  # noqa: ANN201
        if self.vendor != "postgresql":
            return None
        from .pgnotify import PostgresWakeup

        return PostgresWakeup(self.alias, NOTIFY_CHANNEL, queues)
