"""The leader lease: one row per database names the beat that leads.

A beat leads while its lease has not run out; it renews the lease well before
that. Taking or renewing is one conditional UPDATE ("mine, or expired") -- the
database serialises competing beats on the row. Expiry times come from the
database's clock, so beats on hosts whose clocks disagree still agree on who
leads. A leader that dies stops renewing, and another beat takes over once
the lease runs out: within ``lease_seconds`` plus one follower poll.

The lease alone cannot promise exactly-once: a leader paused longer than its
lease (a stop-the-world GC, a frozen VM) may wake up still believing it leads.
That is why each tick also has a de-duplication key (see ``ticker.fire``).
"""

from __future__ import annotations

import datetime as dt
import time

from django.db import IntegrityError, transaction
from django.db.models import Case, DurationField, F, Q, Value, When
from django.db.models.functions import Now

from .models import BeatLease

#: The lease row's name: one leader per database, whatever the backend alias.
LEASE_NAME = "beat"


class DatabaseNow(Now):
    """The database's clock, in UTC on every vendor."""

    def as_mysql(self, compiler, connection, **extra_context):  # noqa: ANN001, ANN201
        # CURRENT_TIMESTAMP is in the session's time zone on MySQL; the lease compares in UTC.
        return self.as_sql(compiler, connection, template="UTC_TIMESTAMP(6)", **extra_context)


def _database_now_plus(seconds: float):  # noqa: ANN202 - an expression
    return DatabaseNow() + Value(dt.timedelta(seconds=seconds), output_field=DurationField())


class LeaderLease:
    """Take, renew and give up the lease of database ``database`` as ``owner``."""

    def __init__(self, *, database: str, owner: str, lease_seconds: float, name: str = LEASE_NAME) -> None:
        self.database = database
        self.owner = owner
        self.lease_seconds = lease_seconds
        self.name = name
        #: time.monotonic() until which this process knows it leads.
        self._valid_until = 0.0

    def _rows(self):  # noqa: ANN202 - a QuerySet
        return BeatLease.objects.using(self.database).filter(name=self.name)

    @property
    def held(self) -> bool:
        """Whether this beat leads now, by its own clock (it renewed in time)."""
        return time.monotonic() < self._valid_until

    def remaining_seconds(self) -> float:
        return max(self._valid_until - time.monotonic(), 0.0)

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if it is ours; return whether we lead."""
        # Measured before the write: the database's expiry is at least this far ahead.
        started = time.monotonic()
        expires_at = _database_now_plus(self.lease_seconds)
        taken = self._rows().filter(Q(owner=self.owner) | Q(expires_at__lte=DatabaseNow())).update(
            owner=self.owner, expires_at=expires_at,
            acquired_at=Case(When(owner=self.owner, then=F("acquired_at")), default=DatabaseNow()))
        if not taken and not self._create(expires_at):
            self._valid_until = 0.0
            return False
        self._valid_until = started + self.lease_seconds
        return True

    def _create(self, expires_at) -> bool:  # noqa: ANN001 - an expression
        """Insert the lease row the first time any beat runs on this database."""
        if self._rows().exists():
            return False
        try:
            with transaction.atomic(using=self.database):
                BeatLease.objects.using(self.database).create(name=self.name, owner=self.owner,
                                                              acquired_at=DatabaseNow(), expires_at=expires_at)
        except IntegrityError:
            return False  # another beat inserted it first
        return True

    def release(self) -> None:
        """Give up the lease, if ours, so that another beat takes over at once."""
        self._valid_until = 0.0
        self._rows().filter(owner=self.owner).update(expires_at=DatabaseNow())

    def forget(self) -> None:
        """Stop counting on the lease without touching the database (after a database error)."""
        self._valid_until = 0.0

    def holder(self) -> BeatLease | None:
        """The lease row: who leads (or led last), since when, until when."""
        return self._rows().first()
