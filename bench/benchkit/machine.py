"""Describe the machine and the software versions a run used."""

import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

from .config import BENCH_DIR
from .services import Services

PACKAGES = (
    "Django", "djtasks", "django-tasks-db", "celery", "django-celery-results", "kombu", "dramatiq", "huey", "redis",
    "psycopg",
)


def cpu_model() -> str:
    """The CPU model name from ``/proc/cpuinfo``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def memory_gib() -> float:
    """Total RAM in GiB from ``/proc/meminfo``."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1024 * 1024)
    except OSError:
        pass
    return 0.0


def package_versions() -> dict[str, str]:
    """Installed versions of the packages under test."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def djtasks_revision() -> str:
    """The git commit of the checkout's ``djtasks/``, with ``+dirty`` if it has uncommitted changes."""
    root = BENCH_DIR.parent

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--", "djtasks") else "")


def describe(services: Services) -> dict[str, Any]:
    """Everything about the machine worth printing beside the figures."""
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model(),
        "memory_gib": round(memory_gib(), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": services.pg_version(),
        "redis": services.redis_version(),
        "load_average": os.getloadavg(),
        "packages": package_versions(),
        "djtasks_revision": djtasks_revision(),
    }
