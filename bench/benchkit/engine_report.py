"""The tables of the worker-engine workloads (``benchkit.engine``): figures, ratios, targets.

Every figure is the median over the rounds that completed; a contestant
with failed rounds says how many next to its name.
"""

import statistics
from collections.abc import Callable, Iterable
from typing import Any

from .config import CONTESTANTS
from .report import Result, format_cell, rst_list_table

#: (djtasks, Celery) pairs compared in ``io``.
IO_PAIRS = (
    ("djtasks-io-gevent", "celery-io-gevent"),
    ("djtasks-io-threads", "celery-io-threads"),
    ("djtasks-io-asyncio", "celery-io-gevent"),
)
#: (framework, solo contestant, prefork contestant) of ``cpu``.
CPU_PAIRS = (
    ("djtasks", "djtasks-cpu-solo", "djtasks-cpu-prefork"),
    ("celery", "celery-cpu-solo", "celery-cpu-prefork"),
)
#: The ``overhead`` variants the others are compared with.
OVERHEAD_BASES = ("djtasks-ovh-bare", "djtasks-ovh-plain")
#: Targets of issue 5, printed beside the figures.
CPU_SPEEDUP_TARGET = 1.8
MEMORY_GROWTH_TARGET_PERCENT = 10.0
OVERHEAD_TARGET_PERCENT = 10.0


Table = tuple[str, list[str], list[list[str]]]


def median(result: Result | None, workload: str, extract: Callable[[dict[str, Any]], float | None]) -> float | None:
    """The median over the rounds of a figure of ``workload`` (None when no round has it)."""
    if result is None:
        return None
    values = [
        float(value)
        for workloads in result.get("rounds", [])
        if (figures := workloads.get(workload)) is not None and "error" not in figures
        if (value := extract(figures)) is not None
    ]
    return statistics.median(values) if values else None


def failed_rounds(result: Result | None, workload: str) -> int:
    """How many rounds of ``workload`` ended in an error."""
    rounds = (result or {}).get("rounds", [])
    return sum(1 for workloads in rounds if "error" in workloads.get(workload, {}))


def ran(results: dict[str, Result], workload: str) -> list[str]:
    """The contestants of ``results`` that have figures (or errors) for ``workload``, or are pending for it."""
    workloads_of = {c.name: c.workloads for c in CONTESTANTS}
    return [
        name for name, result in results.items()
        if any(workload in workloads for workloads in result.get("rounds", []))
        or (result.get("status") == "pending" and workload in workloads_of.get(name, ()))
    ]


def cell(value: float | None, digits: int = 2, suffix: str = "") -> str:
    """A table cell: the value, or "n/a"."""
    return "n/a" if value is None else format_cell(value, digits) + suffix


def ratio(mine: float | None, theirs: float | None) -> str:
    """``mine / theirs`` as ``1.23x``, or "n/a"."""
    return f"{mine / theirs:.2f}x" if mine is not None and theirs else "n/a"


def marked(name: str, result: Result, workload: str) -> str:
    """The contestant's name, with the number of failed rounds when there were some, or "pending"."""
    if result.get("status") == "pending":
        return f"{name} (pending: {result.get('reason', '?')})"
    errors = failed_rounds(result, workload)
    return f"{name} ({errors} round(s) failed)" if errors else name


def io_tables(results: dict[str, Result]) -> list[Table]:
    """``io``: seconds, ideal and ratio per contestant; djtasks / Celery ratios."""
    names = ran(results, "io")
    if not names:
        return []
    header = [
        "contestant", "worker", "tasks", "at once", "seconds", "ideal s", "ratio to ideal", "starts/s", "task mean ms",
    ]
    rows = []
    for name in names:
        result = results[name]

        def get(key: str, result: Result = result) -> float | None:
            return median(result, "io", lambda figures: figures.get(key))

        rows.append([
            marked(name, result, "io"), result.get("worker", ""), cell(get("tasks"), 0), cell(get("concurrency"), 0),
            cell(get("seconds")), cell(get("ideal_s")), cell(get("ratio_to_ideal"), 2, "x"),
            cell(get("starts_per_s"), 0), cell(get("task_mean_ms"), 1),
        ])
    pairs = [
        [f"{mine} / {theirs}", *pair_seconds(results, "io", mine, theirs)]
        for mine, theirs in IO_PAIRS
        if mine in names and theirs in names
    ]
    tables = [("io: first task start to last task end", header, rows)]
    if pairs:
        title = "io: djtasks / Celery (seconds; below 1: djtasks is faster)"
        tables.append((title, ["pair", "djtasks s", "Celery s", "ratio"], pairs))
    return tables


def pair_seconds(results: dict[str, Result], workload: str, mine: str, theirs: str) -> list[str]:
    """Seconds of two contestants and their ratio."""
    a = median(results[mine], workload, lambda figures: figures.get("seconds"))
    b = median(results[theirs], workload, lambda figures: figures.get("seconds"))
    return [cell(a), cell(b), ratio(a, b)]


