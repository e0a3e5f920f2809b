"""Periodic task rows: the schedules, the tasks they fire, each tick enqueued, and the leader lease.

The names and fields follow django-celery-beat, so its users find their way:
``CrontabSchedule``, ``IntervalSchedule``, ``ClockedSchedule`` and
``PeriodicTask``. Two tables are beat's own: :class:`PeriodicTaskTick`, one row
per tick enqueued, whose UNIQUE (periodic task, scheduled time) makes each tick
enqueue once however many beats run, and which links each result back to its
schedule; and :class:`BeatLease`, the row a leading beat keeps renewing.

Imported by ``djtasks.models``; the app label is ``djtasks``.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.tasks.base import TASK_MAX_PRIORITY as MAX_PRIORITY
from django.tasks.base import TASK_MIN_PRIORITY as MIN_PRIORITY
from django.utils import timezone
from django.utils.deconstruct import deconstructible

from .. import registry
from ..exceptions import UnknownTaskError
from . import schedules, words
from .cron import (
    FIELDS,
    Cron,
    CronError,
    check_field,
    join_fields,
    split_expression,
    zone_named,
)

#: ``start_time`` counts: a tick exactly at it fires. Bounds are exclusive, so start just before.
JUST_BEFORE = dt.timedelta(microseconds=1)
#: An exclusive lower bound that lets any moment since 1970 fire.
BEGINNING = schedules.EPOCH


@deconstructible
class CronFieldValidator:
    """Check one cron field; the error names the field."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __call__(self, value: str) -> None:
        try:
            check_field(self.field, value)
        except CronError as exc:
            raise ValidationError(str(exc), code="invalid_cron") from None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronFieldValidator) and other.field == self.field

    def __hash__(self) -> int:
        return hash(self.field)


def validate_timezone(value: str) -> None:
    try:
        zone_named(value)
    except CronError as exc:
        raise ValidationError(str(exc), code="invalid_timezone") from None


def timezone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class CrontabSchedule(models.Model):
    """Cron fields in a time zone; e.g. ``minute="34", hour="1"`` is 01:34 every day."""

    minute = models.CharField(max_length=240, default="*", validators=[CronFieldValidator("minute")],
                              help_text="0-59, with lists, ranges and steps: 0,30 or */15 or 10-20/5.")
    hour = models.CharField(max_length=96, default="*", validators=[CronFieldValidator("hour")],
                            help_text="0-23.")
    day_of_week = models.CharField(max_length=64, default="*", validators=[CronFieldValidator("day_of_week")],
                                   help_text="0-6 or sun-sat (0 and 7 are Sunday); L5 is the last Friday of the "
                                             "month, fri#2 the second Friday.")
    day_of_month = models.CharField(max_length=124, default="*", validators=[CronFieldValidator("day_of_month")],
                                    help_text="1-31, or L for the last day of the month.")
    month_of_year = models.CharField(max_length=64, default="*", validators=[CronFieldValidator("month_of_year")],
                                     help_text="1-12 or jan-dec.")
    timezone = models.CharField(max_length=63, default="UTC", validators=[validate_timezone],
                                help_text="The zone the times are in, e.g. Europe/Paris; daylight saving is "
                                          "followed.")

    class Meta:
        verbose_name = "crontab"
        verbose_name_plural = "crontabs"
        ordering = ("month_of_year", "day_of_month", "day_of_week", "hour", "minute", "timezone")

    def __str__(self) -> str:
        return self.describe()

    @classmethod
    def from_expression(cls, expression: str, timezone: str = "UTC") -> CrontabSchedule:
        """An unsaved schedule from ``"*/5 * * * *"`` (or ``@daily``...); raise ``ValidationError`` if invalid.

        Save it, or pass ``CrontabSchedule.from_expression(...).fields`` to ``get_or_create``.
        """
        try:
            fields = split_expression(expression)
            zone_named(timezone)
        except CronError as exc:
            raise ValidationError({exc.field: str(exc)} if exc.field else str(exc)) from None
        return cls(**fields, timezone=timezone)

    @property
    def fields(self) -> dict[str, str]:
        """The five cron fields and the time zone, by name."""
        return {**{name: getattr(self, name) for name in FIELDS}, "timezone": self.timezone}

    @property
    def expression(self) -> str:
        """The cron expression, e.g. ``"34 1 * * *"`` (minute hour day-of-month month day-of-week)."""
        return join_fields({name: getattr(self, name) for name in FIELDS})

    def clean(self) -> None:
        try:
            schedule = self.as_schedule()
        except CronError:
            return  # the field validators say which field is wrong
        if schedule.next_after(timezone.now()) is None:
            raise ValidationError({"day_of_month": f"{self.expression!r} never happens (e.g. 30 February)."})

    def as_schedule(self) -> schedules.Cron:
        return Cron(self.expression, zone_named(self.timezone))

    def next_run(self, after: dt.datetime | None = None) -> dt.datetime | None:
        """The first moment after ``after`` (default: now)."""
        return self.as_schedule().next_after(after or timezone.now())

    def describe(self) -> str:
        """In words, e.g. "at 01:34 every day, Asia/Kolkata"."""
        return words.describe_cron(self.minute, self.hour, self.day_of_month, self.month_of_year, self.day_of_week,
                                   self.timezone)


