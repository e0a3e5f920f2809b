"""Tasks used by djtasks' unit and integration tests."""

import threading

from django.tasks import task

from djtasks import djtask

CALLS: list[tuple] = []
#: Opened by a test to let :func:`waits_for_gate` end (a worker in the test's process only).
GATE = threading.Event()


@djtask
def add(x, y):
    return x + y


@djtask
def echo(*args, **kwargs):
    """Return the arguments as received, to check they round-trip."""
    return {"args": list(args), "kwargs": kwargs}


@djtask
def types_of(*args, **kwargs):
    """Return the type names of the arguments received."""
    return [type(a).__name__ for a in args] + sorted(f"{k}:{type(v).__name__}" for k, v in kwargs.items())


@djtask
def fail(message):
    raise ValueError(message)


class Flaky(ConnectionError):
    pass


@djtask(max_retries=3, retry_on=(Flaky,), retry_delay=10, retry_backoff=True, retry_jitter=False,
        takes_context=True)
def flaky(context, failures):
    CALLS.append(("flaky", context.attempt))
    if context.attempt <= failures:
        raise Flaky(f"attempt {context.attempt}")
    return context.attempt


@djtask(max_retries=5, retry_on=(KeyError,), takes_context=True)
def wrong_error(context):
    CALLS.append(("wrong_error", context.attempt))
    raise ValueError("not retried")


@djtask(max_retries=2, takes_context=True)
def asks_retry(context, countdown):
    CALLS.append(("asks_retry", context.attempt))
    context.retry(countdown=countdown, exc=RuntimeError(f"try again after attempt {context.attempt}"))


@djtask(takes_context=True)
def reports_progress(context, steps):
    for done in range(1, steps + 1):
        context.set_progress(done, steps, f"step {done}")
    return context.task_result.progress


@djtask
def returns_unserializable():
    return object()


@djtask
def enqueues_another(x):
    return add.enqueue(x, 1).id


@djtask(priority=5, queue_name="mail")
def mail_task(address):
    return address


@task()
def plain(name):
    """A plain django.tasks task."""
    return f"hello {name}"


@djtask
async def async_add(x, y):
    return x + y


@djtask
def exits():
    import sys

    sys.exit(3)


@djtask(ignore_result=True)
def fire_and_forget(x):
    CALLS.append(("fire_and_forget", x))
    return x


@djtask
def waits_for_gate(timeout):
    return GATE.wait(timeout)


@djtask(rate_limit="1/m")
def once_a_minute(x):
    return x
