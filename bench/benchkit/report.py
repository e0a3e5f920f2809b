"""Tables of the figures and of the djtasks / peer ratios (rich if installed, else plain)."""

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .config import CONTESTANTS, Contestant

Result = dict[str, Any]  # one contestant: {"status", "worker", "rounds": [{workload: figures | {"error": ...}}]}


@dataclass(frozen=True)
class Metric:
    """One column: where its figure lives and which way is better."""

    header: str
    short: str
    workload: str
    extract: Callable[[dict[str, Any]], float | None]
    better: str  # "higher" | "lower"
    digits: int = 0
    ratio: bool = True


METRICS: tuple[Metric, ...] = (
    Metric("drain tasks/s", "drain", "drain", lambda f: f.get("tasks_per_s"), "higher"),
    Metric("enqueue tasks/s", "enqueue", "enqueue", lambda f: f.get("tasks_per_s"), "higher"),
    Metric(
        "enqueue_many tasks/s", "enqueue_many", "enqueue", lambda f: f.get("many_tasks_per_s"), "higher", ratio=False
    ),
    Metric(
        "enqueue_many fire-and-forget tasks/s", "many-nores", "enqueue", lambda f: f.get("many_nores_tasks_per_s"),
        "higher", ratio=False,
    ),
    Metric("latency p50 ms", "p50", "latency", lambda f: f.get("p50_ms"), "lower", 1),
    Metric("latency p95 ms", "p95", "latency", lambda f: f.get("p95_ms"), "lower", 1),
    Metric("latency p99 ms", "p99", "latency", lambda f: f.get("p99_ms"), "lower", 1),
    Metric("idle RSS MiB", "RSS", "latency", lambda f: (f.get("memory_idle") or {}).get("rss_mib"), "lower", 1),
    Metric("drain-nores tasks/s", "drain-nores", "drain-nores", lambda f: f.get("tasks_per_s"), "higher"),
    Metric(
        "drain-nores enqueue tasks/s", "nores-enqueue", "drain-nores", lambda f: f.get("enqueue_tasks_per_s"), "higher"
    ),
    Metric(
        "drain-nores Redis cmds/task", "cmds/task", "drain-nores", lambda f: f.get("redis_commands_per_task"),
        "lower", 2,
    ),
)


def round_values(result: Result, metric: Metric) -> tuple[list[float], int]:
    """The metric's figure in every round that has one, and the number of failed rounds."""
    values: list[float] = []
    errors = 0
    for workloads in result.get("rounds", []):
        figures = workloads.get(metric.workload)
        if figures is None:
            continue
        if "error" in figures:
            errors += 1
            continue
        value = metric.extract(figures)
        if value is not None:
            values.append(float(value))
    return values, errors


def metric_value(result: Result | None, metric: Metric) -> float | str | None:
    """The median over the rounds, or a marker ("pending", "error") when there is none."""
    if result is None:
        return None
    if result.get("status") == "pending":
        return "pending"
    values, errors = round_values(result, metric)
    if values:
        return statistics.median(values)
    return "error" if errors else None


def summary_json(results: dict[str, Result]) -> dict[str, dict[str, Any]]:
    """Per contestant and metric: median, min, max, rounds and failed rounds (for the JSON file)."""
    summary: dict[str, dict[str, Any]] = {}
    for name, result in results.items():
        summary[name] = {}
        for metric in METRICS:
            values, errors = round_values(result, metric)
            if values or errors:
                summary[name][metric.header] = {
                    "median": statistics.median(values) if values else None,
                    "min": min(values, default=None),
                    "max": max(values, default=None),
                    "rounds": len(values),
                    "failed_rounds": errors,
                }
    return summary


