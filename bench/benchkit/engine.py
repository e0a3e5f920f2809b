"""The worker-engine workloads (issue 5): what the pools do with slow, heavy and many tasks.

Selected with ``--workloads io,cpu,memory,overhead`` (never run by default);
each has its own contestants (``config.ENGINE_CONTESTANTS``). djtasks runs
on its Redis broker (database 11) with its results on PostgreSQL, as
``djtasks-redis`` does; Celery on Redis (database 12).

``io``
    N tasks that each sleep ``io_seconds`` (``time.sleep``; ``await
    asyncio.sleep`` for djtasks' ``async def`` variant) are enqueued with no
    worker running, then the worker starts. Each task records its start and
    end after its sleep. Figure: the wall time from the first task's start to
    the last task's end, beside the ideal ``io_seconds * max(1, N / c)`` for
    the worker's ``c`` tasks at once, and their ratio; then a check that every
    result is stored as successful.
``cpu``
    N tasks of ``cpu_seconds`` of pure-Python work (a loop whose count is
    calibrated once per run, the same argument for every contestant), prefork
    with two children beside solo. Figure: first start to last end; the
    speed-up is solo time / prefork time.
``memory``
    A prefork worker with two children runs ``memory_first`` fire-and-forget
    no-op tasks, becomes idle, and its RSS summed over all its processes is
    read; then up to ``memory_total`` tasks in all, idle, read again. Growth
    in per cent.
``overhead``
    ``drain-nores`` (fire-and-forget no-op tasks on Redis) for djtasks with
    the control plane off, as ``runworker`` runs by default (control plane on),
    and with worker time limits too. Differences in per cent.
"""

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import psutil

from .config import PROJECT_DIR, Contestant, Sizes
from .harness import Harness
from .stats import rate_between
from .workers import BenchError, WorkerGroup, wait_until
from .workloads import drain_nores, wait_for_results

#: How many ``async def`` tasks a djtasks worker awaits at once unless ``--async-concurrency`` says:
#: ``ASYNC_TASKS_AT_ONCE`` in ``djtasks/worker/asyncio_runner.py``.
DJTASKS_ASYNC_TASKS_AT_ONCE = 1000

#: The task each ``io`` contestant runs (``sleep`` unless named here).
IO_KIND = {"djtasks-io-asyncio": "async-sleep", "djtasks-io-asyncio-200": "async-sleep"}


# -- shared steps ------------------------------------------------------------------------------


def worker_concurrency(contestant: Contestant) -> int:
    """Tasks the contestant runs at once: its workers' ``-c`` (``--async-concurrency`` for ``async def`` tasks)."""
    option, default = ("--async-concurrency", DJTASKS_ASYNC_TASKS_AT_ONCE) \
        if IO_KIND.get(contestant.name) == "async-sleep" else ("-c", 1)
    total = 0
    for command in contestant.workers:
        args = list(command)
        total += int(args[args.index(option) + 1]) if option in args else default
    return total


def fill(
    harness: Harness, kind: str, tag: str, count: int, argument: float = 0.0, batch_size: int = 1000
) -> dict[str, Any]:
    """Enqueue ``count`` tasks of ``kind`` (djtasks: ``enqueue_many`` in batches; Celery: one ``delay()`` each)."""
    batch = batch_size if harness.contestant.bulk else 0
    return harness.manage_json(
        "bench_engine_enqueue", "--kind", kind, "--tag", tag, "--count", str(count), "--argument", str(argument),
        "--batch-size", str(batch), timeout=1800,
    )


def results_in_redis(contestant: Contestant) -> bool:
    """Whether this (Celery) contestant stores its results in Redis rather than in PostgreSQL."""
    return dict(contestant.env).get("BENCH_CELERY_RESULTS") == "redis"


def celery_redis_results(harness: Harness) -> dict[str, int]:
    """Celery's results in its Redis result backend (the broker database), by state."""
    client = harness.services.redis(harness.contestant.redis_broker_db or 0)
    keys = list(client.scan_iter(match="celery-task-meta-*", count=1000))
    counts = {"succeeded": 0, "failed": 0, "other": 0}
    for first in range(0, len(keys), 1000):
        for raw in client.mget(keys[first:first + 1000]):
            state = "succeeded" if raw and '"SUCCESS"' in raw else "failed" if raw and '"FAILURE"' in raw else "other"
            counts[state] += 1
    return counts