def cpu_tables(results: dict[str, Result]) -> list[Table]:
    """``cpu``: seconds per contestant; speed-up solo / prefork per framework."""
    names = ran(results, "cpu")
    if not names:
        return []
    header = ["contestant", "worker", "tasks", "loops", "seconds", "task mean ms"]
    rows = []
    for name in names:
        result = results[name]

        def get(key: str, result: Result = result) -> float | None:
            return median(result, "cpu", lambda figures: figures.get(key))

        rows.append([
            marked(name, result, "cpu"), result.get("worker", ""), cell(get("tasks"), 0), cell(get("loops"), 0),
            cell(get("seconds")), cell(get("task_mean_ms"), 1),
        ])
    speedups = [
        [framework, *speedup(results, solo, prefork), f">= {CPU_SPEEDUP_TARGET}x" if framework == "djtasks" else ""]
        for framework, solo, prefork in CPU_PAIRS
        if solo in names and prefork in names
    ]
    tables = [("cpu: first task start to last task end", header, rows)]
    if speedups:
        header = ["framework", "solo s", "prefork s", "speed-up", "target"]
        tables.append(("cpu: speed-up of prefork -c 2 over solo (solo s / prefork s)", header, speedups))
    return tables


def speedup(results: dict[str, Result], solo: str, prefork: str) -> list[str]:
    """Seconds of the solo and of the prefork contestant, and solo / prefork."""
    one = median(results[solo], "cpu", lambda figures: figures.get("seconds"))
    two = median(results[prefork], "cpu", lambda figures: figures.get("seconds"))
    return [cell(one), cell(two), ratio(one, two)]


def memory_tables(results: dict[str, Result]) -> list[Table]:
    """``memory``: idle RSS and PSS after the first and after all tasks, and the growth."""
    names = ran(results, "memory")
    if not names:
        return []
    header = [
        "contestant", "worker", "tasks (1)", "RSS (1) MiB", "tasks (2)", "RSS (2) MiB", "RSS growth",
        "PSS (1) MiB", "PSS (2) MiB", "PSS growth", "processes",
    ]
    rows = []
    for name in names:
        result = results[name]

        def get(*path: str, result: Result = result) -> float | None:
            return median(result, "memory", lambda figures: dig(figures, path))

        rows.append([
            marked(name, result, "memory"), result.get("worker", ""),
            cell(get("tasks_first"), 0), cell(get("after_first", "memory", "rss_mib"), 1),
            cell(get("tasks_total"), 0), cell(get("after_total", "memory", "rss_mib"), 1),
            cell(get("rss_growth_percent"), 1, " %"),
            cell(get("after_first", "memory", "pss_mib"), 1), cell(get("after_total", "memory", "pss_mib"), 1),
            cell(get("pss_growth_percent"), 1, " %"), cell(get("after_total", "memory", "processes"), 0),
        ])
    title = (
        "memory: idle worker after (1) the first and (2) all tasks "
        f"(target: RSS growth within {MEMORY_GROWTH_TARGET_PERCENT:g} %)"
    )
    return [(title, header, rows)]


def dig(figures: dict[str, Any], path: Iterable[str]) -> float | None:
    """``figures[a][b]...`` or None."""
    value: Any = figures
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def overhead_tables(results: dict[str, Result]) -> list[Table]:
    """``overhead``: drain rates, and the difference to the bare and to the plain worker."""
    names = ran(results, "overhead")
    if not names:
        return []
    rates = {name: median(results[name], "overhead", lambda figures: figures.get("tasks_per_s")) for name in names}
    bases = [base for base in OVERHEAD_BASES if base in names]
    header = ["contestant", "worker", "drain tasks/s", *(f"vs {base}" for base in bases)]
    rows = [
        [
            marked(name, results[name], "overhead"), results[name].get("worker", ""), cell(rates[name], 0),
            *(difference(rates[name], rates[base]) for base in bases),
        ]
        for name in names
    ]
    title = f"overhead: drain-nores, difference in drain rate (target: within {OVERHEAD_TARGET_PERCENT:g} %)"
    return [(title, header, rows)]


def difference(mine: float | None, base: float | None) -> str:
    """``mine`` against ``base`` in per cent (negative: slower)."""
    if mine is None or not base:
        return "n/a"
    return f"{(mine - base) / base * 100:+.1f} %"


def engine_tables(results: dict[str, Result]) -> list[Table]:
    """Every table of the engine workloads that ran."""
    return [*io_tables(results), *cpu_tables(results), *memory_tables(results), *overhead_tables(results)]


def engine_json(results: dict[str, Result]) -> dict[str, list[dict[str, str]]]:
    """The engine tables as records, by title (for the run's JSON)."""
    return {
        title: [dict(zip(header, row, strict=True)) for row in rows] for title, header, rows in engine_tables(results)
    }


def engine_rst(results: dict[str, Result]) -> str:
    """The engine tables as reStructuredText list-tables."""
    return "\n".join(rst_list_table(title, header, rows) for title, header, rows in engine_tables(results))
