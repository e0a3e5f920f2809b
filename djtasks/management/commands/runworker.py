"""``manage.py runworker``: start a worker that runs queued tasks."""

from __future__ import annotations

import logging
import os
import signal
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.tasks import task_backends

from djtasks import registry
from djtasks.backend import DjTasksBackend
from djtasks.worker import Worker
from djtasks.worker.pools import POOLS

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class Command(BaseCommand):
    help = "Run queued djtasks tasks until stopped with SIGTERM/SIGINT (or, with --burst, until none is due)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("-Q", "--queues", default="", help="Comma-separated queues to serve (default: all).")
        parser.add_argument("--pool", choices=sorted(POOLS), default="threads", help="Execution pool.")
        parser.add_argument("-c", "--concurrency", type=int, default=None,
                            help="Tasks run at once (default: CPU count for threads, 1 for solo).")
        parser.add_argument("--burst", action="store_true", help="Run what is due, then exit.")
        parser.add_argument("--backend", default="default", help="Alias in settings.TASKS (default: default).")
        parser.add_argument("-l", "--loglevel", choices=LOG_LEVELS, default="info", help="Log level.")

    def handle(self, *args: Any, **options: Any) -> None:
        _configure_logging(options["loglevel"])
        backend = task_backends[options["backend"]]
        if not isinstance(backend, DjTasksBackend):
            raise CommandError(f"TASKS[{options['backend']!r}] is not a djtasks backend ({type(backend).__name__}).")
        concurrency = options["concurrency"] or (os.cpu_count() or 1 if options["pool"] == "threads" else 1)
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1.")
        queues = [q.strip() for q in options["queues"].split(",") if q.strip()] or None
        registry.autodiscover()
        worker = Worker(backend=backend, pool=options["pool"], concurrency=concurrency, queues=queues,
                        burst=options["burst"])
        _install_signal_handlers(worker)
        stats = worker.run()
        logging.getLogger("djtasks.worker").info(
            "worker %s stopped: %d succeeded, %d failed, %d retried", worker.worker_id, stats.succeeded,
            stats.failed, stats.retried)


def _install_signal_handlers(worker: Worker) -> None:
    """First SIGTERM/SIGINT: finish running tasks and exit 0. Second: exit now."""

    def handle(signum: int, frame: Any) -> None:
        if worker.stopping:
            logging.getLogger("djtasks.worker").warning("second signal: stopping now; unfinished tasks come back "
                                                        "when their lease runs out")
            os._exit(128 + signum)
        logging.getLogger("djtasks.worker").info("%s received: finishing running tasks (signal again to stop now)",
                                                 signal.Signals(signum).name)
        worker.request_stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _configure_logging(level: str) -> None:
    if level != "debug":
        # Django logs each start and finish too; the worker's own line per task says more.
        logging.getLogger("django.tasks").setLevel(logging.WARNING)
    logger = logging.getLogger("djtasks")
    logger.setLevel(level.upper())
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("[%(asctime)s: %(levelname)s/%(processName)s] %(message)s"))
        logger.addHandler(handler)
