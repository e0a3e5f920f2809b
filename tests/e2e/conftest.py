"""Fixtures of the end-to-end tests: a fresh migrated database per test, and worker subprocesses."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.conftest import missing

from .helpers import (
    E2EDatabase,
    WorkerProcess,
    create_postgres_database,
    drop_postgres_database,
    migrate,
    postgres_reachable,
    start_worker,
)


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[E2EDatabase]:
    """A migrated SQLite database in a temporary file (WAL, as the demo settings configure it)."""
    db = E2EDatabase(engine="sqlite", name=str(tmp_path / "e2e.sqlite3"))
    migrate(db)
    yield db
    db.close()


@pytest.fixture
def postgres_db() -> Iterator[E2EDatabase]:
    """A migrated PostgreSQL database made for this test alone, dropped afterwards.

    An unreachable server fails the test in CI (``CI=true``) and skips it elsewhere.
    """
    if not postgres_reachable():
        missing("PostgreSQL is not reachable (DJTASKS_PG_HOST/DJTASKS_PG_PORT/DJTASKS_PG_USER)")
    name = create_postgres_database()
    db = E2EDatabase(engine="postgresql", name=name)
    try:
        migrate(db)
        yield db
    finally:
        db.close()
        drop_postgres_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres),
                        pytest.param("redis", marks=pytest.mark.redis)])
def database(request: pytest.FixtureRequest) -> E2EDatabase:
    """One test run per broker: the ORM broker on SQLite, on PostgreSQL, and the Redis broker.

    With Redis, the queue is on the shared test server under a key prefix of
    the test's own, and the results are rows of a fresh SQLite database.
    """
    if request.param == "redis":
        return replace(request.getfixturevalue("sqlite_db"), redis_prefix=request.getfixturevalue("redis_prefix"))
    return request.getfixturevalue(f"{request.param}_db")


class Workers:
    """Starts worker subprocesses for one test and kills whichever still run when it ends."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.started: list[WorkerProcess] = []

    def start(self, db: E2EDatabase, name: str, *args: str, wait_serving: bool = True,
              env: dict[str, str | float] | None = None) -> WorkerProcess:
        """Start ``manage.py runworker *args`` on ``db``; by default return once it serves."""
        worker = start_worker(db, self.log_dir, name, *args, env=env)
        self.started.append(worker)
        if wait_serving:
            worker.wait_serving()
        return worker

    def kill_all(self) -> None:
        for worker in self.started:
            worker.kill()


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Workers]:
    """Start workers with ``workers.start(db, name, *runworker_args)``; all are SIGKILLed at teardown.

    Their logs are printed at teardown, which pytest shows when the test failed.
    """
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    launcher = Workers(log_dir)
    try:
        yield launcher
    finally:
        launcher.kill_all()
        for worker in launcher.started:
            print(worker.log_tail(200))
