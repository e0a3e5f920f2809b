"""The beat loop: lead (or wait to), read the schedules, enqueue each due tick once.

Every loop reads the enabled periodic tasks afresh (one query), so edits made
in the admin or through the ORM take effect at the next loop: within
``reload_seconds``. Between loops the beat sleeps until the next tick is due,
so a tick is enqueued within milliseconds of its moment. Each tick goes
through :func:`fire`: the de-duplication row and the enqueue commit together.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import (
    DatabaseError,
    IntegrityError,
    close_old_connections,
    connections,
    transaction,
)
from django.db.models import F, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from .. import registry
from ..exceptions import DjTasksError
from ..messages import load_value
from ..task import DjTask
from .declared import DeclaredTask, parse_beat_schedule, sync_declared
from .lease import LeaderLease
from .models import PeriodicTask, PeriodicTaskTick
from .schedules import CatchUp

logger = logging.getLogger("djtasks.beat")

#: Seconds to wait before the next loop after the database failed.
ERROR_BACKOFF_SECONDS = (0.5, 1, 2, 5, 10)
#: Seconds between two clean-ups of old tick rows by the leader (with ``KEEP_RESULTS_DAYS``).
CLEANUP_INTERVAL_SECONDS = 3600
#: Distinct failures remembered so that each is logged at ERROR once (then the memory starts over).
REPORTED_MAX = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class BeatConfig:
    """How a beat runs; ``runbeat`` options set these."""

    #: Ticks that came due while no beat ran: enqueue the latest once, or skip them.
    catch_up: CatchUp = CatchUp.ONCE
    #: With ``catch_up="skip"``, a tick this late or less still runs.
    skip_grace: dt.timedelta = dt.timedelta(minutes=1)
    #: Seconds a leader's lease lasts unrenewed: a dead leader is replaced this long after its last renewal.
    lease_seconds: float = 10.0
    #: Seconds between two reads of the schedules (edits take effect within this) and between a
    #: follower's tries to take the lead.
    reload_seconds: float = 1.0
    #: Tick rows older than this are deleted by the leader (``None``: kept).
    keep_ticks: dt.timedelta | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "catch_up", CatchUp(self.catch_up))
        if self.lease_seconds <= 0 or self.reload_seconds <= 0:
            raise ValueError("lease_seconds and reload_seconds must be positive")

    @property
    def renew_after_seconds(self) -> float:
        """The leader renews its lease when less than this is left: two thirds of it, so two renewals may fail."""
        return self.lease_seconds * 2 / 3


def make_beat_id() -> str:
    return f"beat.{socket.gethostname()}.{os.getpid()}.{secrets.token_hex(3)}"


# -- one tick ---------------------------------------------------------------------

def _task_of(periodic_task: PeriodicTask, backend_alias: str) -> DjTask:
    """The registered task on ``backend_alias``, with this periodic task's queue, priority and expiry."""
    task = registry.lookup(periodic_task.task)
    options: dict = {"backend": backend_alias}
    if isinstance(task, DjTask):
        options["headers"] = {"periodic_task": periodic_task.name}
    if periodic_task.queue_name:
        options["queue_name"] = periodic_task.queue_name
    if periodic_task.priority is not None:
        options["priority"] = periodic_task.priority
    if periodic_task.expires is not None and isinstance(task, DjTask):
        options["expires"] = periodic_task.expires
    return task.using(**options)


