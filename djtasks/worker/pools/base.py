"""The pool interface: where the supervisor's deliveries run.

A pool is given the function that runs one delivery and the callback that
takes its completion; it only decides *where* that function runs (the
calling thread, a thread, later a forked child or a greenlet).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

from ...brokers import Delivery
from ..executor import Completion

Execute = Callable[[Delivery], Completion]
OnDone = Callable[[Completion], None]


class PoolJob(ABC):
    """Work a slot of the pool does for the supervisor, such as a fetch that waits for messages.

    The job may hand the slot a delivery to run at once: the task starts
    where its message arrived, without a hop to another thread.
    """

    def __init__(self, *, wake: threading.Event | None = None) -> None:
        #: Set once the job returned and the pool counts its delivery (if any) as running.
        self.finished = threading.Event()
        #: Set then too: an event its waiter also waits on for other reasons.
        self.wake = wake

    def finish(self) -> None:
        """Mark the job finished (the pool calls it once the job's delivery, if any, counts as running)."""
        self.finished.set()
        if self.wake is not None:
            self.wake.set()

    @abstractmethod
    def run(self) -> Delivery | None:
        """Do the job (it must not raise); return a delivery for this slot to run next, or None."""


class Pool(ABC):
    """Runs deliveries; at most ``concurrency`` at once."""

    name: str = ""
    #: ``submit`` runs the task before it returns (in the supervisor's thread).
    runs_inline: bool = False

    def __init__(self, execute: Execute, on_done: OnDone, concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, not {concurrency}")
        self.execute = execute
        self.on_done = on_done
        self.concurrency = concurrency

    def start(self) -> None:
        """Prepare to run deliveries (start threads or children)."""

    @abstractmethod
    def submit(self, delivery: Delivery) -> None:
        """Run ``delivery``; call ``on_done`` with its completion."""

    @abstractmethod
    def free_slots(self) -> int:
        """How many more deliveries can start now."""

    def room(self, prefetch_multiplier: int) -> int:
        """How many more deliveries to reserve: up to ``prefetch_multiplier`` per slot, running ones included.

        Reserving ahead keeps every slot busy while the supervisor fetches
        more; with a multiplier of 1 nothing waits that could not start now.
        """
        return self.free_slots() + self.concurrency * (prefetch_multiplier - 1)

    def run_job(self, job: PoolJob) -> bool:
        """Have a free slot run ``job``, then the delivery it returns; False if this pool cannot.

        The job holds a slot from now until it returns: the delivery it hands
        over takes that slot.
        """
        return False

    def terminate(self, task_id: str) -> bool:
        """Stop the running task ``task_id`` (``TaskRevoked``); return False if it is not running here."""
        return False

    def resize(self, delta: int) -> int:
        """Add (or, negative, remove) slots; return the new concurrency. Fixed-size pools ignore it."""
        return self.concurrency

    def take_back(self) -> list[Delivery]:
        """Remove and return the deliveries submitted but not started yet."""
        return []

    @abstractmethod
    def stop(self, timeout: float | None) -> bool:
        """Finish what runs (up to ``timeout`` seconds); return True if all finished."""
