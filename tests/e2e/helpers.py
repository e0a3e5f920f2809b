"""Helpers of the end-to-end tests: databases, real worker subprocesses, waiting on conditions.

The test process never configures Django against the database under test:
it creates the schema with ``manage.py migrate``, enqueues through
``python -m tests.e2e.enqueue`` (Django's real enqueue path, in a subprocess
with the same environment as the workers) and reads rows with a plain DB-API
connection (``sqlite3`` or ``psycopg``).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.conftest import REDIS_URL

REPO_ROOT = Path(__file__).resolve().parents[2]
MANAGE_PY = REPO_ROOT / "manage.py"
PYTHON = sys.executable

#: Seconds an idle worker waits between polls in these tests (the demo default is 0.5).
POLL_INTERVAL_SECONDS = 0.1
#: Seconds a worker may take from exec to its "serving" log line (imports Django, connects).
WORKER_START_TIMEOUT_SECONDS = 30.0
#: Seconds a management command run to completion (migrate, enqueue) may take.
COMMAND_TIMEOUT_SECONDS = 120.0

PG_HOST = os.environ.get("DJTASKS_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("DJTASKS_PG_PORT", "5432"))
PG_USER = os.environ.get("DJTASKS_PG_USER", "postgres")

T = TypeVar("T")


# -- waiting ----------------------------------------------------------------

def wait_until(condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.05,
               alive: Sequence[WorkerProcess] = (), state: Callable[[], object] | None = None) -> T:
    """Return the first truthy value of ``condition()``; fail after ``timeout`` seconds.

    Also fails at once when a worker in ``alive`` exits meanwhile. ``state``
    describes the situation for the failure message (e.g. counts of rows).
    """
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        for worker in alive:
            if worker.popen.poll() is not None:
                raise AssertionError(f"while waiting for {what}: worker {worker.name} exited with code "
                                     f"{worker.popen.returncode}\n{worker.log_tail()}")
        if time.monotonic() >= deadline:
            described = f"; state: {state()}" if state is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{described}")
        time.sleep(interval)  # the polling interval of this deadline loop, not a synchronisation


# -- databases --------------------------------------------------------------

@dataclass
class E2EDatabase:
    """A database of the demo project that tests create, inspect and drop."""

    engine: str  # "sqlite" or "postgresql"
    name: str  # a file path for SQLite, a database name for PostgreSQL
    #: Set: the queue is in Redis (the shared test server), under this key prefix; the results stay here.
    redis_prefix: str | None = None
    _connection: Any = field(default=None, repr=False)

    @property
    def on_redis(self) -> bool:
        return self.redis_prefix is not None

    @property
    def queued_state(self) -> str | None:
        """The ``broker_state`` of the row of a task still in the queue (the Redis broker's are in Redis)."""
        return None if self.on_redis else "queued"

    def env(self, **extra: str | float) -> dict[str, str]:
        """The environment of a ``manage.py`` subprocess working on this database (and broker)."""
        env = dict(os.environ)
        env.update({
            "DJANGO_SETTINGS_MODULE": "testproject.settings",
            "DJTASKS_DB_ENGINE": self.engine,
            "DJTASKS_DB_NAME": self.name,
            "DJTASKS_DB_HOST": PG_HOST,
            "DJTASKS_DB_USER": PG_USER,
            "DJTASKS_POLL_INTERVAL": str(POLL_INTERVAL_SECONDS),
            "PYTHONUNBUFFERED": "1",
        })
        if self.redis_prefix is not None:
            env.update({"DJTASKS_BROKER_URL": REDIS_URL, "DJTASKS_KEY_PREFIX": self.redis_prefix})
        env.update({key: str(value) for key, value in extra.items()})
        return env

    # -- plain SQL, placeholders written %s for both engines --------------

    def _connect(self) -> Any:
        if self._connection is None:
            if self.engine == "sqlite":
                self._connection = sqlite3.connect(self.name, timeout=30, isolation_level=None)
            else:
                import psycopg

                self._connection = psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname=self.name,
                                                   autocommit=True)
        return self._connection

    def _sql(self, sql: str) -> str:
        return sql.replace("%s", "?") if self.engine == "sqlite" else sql

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        """Rows of one SELECT, in autocommit (no lock or snapshot is held afterwards)."""
        cursor = self._connect().cursor()
        try:
            cursor.execute(self._sql(sql), tuple(params))
            return cursor.fetchall()
        finally:
            cursor.close()

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """The first column of the first row of one SELECT."""
        return self.query(sql, params)[0][0]

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement in autocommit; return the affected row count."""
        cursor = self._connect().cursor()
        try:
            cursor.execute(self._sql(sql), tuple(params))
            return cursor.rowcount
        finally:
            cursor.close()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def task_id(self, task_id: str) -> str:
        """``task_id`` as the id column stores it (SQLite keeps UUIDs as 32 hex digits)."""
        return uuid.UUID(task_id).hex if self.engine == "sqlite" else task_id

    # -- the demo project's rows ------------------------------------------

    def task_row(self, task_id: str) -> dict[str, Any]:
        """The result row of ``task_id`` as a dict, JSON columns decoded."""
        columns = ("status", "attempts", "worker_ids", "errors", "broker_state", "deliveries", "task_path",
                   "return_value", "lease_owner", "message")
        rows = self.query(f"SELECT {', '.join(columns)} FROM djtasks_taskrecord WHERE id = %s",
                          [self.task_id(task_id)])
        if not rows:
            raise AssertionError(f"no result row for task {task_id}")
        row = dict(zip(columns, rows[0], strict=True))
        if self.engine == "sqlite":  # JSON columns are text there; psycopg decodes jsonb itself
            for name in ("worker_ids", "errors", "return_value"):
                row[name] = None if row[name] is None else json.loads(row[name])
        return row

    def status(self, task_id: str) -> str:
        return self.scalar("SELECT status FROM djtasks_taskrecord WHERE id = %s", [self.task_id(task_id)])

    def status_counts(self) -> dict[str, int]:
        """How many result rows have each status."""
        return dict(self.query("SELECT status, COUNT(*) FROM djtasks_taskrecord GROUP BY status"))

    def redis(self):  # noqa: ANN201 - a redis.Redis
        """A client of the Redis server that holds this test's queue (``decode_responses``)."""
        import redis

        return redis.Redis.from_url(REDIS_URL, decode_responses=True)

    def redis_leftovers(self) -> dict[str, int]:
        """What Redis still holds of this test's queues: stream entries, leases and delayed messages, by key.

        Empty once every task is acknowledged; always empty on the ORM broker.
        """
        if not self.on_redis:
            return {}
        sizes = {}
        with self.redis() as client:
            for key in client.scan_iter(match=f"{{{self.redis_prefix}:*", count=1000):
                kind = client.type(key)
                if kind == "stream":
                    sizes[key] = client.xlen(key)
                elif kind == "zset" and not key.endswith(":priorities"):  # leases, delayed messages
                    sizes[key] = client.zcard(key)
        return {key: size for key, size in sizes.items() if size}

    def runs(self, key: str | None = None) -> list[tuple[str, int]]:
        """``(key, worker_pid)`` rows that the demo tasks recorded (of one key, or all)."""
        if key is None:
            return self.query("SELECT key, worker_pid FROM demo_taskrun")
        return self.query("SELECT key, worker_pid FROM demo_taskrun WHERE key = %s", [key])


