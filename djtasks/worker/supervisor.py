"""The supervisor: reserves messages, feeds the pool, records outcomes, keeps leases alive."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import queue
import secrets
import socket
import threading
import time
from collections.abc import Callable, Sequence

from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from ..brokers import Broker, Delivery
from ..control.registry import ControlStore
from ..exceptions import BrokerError, TaskRevoked
from ..results import ResultStore
from .asyncio_runner import ASYNC_TASKS_AT_ONCE, PoolWithEventLoop
from .autoscale import IDLE_SECONDS, Autoscaler
from .control import ControlAgent
from .deliveries import envelopes_with_rows, forget, task_path_of
from .executor import Completion, Executor
from .fetch_job import FetchInPool
from .leases import HeldDeliveries, LeaseKeeper
from .outcomes import OutcomeWriter, StartMarks, WorkerStats
from .pools import make_pool
from .rate_gate import RateLimitGate

logger = logging.getLogger("djtasks.worker")

#: Seconds between two runs of the ``KEEP_RESULTS_DAYS`` clean-up in each worker.
CLEANUP_INTERVAL_SECONDS = 3600
#: Seconds a start mark may wait for its task's outcome, to be written in the same commit.
START_MARK_DELAY_SECONDS = 0.02
#: Seconds finished tasks may wait for others to be stored with, while the pool has work queued.
SETTLE_DELAY_SECONDS = 0.01
#: Longest wait of an idle worker inside a fetch (a broker that can): it then looks at its timers.
IDLE_FETCH_WAIT_SECONDS = 1.0
#: Seconds a worker that just handed tasks to its pool waits on its own before it waits inside a
#: fetch: the pool's threads take the tasks meanwhile (the supervisor holds no lock they need), and
#: a task that ends at once is stored without a round trip to interrupt the fetch.
HAND_OVER_SECONDS = 0.002
#: Seconds to wait before the next loop after the database or broker failed.
ERROR_BACKOFF_SECONDS = (0.5, 1, 2, 5, 10)


def make_worker_id() -> str:
    return f"{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"


class Worker:
    """One worker: a supervisor loop in the calling thread and a pool.

    ``queues=None`` serves every queue. ``burst=True`` returns when nothing
    is due and nothing runs.
    """

    def __init__(self, *, backend, pool: str = "threads", concurrency: int = 1,  # noqa: ANN001
                 queues: Sequence[str] | None = None, burst: bool = False, worker_id: str | None = None,
                 keep_completions: bool = False, clock=timezone.now,  # noqa: ANN001
                 time_limit: float | None = None, soft_time_limit: float | None = None,
                 max_tasks_per_child: int | None = None, max_memory_per_child_kib: int | None = None,
                 control: bool = False, autoscale: tuple[int, int] | None = None,
                 autoscale_idle_seconds: float = IDLE_SECONDS,
                 async_concurrency: int = ASYNC_TASKS_AT_ONCE) -> None:
        self.backend = backend
        self.broker: Broker = backend.broker
        self.results: ResultStore = backend.results
        self.config = backend.config
        self.queues = list(queues) if queues else None
        self.burst = burst
        self.worker_id = worker_id or make_worker_id()
        self.keep_completions = keep_completions
        #: Join the control plane (registry, remote commands, revocations).
        self.control = control
        #: (most, fewest) slots: grow while tasks wait, shrink after idle time.
        self._autoscale_bounds = autoscale
        self._autoscale_idle_seconds = autoscale_idle_seconds
        self._autoscaler: Autoscaler | None = None
        #: The last fetch took all it could: more may wait (so the next one must not wait). At
        #: first too: messages enqueued before the worker started may have no wake-up token left.
        self._saturated = True
        self.started_at = timezone.now()
        self._revoked: set[str] = set()
        #: What "now" is when deciding which messages are due (tests may look ahead).
        self.clock = clock
        self.stats = WorkerStats()
        self._done: queue.SimpleQueue[Completion] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._finished = threading.Event()
        #: Set once the pool runs: start other threads (e.g. beat) after it, never before a fork.
        self.ready = threading.Event()
        self._held = HeldDeliveries()
        self._rate_limits = RateLimitGate(backend=backend, broker=self.broker, held=self._held)
        self._unwritten: list[Completion] = []
        #: Outcomes stored whose messages are not acked (or put back) yet.
        self._unsettled: list[Completion] = []
        #: Start marks not written yet: (when, envelopes), written with the next cycle's outcomes.
        self._unmarked: StartMarks = []
        self._next_recovery = 0.0
        self._next_cleanup = 0.0
        executor = Executor(backend=backend, worker_id=self.worker_id, clock=clock, time_limit=time_limit,
                            soft_time_limit=soft_time_limit)
        # async def tasks: on an event loop beside the pool, up to async_concurrency at once.
        self.pool = PoolWithEventLoop(make_pool(pool, executor, self._on_done, concurrency,
                                                max_tasks_per_child=max_tasks_per_child,
                                                max_memory_per_child_kib=max_memory_per_child_kib),
                                      limit=async_concurrency)
        if self._autoscale_bounds is not None:
            self._autoscaler = Autoscaler(self.pool, *self._autoscale_bounds, self._autoscale_idle_seconds)
        self.outcomes = OutcomeWriter(broker=self.broker, results=self.results, worker_id=self.worker_id,
                                      stats=self.stats, keep_completions=keep_completions)
        #: The worker waits for messages inside its fetch (Redis), not on a wake-up source.
        self._fetch_waits = not burst and self.broker.waits_in_fetch(self.queues)
        #: A fetch is waiting in this thread now: a task that ends must interrupt it.
        self._waiting_in_fetch = False
        #: Deliveries the pool thread that fetched them runs already (see :class:`FetchInPool`).
        self._started_in_fetch: list[Delivery] = []
        #: Loops that failed in a row (the database or the broker is down); 0 when the last one worked.
        self._failures = 0

    # -- control -----------------------------------------------------------

    def request_stop(self) -> None:
        """Stop taking work; finish what runs, then :meth:`run` returns."""
        self._stopping.set()
        self._wake.set()
        if self._fetch_waits:
            # From a thread of its own: this may run in a signal handler, in the middle of a Redis call.
            threading.Thread(target=self._interrupt_wait, name="djtasks-stop", daemon=True).start()

    def _interrupt_wait(self) -> None:
        try:
            self.broker.interrupt_wait(self.queues, worker_id=self.worker_id)
        except BrokerError:
            pass  # the wait ends within IDLE_FETCH_WAIT_SECONDS anyway

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    # -- the loop ----------------------------------------------------------

    def run(self) -> WorkerStats:
        """Serve until stopped (or, in burst mode, until nothing is due)."""
        logger.info("worker %s serving %s with pool %s (concurrency %d)", self.worker_id,
                    ", ".join(self.queues) if self.queues else "every queue", self.pool.name, self.pool.concurrency)
        self.pool.start()
        self.ready.set()  # children are forked: other threads may start now
        control = ControlAgent(self, ControlStore(self.results.alias)) if self.control else None
        if control is not None:
            control.start()
        wakeup = None if self.burst or self._fetch_waits else self.broker.wakeup_source(self.queues)
        if wakeup is not None:
            wakeup.start(self._wake)
        LeaseKeeper(broker=self.broker, held=self._held, worker_id=self.worker_id,
                    lease_seconds=self.config.lease_seconds).start(self._finished)
        try:
            self._serve()
        finally:
            self._stopping.set()
            self._finished.set()
            if control is not None:
                control.stop()
            if wakeup is not None:
                wakeup.stop()
        return self.stats

    def _serve(self) -> None:
        grace_deadline = None
        while True:
            self._wake.clear()  # a wake-up from now on interrupts the wait below
            try:
                if self.stopping:
                    if grace_deadline is None:
                        grace_deadline = time.monotonic() + self.config.shutdown_grace_seconds
                        self._give_back_unstarted()
                    self._cycle(take_work=False)
                    if not self._held or time.monotonic() >= grace_deadline:
                        break
                    self._wait(0.1)
                    continue
                worked = self._cycle(take_work=True)
                if self._autoscaler is not None:
                    self._autoscaler.step(saturated=self._saturated, holding=bool(self._held))
                if self._failures:
                    logger.warning("the worker loop works again after %d failed attempt(s)", self._failures)
                    self._failures = 0
                if worked and self._saturated and self.pool.room(self.config.prefetch_multiplier) > 0:
                    continue  # more may wait, and there is room for it
                if self.burst and not self._held and self._done.empty():
                    break
                waits_in_fetch = (self._fetch_wait_seconds() > 0
                                  and self.pool.room(self.config.prefetch_multiplier) > 0)
                if waits_in_fetch and not worked:
                    continue  # the next fetch waits for a message, or for a task to end
                if waits_in_fetch:
                    self._wait(HAND_OVER_SECONDS)
                else:
                    self._wait(self.config.poll_interval_seconds if self.pool.free_slots() else 1.0)
            except (DatabaseError, BrokerError) as exc:
                if self._failures == 0:
                    logger.error("%s (retrying with backoff until it works again)", str(exc).rstrip("."))
                self._failures += 1
                close_old_connections()
                if self.stopping and grace_deadline and time.monotonic() >= grace_deadline:
                    break
                # A stop request (which sets the wake event) cuts the pause short.
                self._wake.wait(ERROR_BACKOFF_SECONDS[min(self._failures - 1, len(ERROR_BACKOFF_SECONDS) - 1)])
        if self._held:
            logger.warning("stopping with %d task(s) unfinished; they come back when their lease runs out",
                           len(self._held))
        self.pool.stop(timeout=0 if self._held else 5)

    def _give_back_unstarted(self) -> None:
        """On shutdown, return reserved tasks that did not start, so other workers run them now."""
        unstarted = self.pool.take_back()
        if not unstarted:
            return
        self.broker.release(unstarted)
        returned = {d.id for d in unstarted}
        self._unmarked = [(at, [e for e in marked if e.id not in returned]) for at, marked in self._unmarked]
        self._held.discard(returned)
        logger.info("returned %d reserved task(s) that had not started to the queue", len(unstarted))

    def _wait(self, seconds: float) -> None:
        """Wait for a wake-up, at most ``seconds``; less while start marks wait to be written.

        When tasks finished but every slot of the pool still has a task
        waiting for it, nothing needs the supervisor at once: it lets a few
        more finish (up to one per slot, or ``SETTLE_DELAY_SECONDS``), to
        store and ack them together, one write and one round trip.
        """
        if self._done.empty():
            self._wake.wait(min(seconds, START_MARK_DELAY_SECONDS) if self._unmarked else seconds)
        deadline = time.monotonic() + SETTLE_DELAY_SECONDS
        while (self.pool.free_slots() < 0 and self._done.qsize() < self.pool.concurrency
               and not self.stopping):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._wake.clear()  # new messages can wait: the pool has work queued
            self._wake.wait(remaining)

    def _cycle(self, *, take_work: bool) -> bool:
        """Store finished tasks, settle their messages and reserve new ones; return whether any was reserved."""
        self._take_done()
        limit = self.pool.room(self.config.prefetch_multiplier) if take_work else 0
        if self.outcomes.shares_database:
            deliveries = self._cycle_in_one_transaction(limit, take_work)
        else:
            deliveries = self._cycle_apart(limit, take_work)
        if take_work and time.monotonic() >= self._next_cleanup:
            self._clean_up_old_results()
            self._next_cleanup = time.monotonic() + CLEANUP_INTERVAL_SECONDS
        return bool(deliveries)

    def _take_done(self) -> None:
        """Move the completions the pool handed back to the outcomes to write."""
        while True:
            try:
                self._unwritten.append(self._done.get_nowait())
            except queue.Empty:
                break

    def _cycle_in_one_transaction(self, limit: int, take_work: bool) -> list[Delivery]:
        """The broker keeps its queue in the result database: outcomes, acks and the claim commit as one."""
        batch, self._unwritten = self._unwritten, []
        marks, self._unmarked = self._unmarked, []
        unsettled, self._unsettled = self._unsettled, []
        settling = unsettled + batch
        try:
            with self.results.atomic():
                if batch or marks:
                    self.outcomes.store(batch, marks)
                if settling:
                    self.outcomes.settle(settling)
                deliveries = self._take_work(limit, take_work)
        except BaseException:
            # Nothing is lost: what was not stored is stored next time, what was not settled is settled.
            self._unwritten = batch + self._unwritten
            self._unmarked = marks + self._unmarked
            self._unsettled = unsettled + self._unsettled
            raise
        self._forget(settling)
        self._hand_over(deliveries)
        return deliveries

    def _cycle_apart(self, limit: int, take_work: bool) -> list[Delivery]:
        """The broker is apart from the results: new work first, then outcomes stored, then their acks.

        The pool gets its next tasks before the outcomes' commit and the acks'
        round trip, so it is not idle while they are on the wire. A worker
        whose last fetch emptied its queues waits for new work meanwhile: its
        waiting fetch goes out first, on a free thread of the pool, so a
        message that comes during the commit starts at once (see
        :meth:`_wait_while_storing`). Start marks are written once due (see
        :meth:`_dispatch`), or with the outcome of their task if it ended
        first. An outcome is stored before its message is acked; if the ack
        fails, only the ack is tried again.
        """
        fetch_failure = None
        waiting = None
        try:
            waiting = self._wait_while_storing(limit, take_work)
            deliveries = [] if waiting is not None else self._take_work(limit, take_work)
        except BrokerError as exc:  # outcomes are still stored: the results do not wait for the broker
            deliveries, fetch_failure = [], exc
        self._hand_over(deliveries)
        try:
            self._store_and_settle()
        finally:
            if waiting is not None:
                try:
                    deliveries = self._waited(waiting, limit)
                except BrokerError as exc:
                    fetch_failure = exc
        if fetch_failure is not None:
            raise fetch_failure
        return deliveries

    def _store_and_settle(self) -> None:
        """Store the outcomes and due start marks (one commit), then ack their messages (one round trip)."""
        batch, self._unwritten = self._unwritten, []
        marks, self._unmarked = self._unmarked, []
        due_before = timezone.now() - dt.timedelta(seconds=START_MARK_DELAY_SECONDS)
        try:
            self._unmarked = self.outcomes.store(batch, marks, due_before=due_before) + self._unmarked
        except BaseException:
            self._unwritten = batch + self._unwritten
            self._unmarked = marks + self._unmarked
            raise
        settling, self._unsettled = self._unsettled + batch, []
        try:
            if settling:
                self.outcomes.settle(settling)
        except BaseException:
            self._unsettled = settling + self._unsettled  # stored already: only settled again
            raise
        self._forget(settling)

    def _wait_while_storing(self, limit: int, take_work: bool) -> FetchInPool | None:
        """Start the waiting fetch of an idle worker before this cycle stores outcomes; None if it is not one.

        Only after a fetch that emptied the queues, with no lease recovery
        due, and on a free thread of the pool: the supervisor stores the
        outcomes while that thread waits in Redis, and collects the fetch
        after them (:meth:`_waited`).
        """
        if not (take_work and limit > 0 and self._outcomes_before_wait() and time.monotonic() < self._next_recovery):
            return None
        return self._fetch_in_pool(limit, while_storing=True)

    def _outcomes_before_wait(self) -> bool:
        """Whether the last fetch emptied the queues while outcomes wait: the next fetch waits only with them stored.

        They are stored before that fetch, or while it waits on a thread of
        the pool. Not while they cannot be stored: new work does not wait for
        the database to come back.
        """
        pending = bool(self._unwritten or self._unsettled)
        return self._fetch_waits and not self._saturated and pending and not self._failures

    def _waited(self, job: FetchInPool, limit: int) -> list[Delivery]:
        """The deliveries of a fetch started by :meth:`_wait_while_storing`, handed to the pool."""
        self._store_while_waiting(job)
        deliveries, started = job.result()
        deliveries = self._fetched(limit, deliveries, started)
        self._hand_over(deliveries)
        return deliveries

    def _take_work(self, limit: int, take_work: bool) -> list[Delivery]:
        """Recover expired leases when it is time, then reserve up to ``limit`` messages."""
        if not take_work:
            return []
        if time.monotonic() >= self._next_recovery:
            self._recover()
            self._next_recovery = time.monotonic() + self.config.lease_seconds / 4
        if self._outcomes_before_wait():
            # No fetch waits while they are stored (no free thread, or leases were just recovered): the
            # outcomes go first, and the waiting fetch after them gets what came meanwhile (it has its
            # wake-up tokens), one round trip less per task.
            return []
        return self._reserve(limit) if limit > 0 else []

    def _hand_over(self, deliveries: list[Delivery]) -> None:
        """Hold ``deliveries`` (their leases renewed from now on) and give them to the pool."""
        started, self._started_in_fetch = self._started_in_fetch, []
        self._held.add(deliveries)
        if started:
            deliveries = [d for d in deliveries if d not in started]
        self._dispatch(deliveries, started=started)

    def _reserve(self, limit: int) -> list[Delivery]:
        """Lease up to ``limit`` messages.

        A fetch that waits runs on a free thread of the pool if it has one,
        which then runs the first task at once (see :class:`FetchInPool`);
        meanwhile this thread writes the outcomes and start marks that come
        (see :meth:`_store_while_waiting`).
        """
        job = self._fetch_in_pool(limit)
        if job is None:
            deliveries, started = self._fetch_here(limit), None
        else:
            self._store_while_waiting(job)
            deliveries, started = job.result()
        return self._fetched(limit, deliveries, started)

    def _fetch_in_pool(self, limit: int, *, while_storing: bool = False) -> FetchInPool | None:
        """Start a fetch that waits for messages on a free thread of the pool; None if it may not, or none is free."""
        wait_seconds = self._fetch_wait_seconds(in_pool=True, while_storing=while_storing)
        if wait_seconds <= 0:
            return None
        job = FetchInPool(self._fetch_call(limit, wait_seconds), self._start_at_once, wake=self._wake)
        return job if self.pool.run_job(job) else None

    def _fetch_here(self, limit: int) -> list[Delivery]:
        """Fetch in this thread, waiting if it may; a task that ends interrupts the wait (see :meth:`_on_done`)."""
        wait_seconds = self._fetch_wait_seconds()
        if wait_seconds > 0:
            self._waiting_in_fetch = True
            if not self._done.empty():  # a task ended before the flag was up: it could not interrupt
                wait_seconds = 0.0
        try:
            return self._fetch_call(limit, wait_seconds)()
        finally:
            self._waiting_in_fetch = False

    def _fetch_call(self, limit: int, wait_seconds: float) -> Callable[[], list[Delivery]]:
        return functools.partial(self.broker.fetch, self.queues, limit, worker_id=self.worker_id,
                                 lease_seconds=self.config.lease_seconds, now=self.clock(),
                                 wait_seconds=wait_seconds)

    def _store_while_waiting(self, job: FetchInPool) -> None:
        """Until ``job``'s fetch returns, store the outcomes of tasks that end, and start marks as they come due.

        Neither cuts the wait short: the fetch goes on waiting for messages
        on its thread of the pool while they are written here. If writing
        fails, what was not written is left for the next cycle, which tries
        again and reports the failure.
        """
        writing = not self._failures
        while True:
            self._wake.clear()
            if job.finished.is_set():
                break
            marks_in = self._seconds_until_marks_due()
            if writing and (not self._done.empty() or (marks_in is not None and marks_in <= 0)):
                self._take_done()
                try:
                    self._store_and_settle()
                except (DatabaseError, BrokerError):
                    writing = False
                continue
            self._wake.wait(marks_in if writing else None)
        if self.stopping or not self._done.empty():
            self._wake.set()  # not used up here: the loop looks again

    def _seconds_until_marks_due(self) -> float | None:
        """Seconds until the first start mark waiting to be written is due; None if none waits."""
        if not self._unmarked:
            return None
        due = self._unmarked[0][0] + dt.timedelta(seconds=START_MARK_DELAY_SECONDS)
        return (due - timezone.now()).total_seconds()

    def _fetched(self, limit: int, deliveries: list[Delivery], started: Delivery | None) -> list[Delivery]:
        """Note what a fetch got: whether it took all it could, and the delivery its thread runs already."""
        self._saturated = len(deliveries) >= limit
        if started is not None:
            self._started_in_fetch.append(started)
        return deliveries

    def _start_at_once(self, deliveries: list[Delivery]) -> Delivery | None:
        """The delivery that the pool thread which fetched ``deliveries`` runs at once (in that thread).

        The first one, unless the supervisor must see it first: revoked, rate
        limited, or ``async def`` (the event loop runs those).
        """
        if not deliveries:
            return None
        first = deliveries[0]
        if first.id in self._revoked or self._rate_limits.applies_to(first) or self.pool.counts_coroutine(first):
            return None
        self._held.add([first])
        return first

    def _fetch_wait_seconds(self, *, in_pool: bool = False, while_storing: bool = False) -> float:
        """How long the next fetch may wait for a message: 0 unless the broker can, and nothing else is due.

        Not after a fetch that took all it could (more may wait), nor while
        outcomes wait to be written, unless ``while_storing``: a fetch that
        waits while this cycle stores them. At most until the next lease
        recovery. A wait in this thread ends when the next start marks are
        due, and a task that ends interrupts it (see :meth:`_on_done`); a
        wait on a thread of the pool (``in_pool``) goes on while this thread
        writes those (see :meth:`_store_while_waiting`). A stop interrupts
        either.
        """
        if (not self._fetch_waits or self._saturated or self.stopping or not self._done.empty()
                or (not while_storing and (self._unwritten or self._unsettled))):
            return 0.0
        wait_seconds = min(IDLE_FETCH_WAIT_SECONDS, self._next_recovery - time.monotonic())
        marks_in = None if in_pool else self._seconds_until_marks_due()
        if marks_in is not None:
            wait_seconds = min(wait_seconds, marks_in)
        return max(0.0, wait_seconds)

    # -- revocations and inspection (called from the control thread) -------

    def revoke_locally(self, task_id: str, *, terminate: bool) -> None:
        """Never start ``task_id``; with ``terminate``, stop it if it runs here now."""
        self._revoked.add(task_id)
        if terminate and task_id in self._held and self.pool.terminate(task_id):
            logger.warning("Task [%s] revoked and stopped while it ran", task_id, extra={"task_id": task_id})

    def running(self) -> list[dict[str, str]]:
        """The tasks this worker holds now, for the registry and ``inspect``."""
        return [{"id": d.id, "task": task_path_of(d), "queue": d.queue} for d in self._held.all()]

    def describe(self) -> dict:
        return {"worker_id": self.worker_id, "pool": self.pool.name, "concurrency": self.pool.concurrency,
                "queues": self.queues or [], "started_at": self.started_at.isoformat(),
                "succeeded": self.stats.succeeded, "failed": self.stats.failed, "retried": self.stats.retried,
                "running": self.running()}

    def _dispatch(self, deliveries: list[Delivery], *, started: Sequence[Delivery] = ()) -> None:
        """Hand deliveries to the pool; their start marks are written later, in a cycle's writes.

        A task still running after ``START_MARK_DELAY_SECONDS`` has its mark
        written then (the worker wakes for it), so it shows RUNNING that soon;
        a task that ended before has its mark written with its outcome, in
        one UPDATE. A pool that runs tasks in this thread gets each mark
        written before its task starts instead. ``started`` are marked too:
        the thread that fetched them runs them already.
        """
        revoked = [d for d in deliveries if d.id in self._revoked]
        if revoked:
            deliveries = [d for d in deliveries if d.id not in self._revoked]
            for delivery in revoked:
                self._on_done(self.pool.execute.lost(delivery, TaskRevoked("revoked before it started"), 0.0))
        deliveries = self._rate_limits.admit(deliveries)
        marks_wanted = not self.broker.records_starts
        if marks_wanted and self.pool.runs_inline and (to_mark := envelopes_with_rows(deliveries)):
            self.outcomes.mark_started_now(to_mark)
        handed_at = timezone.now()
        for delivery in deliveries:
            self.pool.submit(delivery)
        # Worked out after the hand-over, which the pool's threads need not wait for.
        if marks_wanted and not self.pool.runs_inline and (to_mark := envelopes_with_rows([*started, *deliveries])):
            self._unmarked.append((handed_at, to_mark))

    def _clean_up_old_results(self) -> None:
        """Apply ``KEEP_RESULTS_DAYS``: delete finished rows older than that."""
        if self.config.keep_results_days is None:
            return
        cutoff = timezone.now() - dt.timedelta(days=self.config.keep_results_days)
        deleted = self.results.delete_finished_before(cutoff)
        if deleted:
            logger.info("deleted %d finished result(s) older than %s days", deleted, self.config.keep_results_days)

    def _recover(self) -> None:
        recovered = self.broker.recover(timezone.now())
        if recovered:
            logger.warning("%d task(s) whose worker stopped answering are queued again", recovered)

    def _on_done(self, completion: Completion) -> None:
        self._done.put(completion)
        self._wake.set()
        if self._waiting_in_fetch:
            self._waiting_in_fetch = False  # one interrupt per wait is enough
            self._interrupt_wait()

    # -- writing outcomes --------------------------------------------------

    def _forget(self, batch: list[Completion]) -> None:
        """After their outcomes are stored: stop renewing their leases, count and log them."""
        self._held.discard(c.delivery.id for c in batch)
        forget(c.delivery for c in batch)
        for completion in batch:
            self.outcomes.count_and_log(completion)
