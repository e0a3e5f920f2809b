"""A worker's link to the control plane: registry heartbeats, commands, revocations.

It runs in a thread of the supervisor. Commands and revocations are rows in
the results database, so the same control plane serves the ORM and the Redis
broker. The broker also signals each new row (:mod:`djtasks.control.wakeup`:
Redis pub/sub, PostgreSQL NOTIFY), so the agent carries it out at once and
only looks for rows it was not told about every ``FALLBACK_POLL_SECONDS``.
Where the broker has no signals (SQLite, MySQL), and while its subscription
is down, the agent looks every ``POLL_SECONDS``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from ..control.registry import ControlStore
from ..control.wakeup import WORKER_KINDS, fallback_poll_seconds, subscriber_for

if TYPE_CHECKING:
    from .supervisor import Worker

logger = logging.getLogger("djtasks.worker")

#: Seconds between two looks for commands and revocations when no signal can tell of them.
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
        #: Set by a signal, by the subscription coming up or going down, and by stop().
        self._look_now = threading.Event()
        self._subscriber = subscriber_for(worker.broker, WORKER_KINDS)
        self._fallback_poll_seconds = fallback_poll_seconds()
        self._thread = threading.Thread(target=self._run, name="djtasks-control", daemon=True)
        self._last_command = 0
        self._revocations_seen_at = timezone.now() - REVOCATIONS_KEPT
        self._failing = False

    def start(self) -> None:
        self._announce()
        self._last_command = self.store.last_command_id()  # commands sent before we started are not ours
        self._load_revocations()
        if self._subscriber is not None:
            self._subscriber.start(self._look_now)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._look_now.set()
        if self._thread.ident is not None:
            self._thread.join(timeout=5)
        if self._subscriber is not None:
            self._subscriber.stop()
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

    def _poll_seconds(self) -> float:
        """How long until the next look for rows that no signal told of."""
        signalled = self._subscriber is not None and self._subscriber.connected
        return self._fallback_poll_seconds if signalled else POLL_SECONDS

    def _run(self) -> None:
        next_heartbeat = time.monotonic() + HEARTBEAT_SECONDS  # start() announced the worker
        next_look = time.monotonic() + POLL_SECONDS
        while True:
            self._look_now.wait(max(0.0, min(next_heartbeat, next_look) - time.monotonic()))
            if self._stop.is_set():
                return
            signalled = self._look_now.is_set()
            self._look_now.clear()  # before the look: a signal from now on means another look
            now = time.monotonic()
            beat, look = now >= next_heartbeat, signalled or now >= next_look
            if beat:
                next_heartbeat = now + HEARTBEAT_SECONDS
            if look:
                next_look = now + self._poll_seconds()
            try:
                if beat:
                    self._heartbeat()
                if look:
                    self._look()
                self._works_again()
            except DatabaseError as exc:
                self._failed(exc)
                next_look = min(next_look, time.monotonic() + POLL_SECONDS)  # the signal was used up
            finally:
                close_old_connections()

    def _heartbeat(self) -> None:
        w = self.worker
        self.store.heartbeat(w.worker_id, last_heartbeat=timezone.now(), concurrency=w.pool.concurrency,
                             running=w.running(), **self._counts())

    def _look(self) -> None:
        """Apply new revocations and carry out pending commands."""
        self._load_revocations()
        for command in self.store.pending_for(self.worker.worker_id, self._last_command):
            self._last_command = command.id
            reply = self._carry_out(command.command, command.arguments)
            self.store.reply(command, self.worker.worker_id, timezone.now(), reply)

    def _failed(self, exc: DatabaseError) -> None:
        if not self._failing:  # once per outage
            logger.warning("control plane unreachable (%s); retrying", exc)
            self._failing = True

    def _works_again(self) -> None:
        if self._failing:
            logger.warning("control plane reachable again")
            self._failing = False

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