def wait_for_stored(harness: Harness, expected: int, workers: WorkerGroup) -> dict[str, int]:
    """Wait until ``expected`` results are stored as successful (result rows, or Celery's Redis results)."""
    if not results_in_redis(harness.contestant):
        return wait_for_results(harness, expected, workers, timeout=120)
    wait_until(
        lambda: sum(celery_redis_results(harness).values()) >= expected, 120, f"{expected} stored results", workers,
        0.1,
    )
    counts = celery_redis_results(harness)
    if counts["failed"] or counts["succeeded"] < expected:
        raise BenchError(f"expected {expected} succeeded results, found {counts}")
    return counts


def span_figures(spans: list[tuple[float, float]], spawned_at: float) -> dict[str, Any]:
    """Figures of tasks that each recorded ``(start, end)``: first start to last end, and per task."""
    starts = [start for start, _ in spans]
    ends = [end for _, end in spans]
    durations = [end - start for start, end in spans]
    return {
        "executions": len(spans),
        "seconds": max(ends) - min(starts),
        "first_to_last_start_s": max(starts) - min(starts),
        "starts_per_s": rate_between(starts) if len(starts) > 1 else None,
        "first_start_after_spawn_s": min(starts) - spawned_at,
        "task_mean_ms": statistics.fmean(durations) * 1000,
        "task_max_ms": max(durations) * 1000,
    }


