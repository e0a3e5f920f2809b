"""Reads and writes of the worker registry, control commands and revocations.

Each write that someone waits for (a command, a revocation, a reply) is also
signalled through the broker once it commits (see :mod:`.wakeup`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import partial
from typing import Any

from django.db import IntegrityError, models, transaction

from .models import ControlCommand, ControlReply, Revocation, WorkerRecord
from .wakeup import COMMAND, REPLY, REVOCATION, Signals

#: A worker whose last heartbeat is older than this is not counted as alive.
STALE_AFTER = dt.timedelta(seconds=30)
#: How long finished control commands, and registry rows of stopped workers, are kept.
KEEP_FOR = dt.timedelta(days=1)


class ControlStore:
    """The control plane's rows in database ``alias``.

    ``signals`` announces commands, revocations and replies; by default
    through the broker of each djtasks backend whose results are in ``alias``.
    """

    def __init__(self, alias: str = "default", signals: Signals | None = None) -> None:
        self.alias = alias
        self._signals = signals

    @property
    def signals(self) -> Signals:
        if self._signals is None:  # found on first use: settings are read then, not at construction
            self._signals = Signals.of_database(self.alias)
        return self._signals

    def _rows(self, model: type[models.Model]) -> models.QuerySet:
        return model.objects.using(self.alias)

    def _signal(self, kind: str) -> None:
        """Signal ``kind`` once the write commits: a reader woken earlier would not see the row."""
        transaction.on_commit(partial(self.signals.notify, kind), using=self.alias)

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
        sent = self._rows(ControlCommand).create(created_at=now, command=command, target=target, arguments=arguments)
        self._signal(COMMAND)
        return sent

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
            return  # already answered (a command seen twice after a restart)
        self._signal(REPLY)

    def replies(self, command: ControlCommand) -> list[ControlReply]:
        return list(self._rows(ControlReply).filter(command=command).order_by("worker_id"))

    # -- revocations ---------------------------------------------------------

    def revoke(self, task_ids: Iterable[str], now: dt.datetime, *, by: str, terminate: bool) -> None:
        for task_id in task_ids:
            self._rows(Revocation).update_or_create(task_id=task_id, defaults={
                "revoked_at": now, "revoked_by": by, "terminate": terminate})
        self._signal(REVOCATION)

    def revocations_since(self, moment: dt.datetime) -> list[Revocation]:
        return list(self._rows(Revocation).filter(revoked_at__gte=moment).order_by("revoked_at"))
