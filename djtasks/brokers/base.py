"""The broker interface: a handful of verbs, nothing about tasks.

A broker moves opaque message bodies between producers and workers with
at-least-once delivery: :meth:`Broker.fetch` leases messages, a worker keeps
the lease alive with :meth:`Broker.extend` while it runs them, and removes
them with :meth:`Broker.ack` when done. A lease that runs out (the worker
died) is ended by :meth:`Broker.recover`, and the message is delivered again.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

from ..messages import Envelope


@dataclass(frozen=True, slots=True, kw_only=True)
class OutgoingMessage:
    """A message to enqueue: routing fields, the encoded body and its envelope."""

    id: str
    queue: str
    priority: int
    enqueued_at: dt.datetime
    available_at: dt.datetime
    body: bytes
    envelope: Envelope


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """A leased message, as a worker receives it."""

    id: str
    queue: str
    body: bytes
    #: How many times this message was leased, this time included.
    deliveries: int
    #: Where the broker keeps this delivery (e.g. a stream entry id); opaque to callers.
    receipt: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueDepth:
    queue: str
    ready: int = 0
    scheduled: int = 0
    reserved: int = 0


class Broker(ABC):
    """Where messages wait for a worker."""

    #: The broker stores result rows itself when it enqueues (the ORM broker),
    #: so the backend must not insert them a second time.
    creates_result_rows: bool = False
    #: ``fetch`` also marks the fetched tasks started in their result rows
    #: (the ORM broker, whose messages are those rows).
    records_starts: bool = False
    #: Storing a task's final outcome in its result row also settles its message
    #: (the ORM broker), so no separate ``ack`` is needed.
    settled_by_results: bool = False
    #: The Django database whose transactions this broker's writes take part in, if any.
    database_alias: str | None = None

    @abstractmethod
    def enqueue(self, messages: Sequence[OutgoingMessage]) -> None:
        """Store messages atomically: all or none, in one round trip where possible."""

    @abstractmethod
    def fetch(self, queues: Sequence[str] | None, limit: int, *, worker_id: str, lease_seconds: float,
              now: dt.datetime, wait_seconds: float = 0.0) -> list[Delivery]:
        """Lease up to ``limit`` due messages, highest priority first, then oldest due.

        ``queues=None`` means every queue. A broker that :meth:`waits_in_fetch`
        first waits up to ``wait_seconds`` for a message; the others ignore it.
        """

    def waits_in_fetch(self, queues: Sequence[str] | None) -> bool:
        """Whether :meth:`fetch` can wait for a message of ``queues`` (then no wake-up source is needed)."""
        return False

    def interrupt_wait(self, queues: Sequence[str] | None, *, worker_id: str) -> None:
        """End the wait of a fetch by ``worker_id`` now, or of its next one (it is stopping)."""

    @abstractmethod
    def extend(self, deliveries: Sequence[Delivery], *, worker_id: str, lease_seconds: float,
               now: dt.datetime) -> None:
        """Push the lease deadline of messages this worker holds."""

    @abstractmethod
    def ack(self, deliveries: Sequence[Delivery]) -> None:
        """Remove finished messages."""

    @abstractmethod
    def nack(self, delivery: Delivery, *, body: bytes | None = None, available_at: dt.datetime | None = None) -> None:
        """Put a leased message back, optionally with a new body and due time (a retry)."""

    def release(self, deliveries: Sequence[Delivery], *, available_at: dt.datetime | None = None) -> None:
        """Put back messages that were reserved but never started, as if never delivered.

        ``available_at`` delays them (a rate limit says when a token comes).
        """
        for delivery in deliveries:
            self.nack(delivery, available_at=available_at)

    @abstractmethod
    def recover(self, now: dt.datetime) -> int:
        """Return messages whose lease ran out to their queue; return how many."""

    @abstractmethod
    def purge(self, queue: str) -> list[str]:
        """Delete the waiting (not leased) messages of ``queue``; return their ids."""

    @abstractmethod
    def depths(self, now: dt.datetime) -> list[QueueDepth]:
        """Ready, scheduled (not yet due) and reserved counts per queue."""

    def wakeup_source(self, queues: Sequence[str] | None):  # noqa: ANN201 - optional capability
        """A :class:`~djtasks.brokers.wakeup.WakeupSource` that signals new messages, or ``None`` to poll."""
        return None

    def close(self) -> None:
        """Release connections held by this broker."""