def format_cell(value: float | str | None, digits: int) -> str:
    """Render a figure for a table cell."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    return f"{value:,.{digits}f}"


def ratio_pairs(results: dict[str, Result]) -> list[tuple[Contestant, Contestant]]:
    """(djtasks contestant, peer) pairs to compare, among the contestants of this run."""
    by_name = {c.name: c for c in CONTESTANTS}
    return [
        (by_name[djtasks_name], peer)
        for peer in CONTESTANTS
        if peer.name in results
        for djtasks_name in peer.compare_with
        if djtasks_name in results
    ]


def ratio_cell(mine: float | str | None, theirs: float | str | None) -> str:
    """``djtasks / peer``, or why there is no ratio."""
    if isinstance(mine, float | int) and isinstance(theirs, float | int) and theirs:
        return f"{mine / theirs:.2f}x"
    for marker in ("pending", "error"):
        if marker in (mine, theirs):
            return marker
    return "n/a"


def figure_cell(result: Result, metric: Metric) -> str:
    """A figure, marked with ``*`` when some rounds failed (the median is of those that completed)."""
    cell = format_cell(metric_value(result, metric), metric.digits)
    values, errors = round_values(result, metric)
    if values and errors:
        cell += f" * ({len(values)}/{len(values) + errors} rounds)"
    return cell


def figure_rows(results: dict[str, Result]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the figures table."""
    header = ["contestant", "worker", *(m.header for m in METRICS)]
    rows = []
    for contestant in CONTESTANTS:
        result = results.get(contestant.name)
        if result is None:
            continue
        if not set(contestant.workloads) & {m.workload for m in METRICS}:
            continue  # a contestant of other workloads only (``benchkit.engine``)
        cells = [figure_cell(result, m) for m in METRICS]
        rows.append([contestant.name, contestant.worker_desc, *cells])
    return header, rows


def partial(result: Result, metric: Metric) -> bool:
    """Whether some rounds of ``metric`` failed while others completed."""
    values, errors = round_values(result, metric)
    return bool(values and errors)


def ratio_rows(results: dict[str, Result]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the ratios table (djtasks / peer, per metric)."""
    metrics = [m for m in METRICS if m.ratio]
    header = ["djtasks / peer", *(m.short for m in metrics)]
    rows = []
    for djtasks, peer in ratio_pairs(results):
        cells = [
            ratio_cell(metric_value(results[djtasks.name], m), metric_value(results[peer.name], m))
            + (" *" if partial(results[djtasks.name], m) or partial(results[peer.name], m) else "")
            for m in metrics
        ]
        rows.append([f"{djtasks.name} / {peer.name}", *cells])
    return header, rows


def ratios_json(results: dict[str, Result]) -> list[dict[str, str]]:
    """The ratios table as a list of records, for the JSON file."""
    header, rows = ratio_rows(results)
    return [dict(zip(header, row, strict=True)) for row in rows]


RATIO_NOTE = (
    "ratio = djtasks / peer. drain, enqueue, drain-nores, nores-enqueue: above 1 means djtasks is faster. "
    "p50, p95, p99 (latency), RSS (memory) and cmds/task (Redis commands): below 1 means djtasks is lower, i.e. better. "
    "* = some rounds failed; the figure is the median of the rounds that completed (errors in the JSON)."
)


def print_tables(results: dict[str, Result], title: str) -> None:
    """Print both tables, with rich when it is installed (nothing when no contestant has their figures)."""
    tables = [("Figures: " + title, *figure_rows(results)), ("Ratios djtasks / peer", *ratio_rows(results))]
    if tables[0][2]:
        render_tables(tables, RATIO_NOTE)


def render_tables(tables: list[tuple[str, list[str], list[list[str]]]], note: str) -> None:
    """Print ``(title, header, rows)`` tables and a note, with rich when it is installed."""
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        for name, header, rows in tables:
            print(f"\n{name}\n{plain_table(header, rows)}")
        print(note)
        return
    probe = Console()
    console = probe if probe.is_terminal else Console(width=220)
    for name, header, rows in tables:
        table = Table(title=name, title_justify="left")
        for index, column in enumerate(header):
            table.add_column(column, justify="left" if index < 2 else "right", no_wrap=index < 2)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(note)


def plain_table(header: list[str], rows: list[list[str]]) -> str:
    """A fixed-width text table."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def rst_list_table(title: str, header: list[str], rows: list[list[str]]) -> str:
    """An reStructuredText ``list-table`` of a table, for docs/benchmarks.rst."""
    lines = [f".. list-table:: {title}", "   :header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(lines) + "\n"


def rst_tables(results: dict[str, Result]) -> str:
    """Both tables as reStructuredText ("" when no contestant has their figures)."""
    if not figure_rows(results)[1]:
        return ""
    figures = rst_list_table("Figures", *figure_rows(results))
    ratios = rst_list_table("Ratios djtasks / peer", *ratio_rows(results))
    return f"{figures}\n{ratios}\n{RATIO_NOTE}\n"
