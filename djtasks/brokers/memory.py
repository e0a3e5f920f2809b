"""An in-process broker for fast unit tests. Not for production: nothing survives the process."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from .base import Broker, Delivery, OutgoingMessage, QueueDepth


@dataclass(slots=True)
class _Entry:
    id: str
    queue: str
    priority: int
    available_at: dt.datetime
    body: bytes
    sequence: int
    deliveries: int = 0
    leased_until: dt.datetime | None = None
    lease_owner: str = ""


class MemoryBroker(Broker):
    """Messages in a dict, shared by every ``MemoryBroker`` of the same name in this process."""

    _stores: ClassVar[dict[str, dict[str, _Entry]]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, name: str = "default") -> None:
        self.name = name
        with self._lock:
            self._entries = self._stores.setdefault(name, {})
        self._sequence = 0

    @classmethod
    def reset(cls, name: str | None = None) -> None:
        """Forget all messages (of one store, or of every store)."""
        with cls._lock:
            for key, entries in cls._stores.items():
                if name is None or key == name:
                    entries.clear()

    def enqueue(self, messages: Sequence[OutgoingMessage]) -> None:
        with self._lock:
            for message in messages:
                self._sequence += 1
                self._entries[message.id] = _Entry(id=message.id, queue=message.queue, priority=message.priority,
                                                   available_at=message.available_at, body=message.body,
                                                   sequence=self._sequence)

    def fetch(self, queues: Sequence[str] | None, limit: int, *, worker_id: str, lease_seconds: float,
              now: dt.datetime, wait_seconds: float = 0.0) -> list[Delivery]:
        with self._lock:
            due = sorted(
                (e for e in self._entries.values()
                 if e.leased_until is None and e.available_at <= now and (not queues or e.queue in queues)),
                key=lambda e: (-e.priority, e.available_at, e.sequence),
            )[:max(limit, 0)]
            for entry in due:
                entry.deliveries += 1
                entry.leased_until = now + dt.timedelta(seconds=lease_seconds)
                entry.lease_owner = worker_id
            return [Delivery(id=e.id, queue=e.queue, body=e.body, deliveries=e.deliveries) for e in due]

    def extend(self, deliveries: Sequence[Delivery], *, worker_id: str, lease_seconds: float,
               now: dt.datetime) -> None:
        with self._lock:
            for delivery in deliveries:
                entry = self._entries.get(delivery.id)
                if entry is not None and entry.lease_owner == worker_id and entry.leased_until is not None:
                    entry.leased_until = now + dt.timedelta(seconds=lease_seconds)

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        with self._lock:
            for delivery in deliveries:
                self._entries.pop(delivery.id, None)

    def nack(self, delivery: Delivery, *, body: bytes | None = None, available_at: dt.datetime | None = None) -> None:
        with self._lock:
            entry = self._entries.get(delivery.id)
            if entry is None:
                return
            entry.leased_until, entry.lease_owner = None, ""
            if body is not None:
                entry.body = body
            if available_at is not None:
                entry.available_at = available_at

    def release(self, deliveries: Sequence[Delivery], *, available_at: dt.datetime | None = None) -> None:
        with self._lock:
            for delivery in deliveries:
                entry = self._entries.get(delivery.id)
                if entry is not None:
                    entry.leased_until, entry.lease_owner = None, ""
                    entry.deliveries = max(0, entry.deliveries - 1)
                    if available_at is not None:
                        entry.available_at = available_at

    def recover(self, now: dt.datetime) -> int:
        with self._lock:
            expired = [e for e in self._entries.values() if e.leased_until is not None and e.leased_until < now]
            for entry in expired:
                entry.leased_until, entry.lease_owner = None, ""
            return len(expired)

    def purge(self, queue: str) -> list[str]:
        with self._lock:
            ids = [e.id for e in self._entries.values() if e.queue == queue and e.leased_until is None]
            for message_id in ids:
                del self._entries[message_id]
            return ids

    def depths(self, now: dt.datetime) -> list[QueueDepth]:
        with self._lock:
            counts: dict[str, QueueDepth] = {}
            for e in self._entries.values():
                depth = counts.setdefault(e.queue, QueueDepth(queue=e.queue))
                if e.leased_until is not None:
                    counts[e.queue] = replace(depth, reserved=depth.reserved + 1)
                elif e.available_at <= now:
                    counts[e.queue] = replace(depth, ready=depth.ready + 1)
                else:
                    counts[e.queue] = replace(depth, scheduled=depth.scheduled + 1)
            return [counts[name] for name in sorted(counts)]