def migrate(db: E2EDatabase) -> None:
    """Create the demo project's schema in ``db`` with ``manage.py migrate`` (a subprocess)."""
    run_manage(db, "migrate", "--noinput", "-v", "0")


def run_manage(db: E2EDatabase, *args: str, **env: str | float) -> subprocess.CompletedProcess[str]:
    """Run ``manage.py *args`` to completion on ``db``; fail with its output if it fails."""
    done = subprocess.run([PYTHON, str(MANAGE_PY), *args], cwd=REPO_ROOT, env=db.env(**env), capture_output=True,
                          text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        raise AssertionError(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def postgres_reachable() -> bool:
    """Whether the PostgreSQL server of the e2e tests accepts a connection."""
    import psycopg

    try:
        with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", connect_timeout=2):
            return True
    except psycopg.Error:
        return False


def create_postgres_database() -> str:
    """Create an empty database ``djtasks_e2e_<random>``; return its name."""
    import psycopg

    name = f"djtasks_e2e_{secrets.token_hex(4)}"
    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_postgres_database(name: str) -> None:
    """Drop database ``name``, disconnecting whoever still uses it."""
    import psycopg

    with psycopg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, dbname="postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- enqueueing -------------------------------------------------------------

DEMO = "testproject.demo.tasks"


def call(task: str, *args: Any, countdown: float | None = None, **kwargs: Any) -> dict[str, Any]:
    """One call for :func:`enqueue`: ``task`` is a name in the demo project's ``tasks`` module."""
    return {"task": f"{DEMO}.{task}", "args": list(args), "kwargs": kwargs, "countdown": countdown}


def enqueue(db: E2EDatabase, calls: Iterable[dict[str, Any]]) -> list[str]:
    """Enqueue ``calls`` through djtasks' own API in a subprocess on ``db``; return the task ids in order."""
    payload = json.dumps(list(calls))
    done = subprocess.run([PYTHON, "-m", "tests.e2e.enqueue"], cwd=REPO_ROOT, env=db.env(), input=payload,
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        raise AssertionError(f"enqueue exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return json.loads(done.stdout)


# -- workers ----------------------------------------------------------------

SERVING = re.compile(r"worker (\S+) serving ")


@dataclass
class WorkerProcess:
    """A real ``manage.py runworker`` subprocess; its stderr and stdout go to ``log_path``."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    worker_id: str = ""

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return f"--- log of worker {self.name} (pid {self.pid}) ---\n" + "\n".join(self.log().splitlines()[-lines:])

    def wait_for_log(self, pattern: str, timeout: float) -> re.Match[str]:
        """Wait until a log line matches regex ``pattern``; fail if the worker exits first."""
        regex = re.compile(pattern)

        def found() -> re.Match[str] | None:
            match = regex.search(self.log())
            if match is None and self.popen.poll() is not None:
                match = regex.search(self.log())  # the last lines may have come with the exit
                if match is None:
                    raise AssertionError(f"worker {self.name} exited with code {self.popen.returncode} before "
                                         f"logging /{pattern}/")
            return match

        try:
            return wait_until(found, timeout=timeout, what=f"worker {self.name} to log /{pattern}/")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None

    def wait_serving(self, timeout: float = WORKER_START_TIMEOUT_SECONDS) -> str:
        """Wait for the "worker <id> serving" log line; remember and return the worker id."""
        self.worker_id = self.wait_for_log(SERVING.pattern, timeout).group(1)
        return self.worker_id

    def signal(self, signum: signal.Signals) -> None:
        self.popen.send_signal(signum)

    def wait_exit(self, timeout: float) -> int:
        """The exit code, waiting at most ``timeout`` seconds for it."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker {self.name} still runs {timeout:.0f}s later\n{self.log_tail()}") from None

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker (if it still runs) and reap it."""
        if self.popen.poll() is None:
            self.popen.kill()
        self.popen.wait(timeout=10)


def _die_with_the_test_process() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGKILL when the test process dies (Linux only).

    Fixture teardown kills workers; this also covers a test run that is itself killed.
    """
    if sys.platform != "linux":
        return None
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the child, after fork, only makes one call
    set_parent_death_signal = 1  # PR_SET_PDEATHSIG

    return lambda: libc.prctl(set_parent_death_signal, signal.SIGKILL)


def start_worker(db: E2EDatabase, log_dir: Path, name: str, *args: str,
                 env: dict[str, str | float] | None = None) -> WorkerProcess:
    """Start ``manage.py runworker *args`` on ``db``, logging to ``log_dir/worker-<name>.log``.

    Returns at once; :meth:`WorkerProcess.wait_serving` waits until it serves.
    """
    # preexec_fn is safe enough here: the child only calls prctl() before exec.
    log_path = log_dir / f"worker-{name}.log"
    with log_path.open("wb") as log:
        popen = subprocess.Popen([PYTHON, str(MANAGE_PY), "runworker", *args], cwd=REPO_ROOT,
                                 env=db.env(**(env or {})), stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, preexec_fn=_die_with_the_test_process())  # noqa: PLW1509
    return WorkerProcess(name=name, popen=popen, log_path=log_path)
