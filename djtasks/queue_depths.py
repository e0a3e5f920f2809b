"""How many tasks wait in each queue, for every djtasks backend whose results the admin shows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.tasks import task_backends

from .backend import DjTasksBackend
from .brokers import QueueDepth
from .exceptions import DjTasksError


@dataclass(frozen=True)
class BackendQueues:
    """The queues of one backend: their depths, or why its broker could not tell them."""

    alias: str
    depths: list[QueueDepth] = field(default_factory=list)
    #: Set when the broker could not be asked (e.g. Redis unreachable).
    error: str = ""


def queues_of_backends(results_database: str, now: dt.datetime) -> list[BackendQueues]:
    """The queue depths (ready, scheduled, reserved) of each djtasks backend with results in ``results_database``.

    A broker that fails to answer gives its error instead of depths, so a
    page that shows them still renders while Redis is down.
    """
    found = []
    for backend in task_backends.all():
        if not isinstance(backend, DjTasksBackend) or backend.config.results_database != results_database:
            continue
        try:
            found.append(BackendQueues(backend.alias, backend.broker.depths(now)))
        except DjTasksError as exc:
            found.append(BackendQueues(backend.alias, error=str(exc)))
    return found