def fire(periodic_task: PeriodicTask, scheduled_at: dt.datetime, *, backend,  # noqa: ANN001 - DjTasksBackend
         now: dt.datetime | None = None) -> str | None:
    """Enqueue the tick of ``periodic_task`` at ``scheduled_at``; return its task id, or ``None`` if enqueued before.

    In one transaction on the results database of ``backend``: insert the
    tick row (the UNIQUE (periodic task, scheduled time) fails if any beat
    enqueued this tick already), enqueue the task on ``backend``, record the
    task id, and move ``last_run_at``. On the ORM broker the task's own row
    commits with them: all or nothing. Raises what ``enqueue()`` raises
    (nothing is written then), or ``UnknownTaskError``.
    """
    database = backend.config.results_database
    task = _task_of(periodic_task, backend.alias)
    args, kwargs = load_value(periodic_task.args or []), load_value(periodic_task.kwargs or {})
    now = now or timezone.now()
    rows = PeriodicTask.objects.using(database).filter(pk=periodic_task.pk)
    with transaction.atomic(using=database):
        # Beats firing the same task queue up here, one at a time: without this lock, two
        # inserts of one tick deadlock on MySQL (each holds a shared lock on this row from
        # the foreign key check, then the winner's UPDATE of the row waits for the loser).
        if not rows.select_for_update().values_list("pk", flat=True):
            return None  # deleted meanwhile
        try:
            with transaction.atomic(using=database):
                tick = PeriodicTaskTick.objects.using(database).create(
                    periodic_task_id=periodic_task.pk, scheduled_at=scheduled_at, enqueued_at=now)
        except IntegrityError:
            tick = None
        if tick is not None:
            result = task.enqueue(*args, **kwargs)
            PeriodicTaskTick.objects.using(database).filter(pk=tick.pk).update(task_id=result.id)
        moment = Value(scheduled_at)
        changes: dict = {"last_run_at": Greatest(Coalesce("last_run_at", moment), moment)}
        if tick is not None:
            changes["total_run_count"] = F("total_run_count") + 1
        if periodic_task.one_off or periodic_task.clocked_id is not None:
            changes["enabled"] = False
        rows.update(**changes)
    return None if tick is None else result.id


def run_now(periodic_task: PeriodicTask, *, backend) -> str:  # noqa: ANN001 - DjTasksBackend
    """Enqueue ``periodic_task`` at once, as a tick of this moment (the admin's "run now")."""
    now = timezone.now()
    task_id = fire(periodic_task, now, backend=backend, now=now)
    if task_id is None:  # another tick at this very microsecond
        raise DjTasksError(f"periodic task {periodic_task.name!r} was enqueued at this moment already")
    return task_id


def backend_of_database(database: str):  # noqa: ANN201 - a DjTasksBackend
    """The djtasks backend whose results (and periodic tasks) live in ``database``."""
    from django.tasks import task_backends

    from ..backend import DjTasksBackend

    for backend in task_backends.all():
        if isinstance(backend, DjTasksBackend) and backend.config.results_database == database:
            return backend
    raise DjTasksError(f"no djtasks backend keeps its results in database {database!r}")


# -- the loop -----------------------------------------------------------------------

@dataclass(slots=True)
class _State:
    #: ``None`` until the first try for the lead, so that both outcomes are logged once.
    leading: bool | None = None
    failures: int = 0
    next_cleanup: float = 0.0
    #: (periodic task id, error) logged already: each at ERROR once, then at DEBUG.
    reported: set = field(default_factory=set)


