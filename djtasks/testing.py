"""Run what a test enqueued, in-process and deterministically.

In a ``TestCase``::

    from djtasks.testing import TasksTestMixin

    class SignupTests(TasksTestMixin, TestCase):
        def test_welcome_mail(self):
            self.client.post("/signup/", {...})
            [result] = self.drain_tasks()
            self.assertEqual(result.status, "SUCCESSFUL")

With pytest, add ``pytest_plugins = ["djtasks.testing"]`` to ``conftest.py``
and take the ``djtasks_drain`` fixture (it is :func:`drain`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from django.tasks import task_backends
from django.utils import timezone

from .taskresult import DjTaskResult
from .worker import Worker

#: How far ahead ``drain(include_scheduled=True)`` looks: far enough for any countdown.
SCHEDULED_HORIZON = dt.timedelta(days=365 * 100)


def drain(queue: str | Sequence[str] | None = None, *, backend: str = "default",
          include_scheduled: bool = False) -> list[DjTaskResult]:
    """Run every due task of ``queue`` (default: all queues) in this thread until none is left.

    Tasks that tasks enqueue run too, and so do retries that are due.
    ``include_scheduled=True`` also runs tasks whose countdown/eta or retry
    delay has not come yet. Return the final result of each task run, in the
    order they finished (a task retried several times appears once; tasks
    declared ``ignore_result=True`` run but have no result to return).
    """
    queues = [queue] if isinstance(queue, str) else list(queue) if queue else None
    task_backend = task_backends[backend]
    clock = (lambda: timezone.now() + SCHEDULED_HORIZON) if include_scheduled else timezone.now
    worker = Worker(backend=task_backend, pool="solo", queues=queues, burst=True, keep_completions=True,
                    worker_id="djtasks.testing", clock=clock)
    stats = worker.run()
    finished_ids = list(dict.fromkeys(c.outcome.task_id for c in stats.completions if c.store_result))
    return [task_backend.get_result(task_id) for task_id in finished_ids]


class TasksTestMixin:
    """Adds :meth:`drain_tasks` to a Django ``TestCase``."""

    def drain_tasks(self, queue: str | Sequence[str] | None = None, *, backend: str = "default",
                    include_scheduled: bool = False) -> list[DjTaskResult]:
        return drain(queue, backend=backend, include_scheduled=include_scheduled)


try:
    import pytest
except ImportError:  # pragma: no cover - pytest is optional
    pass
else:
    @pytest.fixture
    def djtasks_drain():  # noqa: ANN201
        """The :func:`drain` function, for tests that enqueue tasks."""
        return drain
