"""Token buckets as ``RateLimitBucket`` rows, for workers that share a database.

One short transaction per call locks the bucket's row (``SELECT … FOR
UPDATE`` on PostgreSQL and MySQL; on SQLite the first write takes the
database's write lock), refills it, and writes it back only when a token is
taken: a refused call changes nothing, since the refill is recomputed from
``updated_at`` next time.

Call it outside any transaction of your own: inside one, the row stays
locked until that transaction ends and every worker queues behind it.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from django.db import connections, transaction
from django.db.models import F

from ..exceptions import DjTasksError
from .base import RateLimiter, storage_key, take_token
from .rates import Rate

if TYPE_CHECKING:
    from ..models import RateLimitBucket

#: SQLite transaction modes in which ``BEGIN`` already takes the write lock.
_SQLITE_LOCKING_MODES = frozenset({"IMMEDIATE", "EXCLUSIVE"})


class DatabaseRateLimiter(RateLimiter):
    """Buckets in the ``RateLimitBucket`` table of database ``alias``."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias

    def acquire(self, key: str, rate: Rate, now: dt.datetime) -> float:
        """See :meth:`RateLimiter.acquire`."""
        db_key = storage_key(key)
        for _attempt in range(3):
            wait_seconds = self._take(db_key, rate, now)
            if wait_seconds is not None:
                return wait_seconds
            self._create_full(db_key, rate, now)
        raise DjTasksError(f"Rate limit bucket {db_key!r} vanished as soon as it was created, three times.")

    def _create_full(self, db_key: str, rate: Rate, now: dt.datetime) -> None:
        # Outside the locking transaction, in autocommit, and ignoring a row
        # another worker created first: on MySQL, inserting after a locking
        # read of a missing row deadlocks with a worker doing the same.
        bucket = _bucket_model()
        bucket.objects.using(self.alias).bulk_create(
            [bucket(key=db_key, tokens=float(rate.burst), updated_at=now)], ignore_conflicts=True)

    def _take(self, db_key: str, rate: Rate, now: dt.datetime) -> float | None:
        """Seconds to wait (0.0: a token was taken), or None if the bucket has no row yet."""
        buckets = _bucket_model().objects.using(self.alias).filter(pk=db_key)
        with transaction.atomic(using=self.alias):
            if self._needs_write_lock():
                # A deferred SQLite transaction that reads first and writes later
                # fails (SQLITE_BUSY) when another writer went in between; writing
                # first waits for the lock instead.
                buckets.update(tokens=F("tokens"))
            row = buckets.select_for_update().values_list("tokens", "updated_at").first()
            if row is None:
                return None
            tokens, updated_at = row
            taken = take_token(tokens, (now - updated_at).total_seconds(), rate)
            if taken.wait_seconds == 0.0:
                buckets.update(tokens=taken.tokens, updated_at=max(updated_at, now))
            return taken.wait_seconds

    def _needs_write_lock(self) -> bool:
        connection = connections[self.alias]
        if connection.vendor != "sqlite":
            return False
        mode = (connection.settings_dict.get("OPTIONS") or {}).get("transaction_mode") or ""
        return mode.upper() not in _SQLITE_LOCKING_MODES


def _bucket_model() -> type[RateLimitBucket]:
    # Imported on use: ``@djtask(rate_limit=...)`` parses rates while apps load,
    # before models may be imported, and importing this package must not break that.
    from ..models import RateLimitBucket as model

    return model
