"""The deliveries a worker holds, and the thread that keeps their leases alive."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from ..brokers import Broker, Delivery
from ..exceptions import BrokerError

logger = logging.getLogger("djtasks.worker")


class HeldDeliveries:
    """The deliveries a worker holds, from their fetch until their outcome is stored; safe across threads."""

    def __init__(self) -> None:
        self._by_id: dict[str, Delivery] = {}
        self._lock = threading.Lock()

    def add(self, deliveries: Iterable[Delivery]) -> None:
        with self._lock:
            self._by_id.update((d.id, d) for d in deliveries)

    def discard(self, task_ids: Iterable[str]) -> None:
        with self._lock:
            for task_id in task_ids:
                self._by_id.pop(task_id, None)

    def all(self) -> list[Delivery]:
        with self._lock:
            return list(self._by_id.values())

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._by_id

    def __len__(self) -> int:
        return len(self._by_id)


class LeaseKeeper:
    """Extends the leases of held deliveries every third of a lease, so a healthy long task is never re-delivered.

    A broker or database outage is logged once, when it starts, and once
    when the leases are extended again.
    """

    def __init__(self, *, broker: Broker, held: HeldDeliveries, worker_id: str, lease_seconds: float) -> None:
        self.broker = broker
        self.held = held
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds

    def start(self, finished: threading.Event) -> None:
        """Run in a daemon thread until ``finished`` is set."""
        threading.Thread(target=self._run, args=(finished,), name="djtasks-heartbeat", daemon=True).start()

    def _run(self, finished: threading.Event) -> None:
        interval = self.lease_seconds / 3
        failing = False
        while not finished.wait(interval):
            held = self.held.all()
            if not held:
                continue
            try:
                self.broker.extend(held, worker_id=self.worker_id, lease_seconds=self.lease_seconds,
                                   now=timezone.now())
                if failing:
                    logger.warning("leases are extended again")
                    failing = False
            except (DatabaseError, BrokerError) as exc:
                if not failing:  # once per outage
                    logger.warning("could not extend leases (%s); trying again every %.0f s", exc, interval)
                    failing = True
            finally:
                close_old_connections()
