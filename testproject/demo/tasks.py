"""Sample tasks of the demo project (also used by the end-to-end tests)."""

import os
import time

from django.core.mail import send_mail
from django.tasks import task

from djtasks import djtask

from .models import Attempt, TaskRun


@djtask
def add(x, y):
    """Fast: return the sum."""
    return x + y


@djtask(takes_context=True)
def slow_count(context, steps=10, step_seconds=0.2):
    """Slow: count to ``steps``, reporting progress."""
    for done in range(1, steps + 1):
        time.sleep(step_seconds)
        context.set_progress(done, steps, f"step {done} of {steps}")
    return steps


class FlakyError(ConnectionError):
    pass


@djtask(max_retries=3, retry_on=(FlakyError,), retry_delay=0.2, retry_backoff=True, takes_context=True)
def flaky(context, key, failures=2):
    """Fail ``failures`` times, then succeed: shows retries with backoff."""
    Attempt.objects.create(key=key)
    if context.attempt <= failures:
        raise FlakyError(f"attempt {context.attempt} of {key!r} fails on purpose")
    return f"{key} succeeded on attempt {context.attempt}"


@djtask(queue_name="mail")
def send_welcome_mail(address):
    """Send mail through Django's mail API."""
    return send_mail("Welcome", "Thanks for trying djtasks.", None, [address])


@task()
def plain_django_task(name):
    """Written against plain ``django.tasks``; runs on djtasks unchanged."""
    return f"hello {name}"


@djtask
def record_run(key):
    """Insert one row per call; a unique key makes a second run of the same call fail loudly."""
    TaskRun.objects.create(key=key, worker_pid=os.getpid())
    return key


@djtask
def sleep_then_record(key, seconds):
    """A long task: sleep, then record that it ran to completion."""
    time.sleep(seconds)
    TaskRun.objects.create(key=key, worker_pid=os.getpid())
    return key


@djtask
def always_fails(message):
    raise ValueError(message)


@djtask
def report_pid_then_sleep(key, seconds):
    """Record which process started, then sleep: a task to kill in the middle."""
    TaskRun.objects.create(key=f"{key}-started", worker_pid=os.getpid())
    time.sleep(seconds)
    TaskRun.objects.create(key=key, worker_pid=os.getpid())
    return key


@djtask(time_limit=1)
def sleeps_past_its_time_limit(key, seconds):
    time.sleep(seconds)
    TaskRun.objects.create(key=key, worker_pid=os.getpid())


@djtask(soft_time_limit=0.5, time_limit=10)
def cleans_up_after_soft_limit(key):
    from djtasks.exceptions import SoftTimeLimitExceeded

    try:
        time.sleep(5)
    except SoftTimeLimitExceeded:
        TaskRun.objects.create(key=f"{key}-cleaned-up", worker_pid=os.getpid())
        return "cleaned up"
    return "not interrupted"


_HELD = []


@djtask
def allocate(key, mebibytes):
    """Keep ``mebibytes`` of memory alive in this process, then record which process it was."""
    _HELD.append(bytearray(mebibytes * 1024 * 1024))
    TaskRun.objects.create(key=key, worker_pid=os.getpid())


@djtask(rate_limit="10/s")
def rate_limited(key):
    """At most ten a second across every worker."""
    TaskRun.objects.create(key=key, worker_pid=os.getpid())


@djtask
def wait_on_io(seconds):
    """Wait ``seconds`` on I/O (``time.sleep``; a cooperative wait under gevent); return [start, end] times."""
    started = time.time()
    time.sleep(seconds)
    return [started, time.time()]


@djtask
def wait_on_postgres(seconds):
    """Wait ``seconds`` inside PostgreSQL (``pg_sleep``), through Django's connection; return [start, end]."""
    from django.db import connection

    started = time.time()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_sleep(%s)", [seconds])
    return [started, time.time()]


@djtask
async def await_io(seconds):
    """An ``async def`` task: await ``seconds`` of sleep on the worker's event loop; return [start, end]."""
    import asyncio

    started = time.time()
    await asyncio.sleep(seconds)
    return [started, time.time()]


@djtask(soft_time_limit=0.5, time_limit=10)
async def async_cleans_up_after_soft_limit(key):
    """The soft limit cancels the coroutine; it cleans up (with the async ORM) and returns."""
    import asyncio

    try:
        await asyncio.sleep(5)
    except asyncio.CancelledError:
        await TaskRun.objects.acreate(key=f"{key}-cleaned-up", worker_pid=os.getpid())
        return "cleaned up"
    return "not interrupted"


@djtask(takes_context=True)
async def async_progress_then_wait(context, seconds):
    """Report progress from a coroutine, then wait: the progress is visible while it waits."""
    import asyncio

    context.set_progress(1, 2, "halfway")
    await asyncio.sleep(seconds)
    return "done"
