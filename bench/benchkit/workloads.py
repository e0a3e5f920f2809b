"""The workloads, identical for every contestant.

``drain``
    Enqueue N no-op tasks with no worker running, then start the worker(s);
    throughput between the first and the last task start (timestamps that
    the tasks push to Redis), then a check that every result row is stored.
``enqueue``
    One producer enqueuing tasks one call at a time, no worker running; plus
    the bulk API where the contestant has one (djtasks ``enqueue_many``), for
    tasks that keep a result row and for fire-and-forget ones.
``latency``
    An idle worker, warmed up with a few tasks; its memory is read (RSS of
    all its processes), then tasks are enqueued at a fixed pace, each
    carrying its enqueue wall time, and each records ``start - enqueued``.
``drain-nores``
    ``drain`` with fire-and-forget tasks (``ignore_result=True``; Dramatiq
    keeps no results anyway): N tasks enqueued one call each, then the
    worker(s) started; throughput between the first and the last task's
    bookkeeping ``RPUSH`` (the task's only work). Also the Redis commands per
    task, from ``INFO commandstats`` before and after the enqueue and the drain.
"""

import time

from typing import Any

from .config import NO_RESULT_FAMILIES, REDIS_DB_BOOKKEEPING, Sizes
from .harness import Harness
from .stats import percentile, rate_between
from .workers import BenchError, WorkerGroup, wait_until


def wait_for_results(harness: Harness, expected: int, workers: WorkerGroup, timeout: float = 60) -> dict[str, int]:
    """Wait until ``expected`` result rows are final; return the counts by state (all must have succeeded).

    A contestant that keeps no results has none to wait for.
    """
    if harness.contestant.family in NO_RESULT_FAMILIES:
        return {}
    wait_until(lambda: harness.finished_rows() >= expected, timeout, f"{expected} stored results", workers)
    counts = harness.results()
    if counts.get("failed") or counts.get("succeeded", 0) < expected:
        raise BenchError(f"expected {expected} succeeded results, found {counts}")
    return counts


def enqueue_untimed(harness: Harness, count: int, tag: str) -> dict[str, Any]:
    """Enqueue ``count`` tasks tagged ``tag``, one call each (figures returned, not reported)."""
    return harness.manage_json("bench_enqueue", "--mode", "one", "--count", str(count), "--tag", tag)


def drain(harness: Harness, sizes: Sizes) -> dict[str, Any]:
    """Throughput of a worker draining a pre-filled queue."""
    harness.reset()
    total = sizes.drain
    enqueue_untimed(harness, total, "drain")
    workers = harness.start_workers("drain")
    try:
        wait_until(
            lambda: harness.count("drain") >= total, max(300.0, total / 10), f"{total} drain tasks", workers, 0.05
        )
        stored_at = wait_until(lambda: harness.finished_rows() >= total, 60, "all results stored", workers)
        results = wait_for_results(harness, total, workers)
    finally:
        workers.stop()
    starts = [started for started, _ in harness.records("drain")]
    return {
        "tasks": total,
        "executions": len(starts),
        "tasks_per_s": rate_between(starts),
        "first_start_after_spawn_s": min(starts) - workers.started_at,
        "span_s": max(starts) - min(starts),
        "all_stored_after_last_start_s": stored_at - max(starts),
        "stored_tasks_per_s": (total - 1) / (stored_at - min(starts)),
        "results": results,
    }


def enqueue(harness: Harness, sizes: Sizes) -> dict[str, Any]:
    """Enqueue rate of one producer, one call per task, and in bulk when supported."""
    harness.reset()
    one = harness.manage_json(
        "bench_enqueue", "--mode", "one", "--count", str(sizes.enqueue_one), "--tag", "enqueue", "--warmup", "20"
    )
    figures: dict[str, Any] = {"one": one, "tasks_per_s": one["rate"]}
    if harness.contestant.bulk:
        harness.reset()
        many = harness.manage_json(
            "bench_enqueue", "--mode", "many", "--count", str(sizes.enqueue_many), "--tag", "enqueue",
            "--batch-size", str(sizes.enqueue_many_batch), "--warmup", "20",
        )
        figures.update(many=many, many_tasks_per_s=many["rate"])
        harness.reset()
        many_nores = harness.manage_json(
            "bench_enqueue", "--mode", "many", "--nores", "--count", str(sizes.enqueue_many), "--tag", "enqueue",
            "--batch-size", str(sizes.enqueue_many_batch), "--warmup", "20",
        )
        figures.update(many_nores=many_nores, many_nores_tasks_per_s=many_nores["rate"])
    return figures


