"""A worker's link to the control plane: registry heartbeats, commands, revocations.

It runs in a thread of the supervisor and talks to the results database
only, so it serves the ORM and the Redis broker alike. Commands reach a
worker within ``POLL_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from ..control.registry import ControlStore

if TYPE_CHECKING:
    from .supervisor import Worker

logger = logging.getLogger("djtasks.worker")

#: Seconds between two looks for commands and revocations.
POLL_SECONDS = 0.5
#: Seconds between two heartbeats in the registry.
HEARTBEAT_SECONDS = 2.0
#: Revocations older than this are not loaded by a starting worker.
REVOCATIONS_KEPT = dt.timedelta(days=7)


class ControlAgent:
    """Publishes ``worker`` in the registry and carries out commands sent to it."""

    def __init__(self, worker: Worker, store: ControlStore) -> None:
        self.worker = worker
        self.store = store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="djtasks-control", daemon=True)
        self._last_command = 0
        self._revocations_seen_at = timezone.now() - REVOCATIONS_KEPT

    def start(self) -> None:
        self._announce()
        self._last_command = self.store.last_command_id()  # commands sent before we started are not ours
        self._load_revocations()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=5)
        try:
            self.store.heartbeat(self.worker.worker_id, stopped_at=timezone.now(), running=[],
                                 **self._counts())
        except DatabaseError:
            pass
        close_old_connections()

    def _announce(self) -> None:
        now = timezone.now()
        w = self.worker
        self.store.announce(worker_id=w.worker_id, hostname=socket.gethostname(), pid=os.getpid(),
                            backend=w.backend.alias, pool=w.pool.name, concurrency=w.pool.concurrency,
                            queues=w.queues or [], started_at=now, last_heartbeat=now, stopped_at=None,
                            running=[], **self._counts())

    def _counts(self) -> dict[str, int]:
        stats = self.worker.stats
        return {"succeeded": stats.succeeded, "failed": stats.failed, "retried": stats.retried}

    def _run(self) -> None:
        next_heartbeat = 0.0
        while not self._stop.wait(POLL_SECONDS):
            try:
                now = timezone.now()
                if now.timestamp() >= next_heartbeat:
                    self.store.heartbeat(self.worker.worker_id, last_heartbeat=now, concurrency=self.worker.pool.concurrency,
                                         running=self.worker.running(), **self._counts())
                    next_heartbeat = now.timestamp() + HEARTBEAT_SECONDS
                self._load_revocations()
                for command in self.store.pending_for(self.worker.worker_id, self._last_command):
                    self._last_command = command.id
                    reply = self._carry_out(command.command, command.arguments)
                    self.store.reply(command, self.worker.worker_id, timezone.now(), reply)
            except DatabaseError as exc:
                logger.warning("control plane unreachable (%s); retrying", exc)
            finally:
                close_old_connections()

    def _load_revocations(self) -> None:
        for revocation in self.store.revocations_since(self._revocations_seen_at):
            self.worker.revoke_locally(str(revocation.task_id), terminate=revocation.terminate)
            self._revocations_seen_at = max(self._revocations_seen_at, revocation.revoked_at)

    def _carry_out(self, command: str, arguments: dict[str, Any]) -> dict[str, Any]:
        w = self.worker
        if command == "ping":
            return {"ok": "pong"}
        if command == "inspect":
            return w.describe()
        if command == "shutdown":
            w.request_stop()
            return {"ok": "shutting down"}
        if command in ("pool_grow", "pool_shrink"):
            count = int(arguments.get("n", 1))
            concurrency = w.pool.resize(count if command == "pool_grow" else -count)
            return {"ok": f"concurrency {concurrency}", "concurrency": concurrency}
        return {"error": f"unknown command {command!r}"}
