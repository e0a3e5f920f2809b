"""``manage.py runworker``: start a worker that runs queued tasks."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.tasks import task_backends

from djtasks import registry
from djtasks.backend import DjTasksBackend
from djtasks.exceptions import ConfigurationError
from djtasks.worker import Worker
from djtasks.worker.asyncio_runner import ASYNC_TASKS_AT_ONCE
from djtasks.worker.pools import POOLS

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class Command(BaseCommand):
    help = "Run queued djtasks tasks until stopped with SIGTERM/SIGINT (or, with --burst, until none is due)."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("-Q", "--queues", default="", help="Comma-separated queues to serve (default: all).")
        parser.add_argument("--pool", choices=sorted(POOLS), default="prefork", help="Execution pool (default: prefork).")
        parser.add_argument("-c", "--concurrency", type=int, default=None,
                            help="Tasks run at once (default: the CPU count; 1 for solo).")
        parser.add_argument("--async-concurrency", type=int, default=ASYNC_TASKS_AT_ONCE, metavar="N",
                            help=f"async def tasks awaited at once, on the worker's event loop "
                                 f"(default: {ASYNC_TASKS_AT_ONCE}).")
        parser.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                            help="Hard time limit of tasks that set none (prefork: the child is killed).")
        parser.add_argument("--soft-time-limit", type=float, default=None, metavar="SECONDS",
                            help="Soft time limit of tasks that set none (SoftTimeLimitExceeded is raised).")
        parser.add_argument("--autoscale", default=None, metavar="MAX,MIN",
                            help="Prefork or threads: between MIN and MAX slots, growing while tasks wait.")
        parser.add_argument("--autoscale-idle", type=float, default=10.0, metavar="SECONDS",
                            help="With --autoscale: idle seconds before one slot is removed (default 10).")
        parser.add_argument("--max-tasks-per-child", type=int, default=None, metavar="N",
                            help="Prefork: replace a child after it ran N tasks.")
        parser.add_argument("--max-memory-per-child", type=int, default=None, metavar="KIB",
                            help="Prefork: replace a child, after its task, once its memory passes KIB.")
        parser.add_argument("--burst", action="store_true", help="Run what is due, then exit.")
        parser.add_argument("--beat", action="store_true",
                            help="Also enqueue periodic tasks (as runbeat does), in a thread of this worker.")
        parser.add_argument("--backend", default="default", help="Alias in settings.TASKS (default: default).")
        parser.add_argument("-l", "--loglevel", choices=LOG_LEVELS, default="info", help="Log level.")

    def handle(self, *args: Any, **options: Any) -> None:
        _configure_logging(options["loglevel"])
        backend = task_backends[options["backend"]]
        if not isinstance(backend, DjTasksBackend):
            raise CommandError(f"TASKS[{options['backend']!r}] is not a djtasks backend ({type(backend).__name__}).")
        concurrency = options["concurrency"] or (1 if options["pool"] == "solo" else os.cpu_count() or 1)
        if concurrency < 1:
            raise CommandError("--concurrency must be at least 1.")
        for name in ("time_limit", "soft_time_limit", "max_tasks_per_child", "max_memory_per_child",
                     "async_concurrency"):
            if options[name] is not None and options[name] <= 0:
                raise CommandError(f"--{name.replace('_', '-')} must be positive.")
        autoscale = _parse_autoscale(options["autoscale"], options["pool"])
        if autoscale is not None:
            concurrency = autoscale[1]
        queues = [q.strip() for q in options["queues"].split(",") if q.strip()] or None
        registry.autodiscover()
        try:
            worker = Worker(backend=backend, pool=options["pool"], concurrency=concurrency, queues=queues,
                            burst=options["burst"], time_limit=options["time_limit"],
                            soft_time_limit=options["soft_time_limit"],
                            max_tasks_per_child=options["max_tasks_per_child"],
                            max_memory_per_child_kib=options["max_memory_per_child"], control=True,
                            autoscale=autoscale, autoscale_idle_seconds=options["autoscale_idle"],
                            async_concurrency=options["async_concurrency"])
        except ConfigurationError as exc:  # e.g. a pool whose needs are not met
            raise CommandError(str(exc)) from None
        beat = _start_beat(options, worker)
        _install_signal_handlers(worker, beat)
        try:
            stats = worker.run()
        finally:
            _stop_beat(beat)
        logging.getLogger("djtasks.worker").info(
            "worker %s stopped: %d succeeded, %d failed, %d retried", worker.worker_id, stats.succeeded,
            stats.failed, stats.retried)


def _parse_autoscale(text: str | None, pool: str) -> tuple[int, int] | None:
    """``"10,2"`` -> (10, 2): at most 10 slots, at least 2."""
    if text is None:
        return None
    if pool not in ("prefork", "threads"):
        raise CommandError(f"--autoscale needs the prefork or threads pool, not {pool}.")
    try:
        most, fewest = (int(part) for part in text.split(","))
    except ValueError:
        raise CommandError(f"--autoscale {text!r}: give MAX,MIN, e.g. 10,2.") from None
    if not 1 <= fewest <= most:
        raise CommandError(f"--autoscale {text!r}: need 1 <= MIN <= MAX.")
    return most, fewest


# -- --beat: beat in a thread of the worker, stopped with it ------------------------

def _start_beat(options: dict[str, Any], worker: Worker):  # noqa: ANN202 - a BeatThread or None
    if not options["beat"]:
        return None
    if options["burst"]:
        raise CommandError("--beat runs until stopped; it cannot be combined with --burst.")
    from djtasks.beat.ticker import BeatThread
    from djtasks.management.commands.runbeat import make_beat

    beat = BeatThread(make_beat(options["backend"]))
    # Start it once the prefork children are forked: a fork copies no thread.
    threading.Thread(target=lambda: worker.ready.wait() and beat.start(), name="djtasks-beat-start",
                     daemon=True).start()
    return beat


def _stop_beat(beat) -> None:  # noqa: ANN001 - a BeatThread or None
    if beat is None:
        return
    if beat.thread.ident is None:  # the worker stopped before beat started
        beat.request_stop()
    else:
        beat.stop()


def _install_signal_handlers(worker: Worker, beat=None) -> None:  # noqa: ANN001 - a BeatThread or None
    """First SIGTERM/SIGINT: finish running tasks and exit 0. Second: exit now."""

    def handle(signum: int, frame: Any) -> None:
        if beat is not None:
            beat.request_stop()  # stop enqueueing at once; the lead passes to another beat
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
