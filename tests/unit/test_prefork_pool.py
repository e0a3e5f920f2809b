"""The prefork pool's children start clean, whatever the pool's process holds when one is replaced.

A child that replaces another is forked while the supervisor's other threads
run: one may hold an SQLite transaction. These tests drive a real
:class:`PreforkPool` with real forks; its children write to an SQLite file.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from djtasks.brokers import Delivery
from djtasks.worker.pools import PreforkPool
from tests.e2e.helpers import wait_until

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")

#: Seconds a child waits for SQLite's write lock before it gives up ("database is locked").
BUSY_TIMEOUT_SECONDS = 2.0
#: Seconds a task or a replacement child may take here.
DEADLINE_SECONDS = 20.0


class SQLiteTasks:
    """The pool's ``execute`` here: a delivery's body says what its child does with the SQLite file.

    ``b"write"``: insert a row (the delivery's id, the child's pid and its
    parent's); ``b"write-then-wait"``: the same, then a minute's work;
    anything else: nothing. A completion is ``(id, what happened)``.
    """

    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, delivery: Delivery) -> tuple[str, str]:
        if delivery.body.startswith(b"write"):
            try:
                with closing(sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_SECONDS)) as db, db:
                    db.execute("INSERT INTO runs (key, pid, parent) VALUES (?, ?, ?)",
                               (delivery.id, os.getpid(), os.getppid()))
            except sqlite3.Error as exc:
                return delivery.id, f"failed: {exc}"
        if delivery.body == b"write-then-wait":
            time.sleep(60)  # the task's work: it is killed long before it ends
        return delivery.id, "done"

    def lost(self, delivery: Delivery, error: BaseException, duration_seconds: float) -> tuple[str, str]:
        return delivery.id, f"lost: {type(error).__name__}: {error}"


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """An SQLite file (WAL, as the demo project) with a table ``runs``, no connection left open."""
    path = tmp_path / "runs.sqlite3"
    with closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("CREATE TABLE runs (key TEXT PRIMARY KEY, pid INTEGER, parent INTEGER)")
    return path


class RunningPool:
    """A started :class:`PreforkPool` running :class:`SQLiteTasks`, and its completions as they come."""

    def __init__(self, database: Path, concurrency: int, **options: int) -> None:
        self.database = database
        self.completions: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self.pool = PreforkPool(SQLiteTasks(database), self.completions.put, concurrency, **options)
        self.pool.start()

    def run(self, key: str, body: bytes) -> tuple[str, str]:
        """Submit a delivery and wait for its completion."""
        self.pool.submit(Delivery(id=key, queue="default", body=body, deliveries=1))
        return self.next_completion()

    def next_completion(self) -> tuple[str, str]:
        try:
            return self.completions.get(timeout=DEADLINE_SECONDS)
        except queue.Empty:
            raise AssertionError(f"no task ended within {DEADLINE_SECONDS:g}s") from None

    def replacements(self, replaced: set[int]) -> list[int]:
        """Wait until no child of ``replaced`` is left and the pool is full again; its children then."""
        def renewed() -> list[int]:
            pids = self.pool.pids
            return pids if len(pids) == self.pool.concurrency and not replaced & set(pids) else []

        return wait_until(renewed, timeout=DEADLINE_SECONDS, what=f"children {sorted(replaced)} to be replaced")

    def row(self, key: str) -> tuple[int, int]:
        """The (pid, parent's pid) of the child that wrote ``key``."""
        with closing(sqlite3.connect(self.database)) as db:
            return db.execute("SELECT pid, parent FROM runs WHERE key = ?", (key,)).fetchone()


@pytest.fixture
def pools(database: Path) -> Iterator[list[RunningPool]]:
    """Start pools with ``RunningPool(database, concurrency)``, appended here; all are stopped afterwards."""
    started: list[RunningPool] = []
    yield started
    for pool in started:
        pool.pool.stop(timeout=5)


@pytest.mark.parametrize("replaced", ["killed", "recycled"])
def test_a_child_forked_while_the_pool_process_holds_an_sqlite_transaction_writes_once_it_ends(
        replaced: str, database: Path, pools: list[RunningPool]) -> None:
    pool = RunningPool(database, 1, max_tasks_per_child=1)
    pools.append(pool)
    [first] = pool.pool.pids
    holder = sqlite3.connect(database, isolation_level=None)  # as another thread of a worker would
    holder.execute("BEGIN IMMEDIATE")
    if replaced == "killed":
        os.kill(first, signal.SIGKILL)
    else:
        assert pool.run("recycled", b"nothing") == ("recycled", "done")
    [second] = pool.replacements({first})  # forked while the transaction is open
    holder.execute("COMMIT")
    holder.close()

    assert pool.run("write", b"write") == ("write", "done")
    assert pool.row("write")[0] == second


def test_the_pool_replaces_its_children_when_the_fork_server_dies(
        database: Path, pools: list[RunningPool], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="djtasks.worker")
    pool = RunningPool(database, 2)
    pools.append(pool)
    first = set(pool.pool.pids)
    pool.pool.submit(Delivery(id="long", queue="default", body=b"write-then-wait", deliveries=1))
    child, server = wait_until(lambda: pool.row("long"), timeout=DEADLINE_SECONDS, what="the long task to start")
    os.kill(server, signal.SIGKILL)

    key, outcome = pool.next_completion()
    assert key == "long"
    assert outcome == "lost: WorkerLostError: the worker process running the task died (signal SIGKILL)"
    pool.replacements(first)
    assert pool.run("after", b"write") == ("after", "done")
    pid, parent = pool.row("after")
    assert pid in pool.pool.pids
    assert parent != server
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    server_died = (f"fork server {server} died (signal SIGKILL); its 2 worker process(es) died with it; "
                   "a new fork server forks the next ones")
    assert [e for e in errors if e.startswith("fork server")] == [server_died]
    assert f"worker process {child} died (signal SIGKILL) while running task long" in errors
