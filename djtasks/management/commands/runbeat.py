"""``manage.py runbeat``: enqueue periodic tasks when they are due.

Run as many as you like, on one host or many: one leads (it holds the lease
on the results database) and enqueues; the others stand by and take over
within ``--lease-seconds`` when it dies. Each tick is enqueued once.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.tasks import task_backends

from djtasks import registry
from djtasks.backend import DjTasksBackend
from djtasks.beat.schedules import CatchUp
from djtasks.beat.ticker import Beat, config_for
from djtasks.exceptions import ConfigurationError
from djtasks.management.commands.runworker import LOG_LEVELS, _configure_logging


class Command(BaseCommand):
    help = "Enqueue periodic tasks when due, until stopped with SIGTERM/SIGINT. Several may run: one leads."
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--backend", default="default", help="Alias in settings.TASKS (default: default).")
        parser.add_argument("--catch-up", choices=[c.value for c in CatchUp], default=None,
                            help="Ticks missed while no beat ran: enqueue the latest once (default), or skip them.")
        parser.add_argument("--lease-seconds", type=float, default=None,
                            help="How long the leader's lease lasts unrenewed; a standby takes over this long "
                                 "after the leader dies (default: 10).")
        parser.add_argument("-l", "--loglevel", choices=LOG_LEVELS, default="info", help="Log level.")

    def handle(self, *args: Any, **options: Any) -> None:
        _configure_logging(options["loglevel"])
        beat = make_beat(options["backend"], catch_up=options["catch_up"], lease_seconds=options["lease_seconds"])
        _install_signal_handlers(beat)
        beat.run()


def make_beat(alias: str, **overrides: Any) -> Beat:
    """A beat for backend ``alias``; raise ``CommandError`` for a bad backend or configuration."""
    backend = task_backends[alias]
    if not isinstance(backend, DjTasksBackend):
        raise CommandError(f"TASKS[{alias!r}] is not a djtasks backend ({type(backend).__name__}).")
    if overrides.get("lease_seconds") is not None and overrides["lease_seconds"] <= 0:
        raise CommandError("--lease-seconds must be positive.")
    registry.autodiscover()
    try:
        return Beat(backend=backend, config=config_for(backend, **overrides))
    except ConfigurationError as exc:
        raise CommandError(str(exc)) from exc


def _install_signal_handlers(beat: Beat) -> None:
    """First SIGTERM/SIGINT: give up the lead and exit 0. Second: exit now."""

    def handle(signum: int, frame: Any) -> None:
        if beat.stopping:
            os._exit(128 + signum)
        logging.getLogger("djtasks.beat").info("%s received: stopping", signal.Signals(signum).name)
        beat.request_stop()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
