"""``manage.py djtasks``: look at and operate the queues (status, cleanup, purge, retry)."""

from __future__ import annotations

import datetime as dt
import getpass
import re
import socket
import threading
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.tasks import TaskResultStatus, task_backends
from django.tasks.exceptions import TaskResultDoesNotExist
from django.utils import timezone

from djtasks.backend import DjTasksBackend
from djtasks.brokers.listener import Listener
from djtasks.control.models import ControlCommand, ControlReply
from djtasks.control.registry import ControlStore
from djtasks.control.wakeup import REPLY, fallback_poll_seconds, subscriber_for

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
#: Seconds between two looks for replies to a control command where the broker cannot signal them.
REPLY_POLL_SECONDS = 0.05
#: How many recent failures ``status`` shows.
RECENT_FAILURES = 5


def parse_duration(text: str) -> dt.timedelta:
    """``"7d"`` -> 7 days; units s, m, h, d, w."""
    match = DURATION.match(text)
    if match is None:
        raise CommandError(f"{text!r} is not a duration; use a number and a unit, e.g. 90s, 30m, 12h, 7d, 2w.")
    return dt.timedelta(seconds=float(match[1]) * UNIT_SECONDS[match[2]])


class Command(BaseCommand):
    help = "Inspect and operate djtasks queues and workers."

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
        for name, text in (("ping", "Ask every running worker to answer."),
                           ("inspect", "Show each worker's pool, queues, counts and running tasks.")):
            command = sub.add_parser(name, help=text)
            command.add_argument("--timeout", type=float, default=3.0, help="Seconds to wait for answers.")
        revoke = sub.add_parser("revoke", help="Never run these tasks (and with --terminate, stop them if running).")
        revoke.add_argument("task_ids", nargs="+", metavar="ID")
        revoke.add_argument("--terminate", action="store_true", help="Also stop them where they run now.")
        shutdown = sub.add_parser("shutdown", help="Stop one worker (or all) gracefully.")
        shutdown.add_argument("worker", nargs="?", default="", help="A worker id (default: every worker).")
        for name in ("pool-grow", "pool-shrink"):
            resize = sub.add_parser(name, help=f"{name.split('-')[1].capitalize()} the pools of workers by N.")
            resize.add_argument("n", type=int)
            resize.add_argument("--worker", default="", help="A worker id (default: every worker).")
            resize.add_argument("--timeout", type=float, default=3.0, help="Seconds to wait for answers.")

    def handle(self, *args: Any, **options: Any) -> None:
        backend = task_backends[options["backend"]]
        if not isinstance(backend, DjTasksBackend):
            raise CommandError(f"TASKS[{options['backend']!r}] is not a djtasks backend.")
        getattr(self, f"_{options['action'].replace('-', '_')}")(backend, options)

    def _status(self, backend: DjTasksBackend, options: dict[str, Any]) -> None:
        depths = backend.broker.depths(timezone.now())
        self.stdout.write(f"{'queue':<24} {'ready':>8} {'scheduled':>10} {'running':>8}")
        for depth in depths:
            self.stdout.write(f"{depth.queue:<24} {depth.ready:>8} {depth.scheduled:>10} {depth.reserved:>8}")
        if not depths:
            self.stdout.write("(no queued or running tasks)")
        failures = (backend.results.rows().filter(status=TaskResultStatus.FAILED).order_by("-finished_at")
                    .values("task_path", "finished_at", "errors")[:RECENT_FAILURES])
        workers = ControlStore(backend.config.results_database).alive(timezone.now())
        self.stdout.write(f"\nworkers ({len(workers)}):")
        for worker in workers:
            self.stdout.write(f"  {worker.worker_id}  pool {worker.pool} x{worker.concurrency}  "
                              f"{worker.succeeded} succeeded, {worker.failed} failed, {len(worker.running)} running")
        self.stdout.write("\nlast failures:")
        for row in failures:
            error = row["errors"][-1] if row["errors"] else {}
            when = row["finished_at"].isoformat(timespec="seconds") if row["finished_at"] else "?"
            self.stdout.write(f"  {when}  {row['task_path']}  {error.get('exception_class_path', '?')}: "
                              f"{error.get('message', '')}")
        if not failures:
            self.stdout.write("  (none)")

    # -- remote control --------------------------------------------------------

    def _ask(self, backend: DjTasksBackend, command: str, *, target: str = "", timeout: float = 3.0,
             **arguments: Any) -> list[ControlReply]:
        """Send ``command``; collect replies until every live worker answered or ``timeout`` passed."""
        store = ControlStore(backend.config.results_database)
        now = timezone.now()
        expected = {w.worker_id for w in store.alive(now) if not target or w.worker_id == target}
        replied = threading.Event()
        # Subscribed before the command goes out, so that no reply signal comes too early.
        subscriber = subscriber_for(backend.broker, {REPLY})
        if subscriber is not None:
            subscriber.start(replied)
        try:
            sent = store.send(command, now, target=target, **arguments)
            return self._replies(store, sent, expected, time.monotonic() + timeout, replied, subscriber)
        finally:
            if subscriber is not None:
                subscriber.stop()

    @staticmethod
    def _replies(store: ControlStore, sent: ControlCommand, expected: set[str], deadline: float,
                 replied: threading.Event, subscriber: Listener | None) -> list[ControlReply]:
        """Read the replies to ``sent`` on each reply signal (or poll), until all came or ``deadline``."""
        fallback_seconds = fallback_poll_seconds()
        while True:
            replied.clear()  # before the read: a reply from now on wakes the wait below
            replies = store.replies(sent)
            remaining = deadline - time.monotonic()
            if {r.worker_id for r in replies} >= expected or remaining <= 0:
                return replies
            signalled = subscriber is not None and subscriber.connected
            replied.wait(min(remaining, fallback_seconds if signalled else REPLY_POLL_SECONDS))

    def _ping(self, backend: DjTasksBackend, options: dict[str, Any]) -> None:
        replies = self._ask(backend, "ping", timeout=options["timeout"])
        for reply in replies:
            self.stdout.write(f"{reply.worker_id}: {reply.reply.get('ok', reply.reply)}")
        self.stdout.write(f"{len(replies)} worker(s) answered")

    def _inspect(self, backend: DjTasksBackend, options: dict[str, Any]) -> None:
        replies = self._ask(backend, "inspect", timeout=options["timeout"])
        for reply in replies:
            info = reply.reply
            self.stdout.write(f"{reply.worker_id}: pool {info['pool']} x{info['concurrency']}, queues "
                              f"{', '.join(info['queues']) or 'all'}; {info['succeeded']} succeeded, "
                              f"{info['failed']} failed, {info['retried']} retried; since {info['started_at']}")
            for task in info["running"]:
                self.stdout.write(f"    running {task['task']} [{task['id']}] on {task['queue']}")
        self.stdout.write(f"{len(replies)} worker(s) answered")

    def _revoke(self, backend: DjTasksBackend, options: dict[str, Any]) -> None:
        now = timezone.now()
        by = f"{getpass.getuser()}@{socket.gethostname()}"
        ids = options["task_ids"]
        ControlStore(backend.config.results_database).revoke(ids, now, by=by, terminate=options["terminate"])
        cancelled = backend.results.cancel_waiting(ids, now, by=by)
        self.stdout.write(f"revoked {len(ids)} task(s) ({cancelled} cancelled before they started)"
                          + ("; running ones are stopped" if options["terminate"] else ""))

    def _shutdown(self, backend: DjTasksBackend, options: dict[str, Any]) -> None:
        ControlStore(backend.config.results_database).send("shutdown", timezone.now(), target=options["worker"])
        self.stdout.write(f"asked {options['worker'] or 'every worker'} to shut down")

    def _pool_grow(self, backend: DjTasksBackend, options: dict[str, Any]) -> None:
        self._resize(backend, options, "pool_grow")

    def _pool_shrink(self, backend: DjTasksBackend, options: dict[str, Any]) -> None:
        self._resize(backend, options, "pool_shrink")

    def _resize(self, backend: DjTasksBackend, options: dict[str, Any], command: str) -> None:
        for reply in self._ask(backend, command, target=options["worker"], timeout=options["timeout"], n=options["n"]):
            self.stdout.write(f"{reply.worker_id}: {reply.reply.get('ok', reply.reply)}")

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
