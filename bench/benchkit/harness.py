"""One contestant's environment: fresh databases, ``manage.py`` calls, workers."""

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import psycopg
import redis

from .config import POLL_INTERVAL, PROJECT_DIR, REDIS_DB_BOOKKEEPING, RESULT_TABLES, WORK_DIR, Contestant
from .services import Services, delete_keys, remove_sqlite, sqlite_path
from .workers import BenchError, WorkerGroup


@dataclass
class Harness:
    """Runs a contestant's commands with the right settings and keys.

    ``prefix`` is the Redis key prefix of the bookkeeping for this run; it is
    unique per contestant and workload.
    """

    contestant: Contestant
    services: Services
    prefix: str

    @cached_property
    def bookkeeping(self) -> redis.Redis:
        """The Redis client of the bookkeeping database."""
        return self.services.redis(REDIS_DB_BOOKKEEPING)

    def db_name(self) -> str:
        """The PostgreSQL database name or the SQLite path."""
        if self.contestant.db == "sqlite":
            return str(sqlite_path(self.contestant.name))
        return self.contestant.pg_name

    def env(self) -> dict[str, str]:
        """Environment of every process of this contestant."""
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE=f"benchproject.settings.{self.contestant.family}",
            BENCH_DB=self.contestant.db,
            BENCH_DB_NAME=self.db_name(),
            BENCH_PG_HOST=self.services.pg_host,
            BENCH_PG_PORT=str(self.services.pg_port),
            BENCH_PG_USER=self.services.pg_user,
            BENCH_REDIS_URL=self.services.redis_url(REDIS_DB_BOOKKEEPING),
            BENCH_PREFIX=self.prefix,
            BENCH_BROKER_URL=(
                self.services.redis_url(self.contestant.redis_broker_db)
                if self.contestant.redis_broker_db is not None
                else ""
            ),
            BENCH_POLL_INTERVAL=POLL_INTERVAL,
            PYTHONUNBUFFERED="1",
        )
        env.update(self.contestant.env)
        env.pop("PYTHONPATH", None)
        return env

    def argv(self, command: tuple[str, ...]) -> list[str]:
        """Resolve a worker or manage command to a full argv in this venv."""
        head, *rest = command
        if head == "manage.py":
            return [sys.executable, "manage.py", *rest]
        if head in ("celery", "dramatiq"):
            return [str(Path(sys.executable).with_name(head)), *rest]
        raise ValueError(f"unknown command head {head!r}")

    def manage(self, *args: str, timeout: float = 600) -> str:
        """Run ``manage.py args`` and return its stdout; raise :class:`BenchError` on failure."""
        try:
            done = subprocess.run(
                self.argv(("manage.py", *args)), cwd=PROJECT_DIR, env=self.env(),
                capture_output=True, text=True, timeout=timeout, check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"manage.py {' '.join(args)} timed out after {timeout:.0f} s") from exc
        if done.returncode != 0:
            tail = "\n".join(done.stderr.splitlines()[-15:])
            raise BenchError(f"manage.py {' '.join(args)} failed ({done.returncode}):\n{tail}")
        return done.stdout

    def manage_json(self, *args: str, timeout: float = 600) -> dict[str, Any]:
        """Run a ``bench_*`` command and parse the JSON of its last output line."""
        lines = self.manage(*args, timeout=timeout).strip().splitlines()
        if not lines:
            raise BenchError(f"manage.py {' '.join(args)} printed nothing")
        return dict(json.loads(lines[-1]))

    def reset(self) -> None:
        """Start from nothing: recreate the database, flush the broker, drop old keys, migrate."""
        if self.contestant.db == "sqlite":
            WORK_DIR.mkdir(parents=True, exist_ok=True)
            remove_sqlite(sqlite_path(self.contestant.name))
        else:
            self.services.recreate_pg_database(self.contestant.pg_name)
        if self.contestant.redis_broker_db is not None:
            self.services.redis(self.contestant.redis_broker_db).flushdb()
        delete_keys(self.bookkeeping, self.prefix)
        self.manage("migrate", "--verbosity", "0")

    def finished_rows(self) -> int:
        """Result rows in a final state, counted with one plain SQL query (cheap enough to poll)."""
        spec = RESULT_TABLES[self.contestant.family]
        marks = ", ".join(["%s"] * len(spec.finished_states))
        query = f"SELECT count(*) FROM {spec.table} WHERE status IN ({marks})"  # noqa: S608  (constants)
        if self.contestant.db == "sqlite":
            with sqlite3.connect(f"file:{self.db_name()}?mode=ro", uri=True, timeout=20) as conn:
                row = conn.execute(query.replace("%s", "?"), spec.finished_states).fetchone()
        else:
            row = self._sql.execute(query, spec.finished_states).fetchone()
        return int(row[0]) if row else 0

    @cached_property
    def _sql(self) -> psycopg.Connection:
        """An autocommit connection to the contestant's PostgreSQL database (for counting)."""
        return psycopg.connect(
            host=self.services.pg_host, port=self.services.pg_port, user=self.services.pg_user,
            dbname=self.contestant.pg_name, autocommit=True,
        )

    def cleanup(self) -> None:
        """Drop this run's bookkeeping keys and broker contents; close the counting connection."""
        if "_sql" in self.__dict__:
            self._sql.close()
            del self.__dict__["_sql"]
        delete_keys(self.bookkeeping, self.prefix)
        if self.contestant.redis_broker_db is not None:
            self.services.redis(self.contestant.redis_broker_db).flushdb()

    def start_workers(self, log_name: str) -> WorkerGroup:
        """Start the contestant's worker processes."""
        logs = WORK_DIR / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        commands = [self.argv(command) for command in self.contestant.workers]
        return WorkerGroup.start(commands, PROJECT_DIR, self.env(), logs / f"{self.contestant.name}-{log_name}")

    def count(self, tag: str) -> int:
        """How many tasks tagged ``tag`` have started (length of the bookkeeping list)."""
        return int(self.bookkeeping.llen(f"{self.prefix}:{tag}"))

    def records(self, tag: str) -> list[tuple[float, float]]:
        """The ``(started, enqueued_at)`` pairs recorded by the tasks tagged ``tag``."""
        raw = self.bookkeeping.lrange(f"{self.prefix}:{tag}", 0, -1)
        pairs = (str(item).split() for item in raw)
        return [(float(started), float(enqueued)) for started, enqueued in pairs]

    def results(self) -> dict[str, int]:
        """Stored result rows by state (via ``manage.py bench_status``)."""
        return {key: int(value) for key, value in self.manage_json("bench_status", timeout=120).items()}