def run_spans(
    harness: Harness, kind: str, tag: str, count: int, argument: float, timeout: float
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fill the queue, start the worker, wait for every task and its stored result; (fill, span figures)."""
    harness.reset()
    filled = fill(harness, kind, tag, count, argument)
    workers = harness.start_workers(tag)
    try:
        # The figures come from the tasks' own timestamps: polling more often would only load the machine.
        wait_until(all_ended(harness, tag, count), timeout, f"{count} {tag} tasks", workers, 0.05)
        stored = wait_for_stored(harness, count, workers)
    finally:
        workers.stop()
    figures = span_figures(harness.records(tag), workers.started_at)
    if figures["executions"] != count:
        raise BenchError(f"{figures['executions']} executions of {count} tasks")
    return filled, {**figures, "results": stored}


def all_ended(harness: Harness, tag: str, count: int, every_s: float = 1.0) -> Callable[[], bool]:
    """A condition: ``count`` tasks recorded their end, or (result rows, looked at every ``every_s``) all finished.

    The second case means some tasks failed before recording: the check of
    the stored results that follows says which, at once rather than after
    the timeout.
    """
    next_look = time.monotonic() + every_s

    def ended() -> bool:
        nonlocal next_look
        if harness.count(tag) >= count:
            return True
        if results_in_redis(harness.contestant) or time.monotonic() < next_look:
            return False
        next_look = time.monotonic() + every_s
        return harness.finished_rows() >= count

    return ended


@cache
def calibrated_loops(seconds: float) -> int:
    """The ``spin`` loop count lasting ``seconds`` here (``benchapp.work.calibrate``), once per run."""
    done = subprocess.run(
        [sys.executable, "-c", f"from benchapp.work import calibrate; print(calibrate({seconds!r}))"],
        cwd=PROJECT_DIR, capture_output=True, text=True, check=True,
    )
    return int(done.stdout.strip())


def cpu_seconds(workers: WorkerGroup) -> float:
    """CPU seconds used so far by every worker process and its children."""
    total = 0.0
    for proc in workers.procs:
        root = psutil.Process(proc.pid)
        for member in [root, *root.children(recursive=True)]:
            try:
                times = member.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
    return total


def wait_idle(workers: WorkerGroup, timeout: float = 120, window: float = 1.0, busy: float = 0.05) -> float:
    """Wait until the workers used under ``busy`` of one core over ``window`` seconds; return that share.

    An idle worker still wakes now and then (heartbeats, polls): idle means
    "almost no CPU", measured over a window, not "no CPU at all".
    """
    deadline = time.monotonic() + timeout
    while True:
        workers.check_alive()
        before, started = cpu_seconds(workers), time.monotonic()
        time.sleep(window)  # the measuring window of the condition, not a wait for something to happen
        share = (cpu_seconds(workers) - before) / (time.monotonic() - started)
        if share < busy:
            return share
        if time.monotonic() > deadline:
            raise BenchError(f"workers still busy ({share:.0%} of a core) after {timeout:.0f} s")


# -- the workloads -----------------------------------------------------------------------------


def io(harness: Harness, sizes: Sizes) -> dict[str, Any]:
    """Wall time of ``sizes.io`` tasks sleeping ``sizes.io_seconds`` each, against the ideal for the concurrency."""
    contestant = harness.contestant
    kind = IO_KIND.get(contestant.name, "sleep")
    concurrency = worker_concurrency(contestant)
    filled, figures = run_spans(harness, kind, "io", sizes.io, sizes.io_seconds, max(300.0, sizes.io))
    ideal = sizes.io_seconds * max(1.0, sizes.io / concurrency)
    return {
        "tasks": sizes.io, "task_seconds": sizes.io_seconds, "kind": kind, "concurrency": concurrency,
        **figures, "ideal_s": ideal, "ratio_to_ideal": figures["seconds"] / ideal, "enqueue": filled,
    }


def cpu(harness: Harness, sizes: Sizes) -> dict[str, Any]:
    """Wall time of ``sizes.cpu`` tasks of ``sizes.cpu_seconds`` of pure-Python work each."""
    loops = calibrated_loops(sizes.cpu_seconds)
    timeout = max(300.0, sizes.cpu * sizes.cpu_seconds * 10)
    filled, figures = run_spans(harness, "cpu", "cpu", sizes.cpu, loops, timeout)
    return {"tasks": sizes.cpu, "task_seconds": sizes.cpu_seconds, "loops": loops, **figures, "enqueue": filled}


def memory(harness: Harness, sizes: Sizes) -> dict[str, Any]:
    """Idle memory of a worker after ``memory_first`` and after ``memory_total`` fire-and-forget no-op tasks."""
    harness.reset()
    tag = "memory"
    workers = harness.start_workers(tag)
    try:
        first = read_after(harness, workers, tag, sizes.memory_first, sizes.memory_first, sizes.memory_batch)
        total = read_after(
            harness, workers, tag, sizes.memory_total - sizes.memory_first, sizes.memory_total, sizes.memory_batch
        )
    finally:
        workers.stop()
    rss_growth = growth_percent(first["memory"]["rss_mib"], total["memory"]["rss_mib"])
    pss_growth = growth_percent(first["memory"]["pss_mib"], total["memory"]["pss_mib"])
    return {
        "tasks_first": sizes.memory_first, "tasks_total": sizes.memory_total, "task": "noop_nores (ignore_result)",
        "after_first": first, "after_total": total, "rss_growth_percent": rss_growth, "pss_growth_percent": pss_growth,
    }


def read_after(harness: Harness, workers: WorkerGroup, tag: str, more: int, total: int, batch: int) -> dict[str, Any]:
    """Enqueue ``more`` no-op tasks, wait until ``total`` ran and the worker is idle; read its memory."""
    filled = fill(harness, "noop-nores", tag, more, batch_size=batch)
    wait_until(lambda: harness.count(tag) >= total, max(600.0, total / 50), f"{total} {tag} tasks", workers, 0.05)
    idle_share = wait_idle(workers)
    executions = harness.count(tag)
    if executions != total:
        raise BenchError(f"{executions} executions of {total} tasks")
    return {"enqueue": filled, "executions": executions, "idle_cpu_share": idle_share, "memory": workers.memory()}


def growth_percent(before: float, after: float) -> float:
    """How much ``after`` exceeds ``before``, in per cent of ``before``."""
    return (after - before) / before * 100


WORKLOAD_FUNCTIONS: dict[str, Callable[[Harness, Sizes], dict[str, Any]]] = {
    "io": io, "cpu": cpu, "memory": memory, "overhead": drain_nores,
}
