"""``manage.py bench_enqueue``: the producer side of every workload.

Enqueues tasks of the active contestant and prints one JSON line with the
count, the elapsed seconds and the rate. Modes:

``one``
    ``count`` tasks, one ``enqueue()``/``delay()`` call each, as fast as possible.
``many``
    ``count`` tasks through the bulk API, in batches of ``--batch-size``.
``paced``
    ``count`` tasks, one every ``--interval`` seconds; each carries its
    enqueue wall time so the task can compute its start latency. With
    ``--random-arrivals``, at random times with gaps of mean ``--interval``.

``--nores`` enqueues the fire-and-forget variant ``noop_nores`` (modes ``one`` and ``many``).

``--warmup N`` first enqueues N untimed tasks (tag ``<tag>-warmup``), so that
connections and imports are in place before the clock starts.
"""

import json
import random
import time
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from benchapp.contestant import TasksModule, tasks_module

#: The seed of ``--random-arrivals``: the same times for every contestant and run.
RANDOM_ARRIVALS_SEED = 1


def enqueue_one_by_one(tasks: TasksModule, tag: str, count: int, nores: bool = False) -> float:
    """Enqueue ``count`` tasks one call each; return the elapsed seconds."""
    enqueue_one = tasks.enqueue_one_nores if nores else tasks.enqueue_one
    started = time.perf_counter()
    for _ in range(count):
        enqueue_one(tag, 0.0)
    return time.perf_counter() - started


def enqueue_in_bulk(tasks: TasksModule, tag: str, count: int, batch_size: int, nores: bool = False) -> float:
    """Enqueue ``count`` tasks with the bulk API; return the elapsed seconds."""
    enqueue_many = tasks.enqueue_many_nores if nores else tasks.enqueue_many
    started = time.perf_counter()
    for first in range(0, count, batch_size):
        size = min(batch_size, count - first)
        enqueue_many([(tag, 0.0)] * size)
    return time.perf_counter() - started


def enqueue_paced(tasks: TasksModule, tag: str, count: int, interval: float, random_arrivals: bool = False) -> float:
    """Enqueue one task every ``interval`` seconds, each with its enqueue time.

    With ``random_arrivals``, at random times instead: gaps drawn from an
    exponential distribution of mean ``interval``, from a fixed seed, so
    every contestant gets the same times.
    """
    gaps = random.Random(RANDOM_ARRIVALS_SEED)
    at = 0.0
    started = time.perf_counter()
    for _ in range(count):
        delay = started + at - time.perf_counter()
        at += gaps.expovariate(1 / interval) if random_arrivals else interval
        if delay > 0:
            time.sleep(delay)
        tasks.enqueue_one(tag, time.time())
    return time.perf_counter() - started


class Command(BaseCommand):
    """Enqueue benchmark tasks and report the enqueue rate as JSON."""

    help = __doc__

    def add_arguments(self, parser: ArgumentParser) -> None:
        """Declare the command's options."""
        parser.add_argument("--mode", choices=("one", "many", "paced"), default="one")
        parser.add_argument("--count", type=int, required=True)
        parser.add_argument("--tag", default="bench")
        parser.add_argument("--warmup", type=int, default=0)
        parser.add_argument("--batch-size", type=int, default=1000)
        parser.add_argument("--interval", type=float, default=0.02)
        parser.add_argument("--nores", action="store_true", help="fire-and-forget tasks (modes one and many)")
        parser.add_argument("--random-arrivals", action="store_true", help="mode paced: exponential gaps")

    def handle(self, *args: Any, **options: Any) -> None:
        """Run the warm-up, then the timed enqueue, and print the figures."""
        tasks = tasks_module()
        tag, count = options["tag"], options["count"]
        if options["warmup"]:
            enqueue_one_by_one(tasks, f"{tag}-warmup", options["warmup"], options["nores"])
        if options["mode"] == "one":
            seconds = enqueue_one_by_one(tasks, tag, count, options["nores"])
        elif options["mode"] == "many":
            seconds = enqueue_in_bulk(tasks, tag, count, options["batch_size"], options["nores"])
        else:
            seconds = enqueue_paced(tasks, tag, count, options["interval"], options["random_arrivals"])
        self.stdout.write(
            json.dumps({"count": count, "seconds": seconds, "rate": count / seconds})
        )
