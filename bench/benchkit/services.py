"""PostgreSQL, Redis and SQLite housekeeping: fresh databases for every run."""

from dataclasses import dataclass
from pathlib import Path

import psycopg
import redis
from psycopg import sql

from .config import WORK_DIR


@dataclass(frozen=True)
class Services:
    """Where PostgreSQL and Redis listen."""

    pg_host: str = "127.0.0.1"
    pg_port: int = 5432
    pg_user: str = "postgres"
    redis_host: str = "127.0.0.1"
    redis_port: int = 6379

    def redis_url(self, db: int) -> str:
        """Return the URL of Redis database ``db``."""
        return f"redis://{self.redis_host}:{self.redis_port}/{db}"

    def redis(self, db: int) -> redis.Redis:
        """Return a client of Redis database ``db`` (replies decoded to ``str``)."""
        return redis.Redis(host=self.redis_host, port=self.redis_port, db=db, decode_responses=True)

    def _pg_admin(self) -> psycopg.Connection:
        return psycopg.connect(
            host=self.pg_host, port=self.pg_port, user=self.pg_user, dbname="postgres", autocommit=True
        )

    def recreate_pg_database(self, name: str) -> None:
        """Drop (forcibly) and create the PostgreSQL database ``name``."""
        with self._pg_admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def drop_pg_database(self, name: str) -> None:
        """Drop the PostgreSQL database ``name`` if it exists."""
        with self._pg_admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def pg_version(self) -> str:
        """Return the PostgreSQL server version string."""
        with self._pg_admin() as conn:
            row = conn.execute("SHOW server_version").fetchone()
        return str(row[0]) if row else "?"

    def redis_version(self) -> str:
        """Return the Redis server version."""
        return str(self.redis(0).info("server")["redis_version"])

    def check(self) -> None:
        """Fail early, with a hint, when PostgreSQL or Redis is not reachable."""
        try:
            self.pg_version()
        except psycopg.OperationalError as exc:
            raise SystemExit(f"PostgreSQL not reachable at {self.pg_host}:{self.pg_port}: {exc}") from exc
        try:
            self.redis(0).ping()
        except redis.RedisError as exc:
            raise SystemExit(f"Redis not reachable at {self.redis_host}:{self.redis_port}: {exc}") from exc


def sqlite_path(contestant_name: str) -> Path:
    """Return the SQLite file of a contestant."""
    return WORK_DIR / f"{contestant_name}.sqlite3"


def remove_sqlite(path: Path) -> None:
    """Delete a SQLite database with its WAL and shared-memory files."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def delete_keys(client: redis.Redis, prefix: str) -> int:
    """Delete every key starting with ``prefix``; return how many."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    return int(client.delete(*keys)) if keys else 0
