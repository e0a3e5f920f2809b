"""Reads and writes of the worker registry, control commands and revocations."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, models, transaction

from .models import ControlCommand, ControlReply, Revocation, WorkerRecord

#: A worker whose last heartbeat is older than this is not counted as alive.
STALE_AFTER = dt.timedelta(seconds=30)
#: How long finished control commands, and registry rows of stopped workers, are kept.
KEEP_FOR = dt.timedelta(days=1)


class ControlStore:
    """The control plane's rows in database ``alias``."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    def _rows(self, model: type[models.Model]) -> models.QuerySet:
        return model.objects.using(self.alias)

    # -- registry ----------------------------------------------------------

    def announce(self, **fields: Any) -> None:
        """Create or refresh the row of a starting worker."""
        worker_id = fields.pop("worker_id")
        self._rows(WorkerRecord).update_or_create(worker_id=worker_id, defaults=fields)

    def heartbeat(self, worker_id: str, **fields: Any) -> None:
        self._rows(WorkerRecord).filter(worker_id=worker_id).update(**fields)

    def alive(self, now: dt.datetime) -> list[WorkerRecord]:
        return list(self._rows(WorkerRecord).filter(last_heartbeat__gte=now - STALE_AFTER, stopped_at__isnull=True)
                    .order_by("hostname", "pid"))

    def forget_old(self, now: dt.datetime) -> None:
        """Drop rows of workers gone for a day, and old control commands."""
        self._rows(WorkerRecord).filter(last_heartbeat__lt=now - KEEP_FOR).delete()
        self._rows(ControlCommand).filter(created_at__lt=now - KEEP_FOR).delete()

    # -- commands ------------------------------------------------------------

    def send(self, command: str, now: dt.datetime, target: str = "", **arguments: Any) -> ControlCommand:
        return self._rows(ControlCommand).create(created_at=now, command=command, target=target, arguments=arguments)

    def pending_for(self, worker_id: str, after_id: int) -> list[ControlCommand]:
        """Commands for this worker (or all) newer than ``after_id``."""
        return list(self._rows(ControlCommand).filter(id__gt=after_id, target__in=["", worker_id]).order_by("id"))

    def last_command_id(self) -> int:
        return self._rows(ControlCommand).aggregate(last=models.Max("id"))["last"] or 0

    def reply(self, command: ControlCommand, worker_id: str, now: dt.datetime, reply: dict[str, Any]) -> None:
        try:
            with transaction.atomic(using=self.alias):
                self._rows(ControlReply).create(command=command, worker_id=worker_id, replied_at=now, reply=reply)
        except IntegrityError:
            pass  # already answered (a command seen twice after a restart)

    def replies(self, command: ControlCommand) -> list[ControlReply]:
        return list(self._rows(ControlReply).filter(command=command).order_by("worker_id"))

    # -- revocations ---------------------------------------------------------

    def revoke(self, task_ids: Iterable[str], now: dt.datetime, *, by: str, terminate: bool) -> None:
        for task_id in task_ids:
            self._rows(Revocation).update_or_create(task_id=task_id, defaults={
                "revoked_at": now, "revoked_by": by, "terminate": terminate})

    def revocations_since(self, moment: dt.datetime) -> list[Revocation]:
        return list(self._rows(Revocation).filter(revoked_at__gte=moment).order_by("revoked_at"))
