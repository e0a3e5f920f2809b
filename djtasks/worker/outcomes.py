"""What a worker writes once tasks ran: start marks and outcomes in the results, acks to the broker, log lines."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from django.db import DatabaseError
from django.tasks import TaskResultStatus
from django.utils import timezone

from ..brokers import Broker
from ..messages import Envelope
from ..models import CANCELLED
from ..results import ResultStore, Start
from .executor import Completion

logger = logging.getLogger("djtasks.worker")

#: Start marks waiting to be written: when the tasks started, and their envelopes.
StartMarks = list[tuple[dt.datetime, list[Envelope]]]


@dataclass(slots=True)
class WorkerStats:
    succeeded: int = 0
    failed: int = 0
    retried: int = 0
    completions: list[Completion] = field(default_factory=list)


class OutcomeWriter:
    """Stores start marks and outcomes, settles messages, counts and logs finished tasks, for one worker."""

    def __init__(self, *, broker: Broker, results: ResultStore, worker_id: str, stats: WorkerStats,
                 keep_completions: bool) -> None:
        self.broker = broker
        self.results = results
        self.worker_id = worker_id
        self.stats = stats
        self.keep_completions = keep_completions
        #: The broker's writes take part in the results' transactions (the ORM broker): outcomes,
        #: acks and the next claim then commit together.
        self.shares_database = broker.database_alias == results.alias

    def mark_started_now(self, envelopes: list[Envelope]) -> None:
        """Mark tasks started at once, in a transaction of their own (for a pool that runs them in this thread)."""
        try:
            with self.results.atomic():
                self.results.mark_started(envelopes, self.worker_id, timezone.now(), durable=False)
        except DatabaseError as exc:  # the outcome is still written; only the start mark is missing
            logger.warning("could not mark %d task(s) started: %s", len(envelopes), exc)

    def store(self, batch: list[Completion], marks: StartMarks, *, due_before: dt.datetime | None = None
              ) -> StartMarks:
        """Record outcomes, and start marks, in one transaction; return the marks left for later.

        The mark of a task that has ended goes into its outcome's UPDATE (one
        row version instead of two). The marks of running tasks are written
        if they started before ``due_before`` (all of them if it is None); the
        others are returned. A transaction that holds start marks only need
        not wait for the disk: losing one in a database crash loses nothing
        but the mark.
        """
        ended = {c.outcome.task_id for c in batch}
        unmarked: dict[str, Start] = {}
        due: StartMarks = []
        later: StartMarks = []
        for at, envelopes in marks:
            running = []
            for envelope in envelopes:
                if envelope.id in ended:
                    unmarked[envelope.id] = Start(at, envelope)
                else:
                    running.append(envelope)
            if running:
                (due if due_before is None or at <= due_before else later).append((at, running))
        if not batch and not due:
            return later
        kept_rows = self.broker.creates_result_rows
        with self.results.atomic():
            for at, envelopes in due:
                self.results.mark_started(envelopes, self.worker_id, at, durable=bool(batch))
            stored = [c.outcome for c in batch if c.store_result or (kept_rows and c.retry_body is not None)]
            self.results.record(stored, unmarked=unmarked, worker_id=self.worker_id)
            if kept_rows:
                # ignore_result tasks on the ORM broker: the row was only the message.
                self.results.delete([c.outcome.task_id for c in batch
                                     if not c.store_result and c.retry_body is None])
        return later

    def settle(self, completions: list[Completion]) -> None:
        """Ack the messages of stored outcomes, or put retries back: after storing, so a crash re-runs, never loses.

        Both are idempotent, so settling again after a failure is safe.
        """
        if not (self.broker.settled_by_results and self.shares_database):
            self.broker.ack([c.delivery for c in completions if c.retry_body is None])
        for completion in completions:
            if completion.retry_body is not None:
                self.broker.nack(completion.delivery, body=completion.retry_body,
                                 available_at=completion.outcome.retry_at)

    def count_and_log(self, completion: Completion) -> None:
        """Count a settled task in the worker's stats and log its one line."""
        outcome = completion.outcome
        if outcome.status == TaskResultStatus.SUCCESSFUL:
            self.stats.succeeded += 1
        elif outcome.status in (TaskResultStatus.FAILED, CANCELLED):
            self.stats.failed += 1  # a revoked task did not succeed
        else:
            self.stats.retried += 1
        if self.keep_completions:
            self.stats.completions.append(completion)
        extra = {"task_id": outcome.task_id, "task": completion.task_path}
        if outcome.status == TaskResultStatus.READY:
            logger.warning("Task %s[%s] RETRY at %s after %.3fs: %s", completion.task_path, outcome.task_id,
                           outcome.retry_at.isoformat(), completion.duration_seconds,
                           outcome.error.message if outcome.error else "", extra=extra)
        elif outcome.status == CANCELLED:
            logger.warning("Task %s[%s] CANCELLED after %.3fs: %s", completion.task_path, outcome.task_id,
                           completion.duration_seconds, outcome.error.message if outcome.error else "", extra=extra)
        elif outcome.status == TaskResultStatus.FAILED:
            error = outcome.error
            logger.error("Task %s[%s] FAILED in %.3fs: %s: %s", completion.task_path, outcome.task_id,
                         completion.duration_seconds, error.exception_class_path if error else "?",
                         error.message if error else "", extra=extra)
        else:
            logger.info("Task %s[%s] SUCCESSFUL in %.3fs", completion.task_path, outcome.task_id,
                        completion.duration_seconds, extra=extra)