class IntervalPeriod(models.TextChoices):
    DAYS = "days", "days"
    HOURS = "hours", "hours"
    MINUTES = "minutes", "minutes"
    SECONDS = "seconds", "seconds"


class IntervalSchedule(models.Model):
    """Every so much elapsed time (not affected by daylight saving: every 1 day is every 24 hours).

    Runs on a grid: at ``start_time`` of the periodic task plus whole intervals,
    or, without a start time, at whole intervals since 1970-01-01 00:00 UTC (every
    5 minutes is at :00, :05, :10 ...).
    """

    every = models.PositiveIntegerField(validators=[MinValueValidator(1)])
    period = models.CharField(max_length=24, choices=IntervalPeriod.choices)

    class Meta:
        verbose_name = "interval"
        verbose_name_plural = "intervals"
        ordering = ("period", "every")

    def __str__(self) -> str:
        return self.describe()

    @property
    def delta(self) -> dt.timedelta:
        return dt.timedelta(**{self.period: self.every})

    @classmethod
    def from_timedelta(cls, delta: dt.timedelta) -> IntervalSchedule:
        """An unsaved schedule of ``delta`` in its largest whole unit (whole seconds only)."""
        seconds = delta.total_seconds()
        if seconds < 1 or seconds != int(seconds):
            raise ValidationError(f"An interval must be a positive whole number of seconds, not {delta}.")
        for period, size in ((IntervalPeriod.DAYS, 86400), (IntervalPeriod.HOURS, 3600),
                             (IntervalPeriod.MINUTES, 60), (IntervalPeriod.SECONDS, 1)):
            if seconds % size == 0:
                return cls(every=int(seconds) // size, period=period)
        raise AssertionError("unreachable: every whole number of seconds divides by 1")

    def as_schedule(self, anchor: dt.datetime | None = None) -> schedules.Interval:
        return schedules.Interval(self.delta, anchor or schedules.EPOCH)

    def next_run(self, after: dt.datetime | None = None, anchor: dt.datetime | None = None) -> dt.datetime:
        """The first moment after ``after`` (default: now) on the grid from ``anchor``."""
        return self.as_schedule(anchor).next_after(after or timezone.now())

    def describe(self) -> str:
        """In words, e.g. "every 5 minutes"."""
        return words.describe_interval(self.delta) if self.every and self.period else "-"


class ClockedSchedule(models.Model):
    """One moment."""

    clocked_time = models.DateTimeField(help_text="The moment to run at, once.")

    class Meta:
        verbose_name = "clocked"
        verbose_name_plural = "clocked"
        ordering = ("clocked_time",)

    def __str__(self) -> str:
        return self.describe()

    def as_schedule(self) -> schedules.Once:
        return schedules.Once(self.clocked_time)

    def next_run(self, after: dt.datetime | None = None) -> dt.datetime | None:
        """The moment, if it is after ``after`` (default: now)."""
        return self.as_schedule().next_after(after or timezone.now())

    def describe(self) -> str:
        """In words, e.g. "once, at 2026-05-01 09:00:00 UTC"."""
        if self.clocked_time is None:
            return "-"
        return f"once, at {self.clocked_time.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC"


class PeriodicTask(models.Model):
    """A task enqueued on a schedule: exactly one of ``crontab``, ``interval`` and ``clocked``."""

    name = models.CharField(max_length=200, unique=True, help_text="A unique name for this periodic task.")
    task = models.CharField(max_length=255, help_text="Dotted path of a registered task, e.g. mailer.tasks.send.")
    crontab = models.ForeignKey(CrontabSchedule, on_delete=models.CASCADE, null=True, blank=True)
    interval = models.ForeignKey(IntervalSchedule, on_delete=models.CASCADE, null=True, blank=True)
    clocked = models.ForeignKey(ClockedSchedule, on_delete=models.CASCADE, null=True, blank=True,
                                help_text="Runs once, at its moment; the task then disables itself.")
    args = models.JSONField(default=list, blank=True, help_text='Positional arguments, a JSON list: ["a", 1]')
    kwargs = models.JSONField(default=dict, blank=True, help_text='Keyword arguments, a JSON object: {"x": 1}')
    queue_name = models.CharField("queue", max_length=64, blank=True, default="",
                                  help_text="Empty: the task's own queue.")
    priority = models.SmallIntegerField(null=True, blank=True,
                                        validators=[MinValueValidator(MIN_PRIORITY), MaxValueValidator(MAX_PRIORITY)],
                                        help_text=f"{MIN_PRIORITY}..{MAX_PRIORITY}; empty: the task's own priority.")
    enabled = models.BooleanField(default=True)
    one_off = models.BooleanField(default=False, help_text="Run once, then disable.")
    start_time = models.DateTimeField(null=True, blank=True, help_text="Not before this moment.")
    expires = models.DateTimeField(null=True, blank=True,
                                   help_text="Not after this moment; a tick not started by then does not run.")
    #: The scheduled moment of the last tick enqueued (not the moment it ran).
    last_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    total_run_count = models.PositiveIntegerField(default=0, editable=False)
    description = models.TextField(blank=True)
    #: Saves bump it; the schedule counts from the later of this and ``last_run_at``, so
    #: enabling or editing a task does not catch up the ticks from before.
    date_changed = models.DateTimeField(auto_now=True)
    #: Declared in ``OPTIONS["BEAT_SCHEDULE"]``: beat rewrites it at start, disables it when removed there.
    from_settings = models.BooleanField(default=False, editable=False)

    class Meta:
        verbose_name = "periodic task"
        verbose_name_plural = "periodic tasks"
        ordering = ("name",)
        constraints = [
            models.CheckConstraint(
                condition=(models.Q(crontab__isnull=False, interval__isnull=True, clocked__isnull=True)
                           | models.Q(crontab__isnull=True, interval__isnull=False, clocked__isnull=True)
                           | models.Q(crontab__isnull=True, interval__isnull=True, clocked__isnull=False)),
                name="djtasks_periodictask_one_schedule",
                violation_error_message="Choose exactly one schedule: a crontab, an interval or a clocked time.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.schedule_model}"

    # -- validation --------------------------------------------------------

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.task:
            try:
                registry.lookup(self.task)
            except UnknownTaskError as exc:
                errors["task"] = f"{exc}. Registered tasks: {', '.join(registry.registered_names()) or 'none'}."
        if not isinstance(self.args, list):
            errors["args"] = "Positional arguments must be a JSON list, e.g. [1, 2]."
        if not isinstance(self.kwargs, dict):
            errors["kwargs"] = 'Keyword arguments must be a JSON object, e.g. {"x": 1}.'
        if self.start_time and self.expires and self.expires <= self.start_time:
            errors["expires"] = "The task would expire before it starts."
        if errors:
            raise ValidationError(errors)

    # -- the schedule ------------------------------------------------------

    @property
    def schedule_model(self) -> CrontabSchedule | IntervalSchedule | ClockedSchedule | None:
        return self.crontab or self.interval or self.clocked

    @property
    def schedule(self) -> schedules.Schedule:
        """The moments of this task's schedule (an interval's grid starts at ``start_time``)."""
        if self.interval_id is not None:
            return self.interval.as_schedule(self.start_time)
        if self.crontab_id is not None:
            return self.crontab.as_schedule()
        if self.clocked_id is not None:
            return self.clocked.as_schedule()
        raise ValidationError(f"Periodic task {self.name!r} has no schedule.")

    def counts_from(self) -> dt.datetime:
        """The exclusive lower bound of the ticks still to fire.

        The last tick enqueued, the last change (a clocked moment excepted: a
        task made for a moment just past still runs), and ``start_time``.
        """
        bounds = [BEGINNING, self.last_run_at]
        if self.clocked_id is None:
            bounds.append(self.date_changed)
        if self.start_time is not None:
            bounds.append(self.start_time - JUST_BEFORE)
        return max(bound for bound in bounds if bound is not None)

    def due_tick(self, now: dt.datetime, catch_up: schedules.CatchUp = schedules.CatchUp.ONCE,
                 grace: dt.timedelta = dt.timedelta(minutes=1)) -> dt.datetime | None:
        """The tick to enqueue at ``now``, or ``None`` (see :func:`schedules.due_tick`)."""
        if not self.enabled or (self.expires is not None and now >= self.expires):
            return None
        return schedules.due_tick(self.schedule, after=self.counts_from(), now=now, catch_up=catch_up, grace=grace)

    def next_run_at(self, now: dt.datetime | None = None) -> dt.datetime | None:
        """When the next tick fires: a moment already due (beat enqueues it at once), a future one, or ``None``."""
        now = now or timezone.now()
        due = self.due_tick(now)
        if due is not None or not self.enabled:
            return due
        upcoming = self.schedule.next_after(max(self.counts_from(), now))
        if upcoming is None or (self.expires is not None and upcoming >= self.expires):
            return None
        return upcoming

    def describe_schedule(self) -> str:
        model = self.schedule_model
        return model.describe() if model is not None else "-"


class PeriodicTaskTick(models.Model):
    """One tick enqueued: which periodic task, for which scheduled moment, as which task result.

    The UNIQUE (periodic task, scheduled time) is the de-duplication key: a
    beat inserts this row before it enqueues, in the same transaction, so a
    second beat -- even a second leader during a partition -- fails to insert
    and enqueues nothing.
    """

    periodic_task = models.ForeignKey(PeriodicTask, on_delete=models.CASCADE, related_name="ticks")
    scheduled_at = models.DateTimeField()
    enqueued_at = models.DateTimeField()
    #: The id of the task result (``TaskRecord.id``) this tick enqueued.
    task_id = models.UUIDField(null=True, blank=True, db_index=True)

    class Meta:
        verbose_name = "periodic task tick"
        verbose_name_plural = "periodic task ticks"
        constraints = [
            models.UniqueConstraint(fields=["periodic_task", "scheduled_at"], name="djtasks_tick_once"),
        ]

    def __str__(self) -> str:
        return f"{self.periodic_task_id} @ {self.scheduled_at.isoformat()}"


class BeatLease(models.Model):
    """The leader of the beats on this database: the one whose lease has not run out."""

    name = models.CharField(max_length=64, primary_key=True)
    owner = models.CharField(max_length=255)
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField()

    class Meta:
        verbose_name = "beat lease"
        verbose_name_plural = "beat leases"

    def __str__(self) -> str:
        return f"{self.name}: {self.owner} until {self.expires_at.isoformat()}"