def latency(harness: Harness, sizes: Sizes) -> dict[str, Any]:
    """Start latency of paced tasks on an idle, warmed-up worker; and that worker's memory."""
    harness.reset()
    workers = harness.start_workers("latency")
    try:
        enqueue_untimed(harness, sizes.warmup, "warmup")
        wait_until(lambda: harness.count("warmup") >= sizes.warmup, 120, "warm-up tasks", workers)
        wait_for_results(harness, sizes.warmup, workers)
        memory_idle = workers.memory()
        paced = harness.manage_json(
            "bench_enqueue", "--mode", "paced", "--count", str(sizes.latency), "--tag", "latency",
            "--interval", str(sizes.latency_interval), "--warmup", "5",
            *(["--random-arrivals"] if sizes.latency_random else []),
        )
        wait_until(lambda: harness.count("latency") >= sizes.latency, 120, "latency tasks", workers)
        wait_for_results(harness, sizes.warmup + 5 + sizes.latency, workers)
        memory_after = workers.memory()
    finally:
        workers.stop()
    millis = [(started - enqueued) * 1000 for started, enqueued in harness.records("latency")]
    return {
        "tasks": sizes.latency,
        "executions": len(millis),
        "interval_ms": sizes.latency_interval * 1000,
        "arrivals": "random" if sizes.latency_random else "paced",
        "enqueue_span_s": paced["seconds"],
        "p50_ms": percentile(millis, 50),
        "p95_ms": percentile(millis, 95),
        "p99_ms": percentile(millis, 99),
        "max_ms": max(millis),
        "memory_idle": memory_idle,
        "memory_after": memory_after,
    }


def command_calls(harness: Harness) -> dict[str, int]:
    """Calls per command since the Redis server started (``INFO commandstats``; the whole server)."""
    stats = harness.services.redis(REDIS_DB_BOOKKEEPING).info("commandstats")
    return {name.removeprefix("cmdstat_"): int(values["calls"]) for name, values in stats.items()}


def calls_between(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """The commands called between two readings of :func:`command_calls`, by command."""
    delta = {name: after.get(name, 0) - before.get(name, 0) for name in after}
    return {name: count for name, count in sorted(delta.items()) if count}


def drain_nores(harness: Harness, sizes: Sizes) -> dict[str, Any]:
    """Throughput of a worker draining a pre-filled queue of fire-and-forget tasks; Redis commands per task."""
    harness.reset()
    total = sizes.drain_nores
    tag = "drain-nores"
    before_enqueue = command_calls(harness)
    enqueued = harness.manage_json("bench_enqueue", "--mode", "one", "--count", str(total), "--tag", tag, "--nores")
    before_drain = command_calls(harness)
    polls = 0

    def done() -> bool:
        nonlocal polls
        polls += 1
        return harness.count(tag) >= total

    workers = harness.start_workers(tag)
    try:
        wait_until(done, max(300.0, total / 10), f"{total} {tag} tasks", workers, 0.05)
        time.sleep(0.5)  # let the last acks land before the reading
        after_drain = command_calls(harness)
        time.sleep(1.0)  # anything still running would show as extra executions
        executions = harness.count(tag)
    finally:
        workers.stop()
    starts = [started for started, _ in harness.records(tag)]
    enqueue_calls = calls_between(before_enqueue, before_drain)
    drain_calls = calls_between(before_drain, after_drain)
    # Not the contestant's: the tasks' bookkeeping RPUSH (one each), the harness's
    # LLEN polls, and the INFO readings themselves.
    own_drain = total + polls + 1
    own_enqueue = 1
    return {
        "tasks": total,
        "executions": executions,
        "tasks_per_s": rate_between(starts),
        "first_start_after_spawn_s": min(starts) - workers.started_at,
        "span_s": max(starts) - min(starts),
        "enqueue": enqueued,
        "enqueue_tasks_per_s": enqueued["rate"],
        "redis_enqueue_calls": enqueue_calls,
        "redis_drain_calls": drain_calls,
        "harness_polls": polls,
        "redis_commands_per_task_enqueue": (sum(enqueue_calls.values()) - own_enqueue) / total,
        "redis_commands_per_task_drain": (sum(drain_calls.values()) - own_drain) / total,
        "redis_commands_per_task": (sum(enqueue_calls.values()) + sum(drain_calls.values()) - own_enqueue - own_drain)
        / total,
    }


WORKLOAD_FUNCTIONS = {"drain": drain, "enqueue": enqueue, "latency": latency, "drain-nores": drain_nores}
