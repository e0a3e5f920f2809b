"""Shared test set-up: service checks that skip locally but fail in CI; Redis key prefixes."""

from __future__ import annotations

import os
import socket
import uuid
from typing import NoReturn

import pytest

SERVICES = {
    "postgresql": ("PostgreSQL", os.environ.get("DJTASKS_PG_HOST", "127.0.0.1"), 5432),
    "mysql": ("MariaDB/MySQL", os.environ.get("DJTASKS_MYSQL_HOST", "127.0.0.1"), 3306),
    "redis": ("Redis", os.environ.get("DJTASKS_REDIS_HOST", "127.0.0.1"), 6379),
}
REDIS_URL = f"redis://{SERVICES['redis'][1]}:6379/0"


def service_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def missing(reason: str, *, module_level: bool = False) -> NoReturn:
    """A service or tool a test needs is missing: fail in CI (``CI=true``), skip elsewhere.

    The one place where a test may be skipped; CI never hides a failure behind it.
    """
    if not in_ci():
        pytest.skip(reason, allow_module_level=module_level)
    pytest.fail(f"{reason} (CI=true: this test must run here)", pytrace=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out tests whose database server is down, unless in CI (there they fail)."""
    if in_ci():
        return
    down = {alias for alias, (_, host, port) in SERVICES.items() if not service_up(host, port)}
    if not down:
        return
    kept, dropped = [], []
    for item in items:
        marker = item.get_closest_marker("django_db")
        databases = set(marker.kwargs.get("databases", ())) if marker else set()
        needs = {m.name for m in item.iter_markers()} & {"postgres", "mysql", "redis"}
        needs = {"postgresql" if n == "postgres" else n for n in needs} | databases
        (dropped if needs & down else kept).append(item)
    if dropped:
        names = ", ".join(SERVICES[a][0] for a in sorted(down))
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
        print(f"\n{len(dropped)} test(s) left out: {names} not reachable (in CI they would fail)")


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix of this test's own on the shared Redis; its keys are deleted afterwards."""
    import redis

    prefix = f"djtasks-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=f"*{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
