"""``manage.py bench_engine_enqueue``: fill the queue for the worker-engine workloads.

Enqueues ``--count`` tasks of ``--kind`` (``sleep``, ``async-sleep``, ``cpu``,
``noop-nores``) of the active contestant's ``benchapp.engine_<contestant>``
module, each given ``--tag`` and ``--argument`` (seconds to sleep, loops to
spin; unused by ``noop-nores``). ``--batch-size N`` uses the bulk API
(djtasks ``enqueue_many``) in batches of N; 0 (the default) one call per task.
Prints one JSON line with the count and the elapsed seconds.
"""

import json
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from benchapp.contestant import engine_module


class Command(BaseCommand):
    """Enqueue engine-workload tasks and report how long it took, as JSON."""

    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        """Declare the command's options."""
        parser.add_argument("--kind", choices=("sleep", "async-sleep", "cpu", "noop-nores"), required=True)
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--tag", required=True)
        parser.add_argument("--argument", type=float, default=0.0)
        parser.add_argument("--batch-size", type=int, default=0)

    def handle(self, *args: Any, **options: Any) -> None:
        """Enqueue, then print the figures."""
        engine = engine_module()
        if engine is None:
            raise CommandError("this contestant has no engine tasks (benchapp.engine_<contestant>)")
        started = time.perf_counter()
        engine.enqueue(options["kind"], options["tag"], options["argument"], options["count"], options["batch_size"])
        seconds = time.perf_counter() - started
        count = options["count"]
        self.stdout.write(json.dumps({"count": count, "seconds": seconds, "rate": count / seconds}))
