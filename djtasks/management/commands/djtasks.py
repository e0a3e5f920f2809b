"""``manage.py djtasks``: look at and operate the queues (status, cleanup, purge, retry)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from djtasks.backend import DjTasksBackend

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: How many recent failures ``status`` shows.
RECENT_FAILURES = 5


def parse_duration(text: str) -> dt.timedelta:
    """``"7d"`` -> 7 days; units s, m, h, d, w."""
    match = DURATION.match(text)
    if match is None:
        raise CommandError(f"{text!r} is not a duration; use a number and a unit, e.g. 90s, 30m, 12h, 7d, 2w.")
    return dt.timedelta(seconds=float(match[1]) * UNIT_SECONDS[match[2]])


class Command(BaseCommand):
    help = "Inspect and operate djtasks queues."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--backend", default="default", help="Alias in settings.TASKS.")
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("status", help="Tasks per queue (ready, scheduled, running) and the last failures.")
        cleanup = sub.add_parser("cleanup", help="Delete finished result rows older than a duration.")
        cleanup.add_argument("--older-than", default=None, help="e.g. 7d, 12h (default: KEEP_RESULTS_DAYS).")
        purge = sub.add_parser("purge", help="Delete the tasks waiting in a queue (not those running).")
        purge.add_argument("queue")
        retry = sub.add_parser("retry", help="Enqueue a finished task again, with the same arguments.")
        retry.add_argument("task_id")

    def handle(self, *args: Any, **options: Any) -> None:
        backend = task_backends[options["backend"]]
        if not isinstance(backend, DjTasksBackend):
            raise CommandError(f"TASKS[{options['backend']!r}] is not a djtasks backend.")
        getattr(self, f"_{options['action']}")(backend, options)

    def _status(self, backend: DjTasksBackend, options: dict[str, Any]) -> None:
        depths = backend.broker.depths(timezone.now())
        self.stdout.write(f"{'queue':<24} {'ready':>8} {'scheduled':>10} {'running':>8}")
        for depth in depths:
            self.stdout.write(f"{depth.queue:<24} {depth.ready:>8} {depth.scheduled:>10} {depth.reserved:>8}")
        if not depths:
            self.stdout.write("(no queued or running tasks)")
        failures = (backend.results.rows().filter(status=TaskResultStatus.FAILED).order_by("-finished_at")
                    .values("task_path", "finished_at", "errors")[:RECENT_FAILURES])
        self.stdout.write("\nlast failures:")
        for row in failures:
            error = row["errors"][-1] if row["errors"] else {}
            when = row["finished_at"].isoformat(timespec="seconds") if row["finished_at"] else "?"
            self.stdout.write(f"  {when}  {row['task_path']}  {error.get('exception_class_path', '?')}: "
                              f"{error.get('message', '')}")
        if not failures:
            self.stdout.write("  (none)")

    def _cleanup(self, backend: DjTasksBackend, options: dict[str, Any]) -> None:
        if options["older_than"]:
            age = parse_duration(options["older_than"])
        elif backend.config.keep_results_days is not None:
            age = dt.timedelta(days=backend.config.keep_results_days)
        else:
            raise CommandError("Give --older-than (e.g. 7d), or set OPTIONS['KEEP_RESULTS_DAYS'].")
        deleted = backend.results.delete_finished_before(timezone.now() - age)
        self.stdout.write(f"deleted {deleted} finished result(s) older than {age}")

    def _purge(self, backend: DjTasksBackend, options: dict[str, Any]) -> None:
        ids = backend.broker.purge(options["queue"])
        backend.results.rows().filter(id__in=ids, status=TaskResultStatus.READY).delete()
        self.stdout.write(f"purged {len(ids)} waiting task(s) from queue {options['queue']!r}")

    def _retry(self, backend: DjTasksBackend, options: dict[str, Any]) -> None:
        try:
            old = backend.get_result(options["task_id"])
        except TaskResultDoesNotExist as exc:
            raise CommandError(f"no task result {options['task_id']!r}") from exc
        if not old.is_finished:
            raise CommandError(f"task {old.id} is {old.status}; only finished tasks can be retried")
        new = backend.enqueue(old.task, old.args, old.kwargs)
        self.stdout.write(f"enqueued {old.task.module_path} again as {new.id}")