class Beat:
    """One beat process (or thread): leads through the lease, or waits to.

    ``clock`` is what "now" is when deciding which ticks are due.
    """

    def __init__(self, *, backend, config: BeatConfig | None = None, beat_id: str | None = None,  # noqa: ANN001
                 clock=timezone.now) -> None:  # noqa: ANN001
        self.backend = backend
        self.config = config or BeatConfig()
        self.beat_id = beat_id or make_beat_id()
        self.database: str = backend.config.results_database
        #: Raises ConfigurationError now rather than at the first lead.
        self.declared: list[DeclaredTask] = parse_beat_schedule(backend.config.beat_schedule)
        self.clock = clock
        self.lease = LeaderLease(database=self.database, owner=self.beat_id, lease_seconds=self.config.lease_seconds)
        self.state = _State()
        self._stopping = threading.Event()
        self._release_on_stop = True

    # -- control ---------------------------------------------------------------

    def request_stop(self, *, release_lease: bool = True) -> None:
        """Stop after the current loop; give up the lease unless ``release_lease=False`` (as a crash would not)."""
        self._release_on_stop = release_lease
        self._stopping.set()

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def leading(self) -> bool:
        return bool(self.state.leading)

    def run(self) -> None:
        """Loop until :meth:`request_stop`."""
        logger.info("beat %s started on database %r (lease %gs, catch-up %s)", self.beat_id, self.database,
                    self.config.lease_seconds, self.config.catch_up)
        try:
            while not self.stopping:
                self._stopping.wait(self.run_once())
        finally:
            self._shut_down()

    def run_once(self) -> float:
        """One loop: lead or follow, enqueue due ticks; return the seconds to wait before the next."""
        close_old_connections()
        try:
            wait = self._lead_and_tick() if self._lead() else self.config.reload_seconds
            self.state.failures = 0
            return wait
        except Exception:  # noqa: BLE001 - the database failed (or a bug): stop leading, back off, go on
            backoff = ERROR_BACKOFF_SECONDS[min(self.state.failures, len(ERROR_BACKOFF_SECONDS) - 1)]
            self.state.failures += 1
            logger.exception("beat %s: loop failed; trying again in %gs", self.beat_id, backoff)
            self.lease.forget()
            self._set_leading(False)
            close_old_connections()
            return backoff

    def _lead(self) -> bool:
        """Take or renew the lease when due; return whether this beat leads."""
        if not self.state.leading or self.lease.remaining_seconds() < self.config.renew_after_seconds:
            self._set_leading(self.lease.acquire())
        return bool(self.state.leading)

    def _set_leading(self, leading: bool) -> None:
        if leading == self.state.leading:
            return
        self.state.leading = leading
        if leading:
            logger.info("beat %s leads", self.beat_id)
            self._sync_declared()
        else:
            holder = None
            with contextlib.suppress(Exception):  # only for the log line; the database may be down
                holder = self.lease.holder()
            logger.info("beat %s stands by%s", self.beat_id, f" ({holder.owner} leads)" if holder else "")

    def _sync_declared(self) -> None:
        result = sync_declared(self.declared, database=self.database)
        for verb in ("created", "updated", "disabled"):
            names = getattr(result, verb)
            if names:
                logger.info("beat %s: BEAT_SCHEDULE %s %s", self.beat_id, verb, ", ".join(names))

    def _lead_and_tick(self) -> float:
        now = self.clock()
        upcoming = self.tick(now)
        self._clean_up()
        wait = self.config.reload_seconds
        if upcoming is not None:
            # A hair past the moment, so that the next loop finds it due.
            wait = min(wait, max((upcoming - self.clock()).total_seconds(), 0.0) + 0.001)
        return min(wait, max(self.lease.remaining_seconds() - self.config.renew_after_seconds, 0.0))

    def tick(self, now: dt.datetime) -> dt.datetime | None:
        """Enqueue every tick due at ``now``; return the moment of the next one (``None``: none known).

        Does not look at the lease: :meth:`run` calls it while leading; tests call it directly.
        """
        rows = (PeriodicTask.objects.using(self.database).filter(enabled=True)
                .select_related("crontab", "interval", "clocked"))
        upcoming: dt.datetime | None = None
        for periodic_task in rows:
            if self.stopping or (self.state.leading and not self.lease.held):
                break  # stopped, or the lease ran out while ticking: leave the rest to the leader
            self._tick_one(periodic_task, now)
            try:
                next_run = periodic_task.next_run_at(now)
            except (ValueError, LookupError, ValidationError):
                continue
            # A moment still due now is one that failed or was skipped: the next loop tries again anyway.
            if next_run is not None and next_run > now and (upcoming is None or next_run < upcoming):
                upcoming = next_run
        return upcoming

    def _tick_one(self, periodic_task: PeriodicTask, now: dt.datetime) -> dt.datetime | None:
        """Fire ``periodic_task`` if a tick is due; return that tick's moment."""
        try:
            due = periodic_task.due_tick(now, self.config.catch_up, self.config.skip_grace)
        except (ValueError, LookupError, ValidationError) as exc:  # a schedule row broken behind the admin's back
            self._report(periodic_task, "has a broken schedule: %s", exc)
            return None
        if due is None:
            return None
        try:
            task_id = fire(periodic_task, due, backend=self.backend, now=now)
        except DatabaseError:
            raise  # the whole loop backs off
        except Exception as exc:  # noqa: BLE001 - one bad task must not stop the others' ticks
            self._report(periodic_task, "could not be enqueued (retried at the next loop): %s", exc)
            return None
        # Fired (or fired by another beat): what the row says now is what this beat did.
        periodic_task.last_run_at = max(periodic_task.last_run_at or due, due)
        if task_id is None:
            logger.info("beat %s: %s at %s was enqueued already by another beat", self.beat_id, periodic_task.name,
                        due.isoformat())
        else:
            late = (now - due).total_seconds()
            logger.info("beat %s: enqueued %s (%s) for %s as %s%s", self.beat_id, periodic_task.name,
                        periodic_task.task, due.isoformat(), task_id, f", {late:.1f}s late" if late >= 1 else "")
        if periodic_task.one_off or periodic_task.clocked_id is not None:
            periodic_task.enabled = False
        return due

    def _report(self, periodic_task: PeriodicTask, message: str, exc: Exception) -> None:
        key = (periodic_task.pk, str(exc))
        level = logging.DEBUG if key in self.state.reported else logging.ERROR
        if len(self.state.reported) >= REPORTED_MAX:
            self.state.reported.clear()
        self.state.reported.add(key)
        logger.log(level, "beat %s: periodic task %r " + message, self.beat_id, periodic_task.name, exc)

    def _clean_up(self) -> None:
        if self.config.keep_ticks is None or time.monotonic() < self.state.next_cleanup:
            return
        self.state.next_cleanup = time.monotonic() + CLEANUP_INTERVAL_SECONDS
        before = timezone.now() - self.config.keep_ticks
        PeriodicTaskTick.objects.using(self.database).filter(scheduled_at__lt=before).delete()

    def _shut_down(self) -> None:
        try:
            if self.state.leading and self._release_on_stop:
                self.lease.release()
                logger.info("beat %s stopped and gave up the lead", self.beat_id)
            else:
                logger.info("beat %s stopped", self.beat_id)
        except Exception:  # noqa: BLE001 - the database is gone: the lease runs out by itself
            logger.exception("beat %s: could not give up the lead; it passes on when the lease runs out",
                             self.beat_id)
        finally:
            self.state.leading = False


class BeatThread:
    """A beat running in a daemon thread of this process (``runworker --beat``)."""

    def __init__(self, beat: Beat) -> None:
        self.beat = beat
        self.thread = threading.Thread(target=self._run, name="djtasks-beat", daemon=True)

    def _run(self) -> None:
        try:
            self.beat.run()
        finally:
            connections.close_all()  # this thread's connections only

    def start(self) -> BeatThread:
        self.thread.start()
        return self

    def request_stop(self) -> None:
        """Stop enqueueing and give up the lead; safe in a signal handler."""
        self.beat.request_stop()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop and wait for the thread to end."""
        self.beat.request_stop()
        self.thread.join(timeout)


def config_for(backend, **overrides) -> BeatConfig:  # noqa: ANN001
    """The beat configuration of ``backend``, with ``overrides`` (``runbeat`` options) applied."""
    days = backend.config.keep_results_days
    values: dict = {"keep_ticks": dt.timedelta(days=days) if days else None,
                    "catch_up": backend.config.beat_catch_up, "lease_seconds": backend.config.beat_lease_seconds}
    values.update({key: value for key, value in overrides.items() if value is not None})
    return BeatConfig(**values)
