"""``bench/run.py``: run the workloads for every contestant, print and save the tables."""

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from . import engine, engine_report
from .config import (
    ENGINE_WORKLOADS, FULL, PROJECT_DIR, QUICK, RESULTS_DIR, WORKLOADS, Contestant, Sizes, select_contestants,
)
from .harness import Harness
from .machine import describe
from .report import Result, print_tables, ratios_json, render_tables, rst_tables, summary_json
from .services import Services, remove_sqlite, sqlite_path
from .workloads import WORKLOAD_FUNCTIONS as CORE_WORKLOAD_FUNCTIONS

WORKLOAD_FUNCTIONS = {**CORE_WORKLOAD_FUNCTIONS, **engine.WORKLOAD_FUNCTIONS}
ENGINE_NOTE = "Worker-engine workloads (benchkit/engine.py); medians of the rounds. See docs/benchmarks.rst."


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="djtasks beside its peers: throughput, latency, memory.")
    parser.add_argument("--only", help="comma-separated contestants or prefixes (e.g. djtasks,celery-prefork)")
    parser.add_argument(
        "--workloads", default=",".join(WORKLOADS),
        help=f"comma-separated subset of {','.join(WORKLOADS)} (the default), or of {','.join(ENGINE_WORKLOADS)}",
    )
    parser.add_argument("--tasks", type=int, help="number of tasks of the drain workload (default 3000)")
    parser.add_argument(
        "--random-arrivals", action="store_true",
        help="latency: tasks at random times (exponential gaps, same mean and seed for all), not evenly paced",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes and one round, for a smoke run")
    parser.add_argument("--repeat", type=int, help="rounds of every workload; figures are medians (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the databases of the last runs")
    parser.add_argument(
        "--render", metavar="JSON", help="print the tables (and their reStructuredText) of a saved run, run nothing"
    )
    parser.add_argument("--pg-host", default="127.0.0.1")
    parser.add_argument("--pg-port", type=int, default=5432)
    parser.add_argument("--redis-host", default="127.0.0.1")
    parser.add_argument("--redis-port", type=int, default=6379)
    return parser.parse_args(argv)


def choose_sizes(args: argparse.Namespace) -> Sizes:
    """The workload sizes for ``--quick`` / ``--tasks`` / ``--random-arrivals``."""
    sizes = QUICK if args.quick else FULL
    if args.tasks:
        sizes = dataclasses.replace(sizes, drain=args.tasks)
    return dataclasses.replace(sizes, latency_random=True) if args.random_arrivals else sizes


def choose_workloads(spec: str) -> list[str]:
    """Validate ``--workloads``."""
    chosen = [name.strip() for name in spec.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(WORKLOADS) - set(ENGINE_WORKLOADS))
    if unknown:
        raise SystemExit(f"unknown workloads {unknown}; known: {', '.join((*WORKLOADS, *ENGINE_WORKLOADS))}")
    return chosen


def choose_repeat(args: argparse.Namespace) -> int:
    """Rounds of every workload: ``--repeat``, else 1 with ``--quick`` and 3 otherwise."""
    return int(args.repeat or (1 if args.quick else 3))


def missing_requirement(contestant: Contestant, services: Services) -> str | None:
    """Why ``contestant`` cannot run yet (a module that fails to import, no migrations), or None.

    Probed in a fresh process with the contestant's settings, so that a
    package being written while the suite runs is seen as it is now.
    """
    if not contestant.requires:
        return None
    checks = [
        "import django, importlib",
        "django.setup()",
        *(f"importlib.import_module({module!r})" for module in contestant.requires),
    ]
    if contestant.is_djtasks:
        checks += [
            "from django.core.management import get_commands",
            "assert 'runworker' in get_commands(), 'no runworker command'",
            "from django.db.migrations.loader import MigrationLoader",
            "assert MigrationLoader(None).graph.leaf_nodes('djtasks'), 'djtasks has no migrations'",
        ]
    env = {**Harness(contestant, services, prefix="probe").env(), "BENCH_DB": "sqlite", "BENCH_DB_NAME": ":memory:"}
    probe = subprocess.run(
        [sys.executable, "-c", "; ".join(checks)], cwd=PROJECT_DIR, env=env, capture_output=True, text=True,
        check=False,
    )
    if probe.returncode == 0:
        return None
    return (probe.stderr.strip().splitlines() or ["probe failed"])[-1]


def log(message: str) -> None:
    """Progress line on stderr."""
    print(f"[{datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def wait_for_quiet(threshold: float = 25.0, max_wait: float = 180.0) -> float:
    """Wait (up to ``max_wait`` s) until the machine's CPU is under ``threshold`` % busy; return the last reading.

    Nothing of this suite runs between two workloads, so what is busy then is
    other work on the machine, which would skew the figures.
    """
    deadline = time.monotonic() + max_wait
    busy = psutil.cpu_percent(interval=1.0)
    while busy > threshold and time.monotonic() < deadline:
        log(f"machine busy ({busy:.0f}% CPU used by other work); waiting for it to calm down")
        busy = psutil.cpu_percent(interval=5.0)
    return busy


def run_workload(
    contestant: Contestant, workload: str, sizes: Sizes, services: Services, prefix: str
) -> dict[str, Any]:
    """Run one workload for one contestant; an exception becomes ``{"error": ...}``."""
    harness = Harness(contestant, services, prefix=prefix)
    cpu_busy_before = wait_for_quiet()
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    try:
        figures = WORKLOAD_FUNCTIONS[workload](harness, sizes)
    except Exception as exc:  # noqa: BLE001  (one broken contestant must not stop the run)
        traceback.print_exc(file=sys.stderr)
        figures = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        harness.cleanup()
    figures["load1_before"] = load_before
    figures["cpu_busy_before_percent"] = cpu_busy_before
    outcome = f"error: {figures['error'].splitlines()[0]}" if "error" in figures else "ok"
    log(f"{contestant.name}: {workload} {outcome} ({time.monotonic() - started:.1f} s)")
    return figures


def run_rounds(
    contestants: list[Contestant], workloads: list[str], sizes: Sizes, services: Services, run_id: str, repeat: int
) -> dict[str, Result]:
    """Run every workload ``repeat`` times, interleaving contestants so that noise spreads evenly."""
    results: dict[str, Result] = {
        c.name: {"status": "ran", "worker": c.worker_desc, "rounds": [{} for _ in range(repeat)]}
        for c in contestants
    }
    for round_index in range(repeat):
        for workload in workloads:
            for contestant in contestants:
                if workload not in contestant.workloads:
                    continue
                log(f"round {round_index + 1}/{repeat}: {contestant.name}: {workload} ...")
                prefix = f"bench:{run_id}:{round_index}:{contestant.name}:{workload}"
                figures = run_workload(contestant, workload, sizes, services, prefix)
                results[contestant.name]["rounds"][round_index][workload] = figures
    return results


def drop_databases(contestants: list[Contestant], services: Services) -> None:
    """Remove what the run created."""
    for contestant in contestants:
        if contestant.db == "sqlite":
            remove_sqlite(sqlite_path(contestant.name))
        else:
            services.drop_pg_database(contestant.pg_name)


def save(report: dict[str, Any], run_id: str) -> None:
    """Write ``bench/results/<run_id>.json`` and the tables as ``.rst``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / f"{run_id}.json").write_text(json.dumps(report, indent=2) + "\n")
    tables = rst_tables(report["results"]) + engine_report.engine_rst(report["results"])
    (RESULTS_DIR / f"{run_id}.rst").write_text(tables)
    log(f"wrote {RESULTS_DIR / f'{run_id}.json'} and .rst")


def render(path: str) -> int:
    """Print the tables of a saved run, then the same as reStructuredText."""
    report = json.loads(Path(path).read_text())
    print_tables(report["results"], table_title(report))
    print_engine_tables(report["results"])
    print(rst_tables(report["results"]) + engine_report.engine_rst(report["results"]))
    return 0


def print_engine_tables(results: dict[str, Result]) -> None:
    """Print the tables of the worker-engine workloads that ran, if any."""
    tables = engine_report.engine_tables(results)
    if tables:
        render_tables(tables, ENGINE_NOTE)


def table_title(report: dict[str, Any]) -> str:
    """The title of the figures table: run, machine, rounds."""
    machine = report["machine"]
    rounds = report["repeat"]
    return f"run {report['run_id']}, {machine['cpus']} CPUs {machine['cpu_model']}, medians of {rounds} round(s)"


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    if args.render:
        return render(args.render)
    services = Services(
        pg_host=args.pg_host, pg_port=args.pg_port, redis_host=args.redis_host, redis_port=args.redis_port
    )
    services.check()
    workloads = choose_workloads(args.workloads)
    contestants = [c for c in select_contestants(args.only) if set(c.workloads) & set(workloads)]
    if not contestants:
        raise SystemExit(f"no contestant of --only {args.only!r} runs any of the workloads {', '.join(workloads)}")
    sizes = choose_sizes(args)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    pending: dict[str, Result] = {}
    for contestant in contestants:
        reason = missing_requirement(contestant, services)
        if reason is not None:
            log(f"{contestant.name} is pending: {reason}")
            pending[contestant.name] = {"status": "pending", "reason": reason, "worker": contestant.worker_desc}
    runnable = [c for c in contestants if c.name not in pending]
    if os.getloadavg()[0] > 0.5:
        log(f"warning: load average {os.getloadavg()[0]:.2f} before the run; other work skews the figures")
    try:
        ran = run_rounds(runnable, workloads, sizes, services, run_id, choose_repeat(args))
    finally:
        if not args.keep:
            drop_databases(contestants, services)
    results = {c.name: ran.get(c.name) or pending[c.name] for c in contestants}
    report: dict[str, Any] = {
        "run_id": run_id,
        "machine": describe(services),
        "sizes": dataclasses.asdict(sizes),
        "workloads": workloads,
        "repeat": choose_repeat(args),
        "results": results,
        "summary": summary_json(results),
        "ratios": ratios_json(results),
        "engine": engine_report.engine_json(results),
    }
    save(report, run_id)
    print_tables(results, table_title(report))
    print_engine_tables(results)
    return 0
