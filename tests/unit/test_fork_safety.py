"""A forked child (the prefork pool's) is not stuck on a lock another thread of its parent held at the fork."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable

import pytest

from djtasks import messages
from djtasks.brokers import Delivery, redisclient
from djtasks.worker import deliveries

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


def exit_code_of_child_forked_while_held(lock: Callable[[], threading.Lock], work: Callable[[], object]) -> int | None:
    """Fork while another thread holds ``lock()``; run ``work`` in the child; its exit code, or None if stuck."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with lock():
            held.set()
            release.wait()

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait()
    try:
        pid = os.fork()
        if pid == 0:  # the child: exit at once, whatever happens
            try:
                work()
            except BaseException:  # noqa: BLE001
                os._exit(2)
            os._exit(0)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            finished, status = os.waitpid(pid, os.WNOHANG)
            if finished:
                return os.waitstatus_to_exitcode(status)
            time.sleep(0.01)  # polling the child's exit, within the deadline
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return None
    finally:
        release.set()
        holder.join()


def test_a_child_decodes_its_message_though_the_parent_was_caching_one():
    envelope = messages.Envelope(id="a5b0c8e4-4d7e-4f57-9a0e-2b8f3f1c9d10", task="tests.taskapp.tasks.add",
                                 backend="default", queue="default", args=[1, 2])
    delivery = Delivery(id=envelope.id, queue="default", body=messages.encode(envelope), deliveries=1, receipt="r")
    assert exit_code_of_child_forked_while_held(lambda: deliveries._envelopes._lock,
                                                lambda: deliveries.take_envelope(delivery)) == 0


def test_a_child_gets_a_redis_client_though_the_parent_was_making_one():
    assert exit_code_of_child_forked_while_held(
        lambda: redisclient._lock,
        lambda: redisclient.get_client("redis://127.0.0.1:6379/15", timeout_seconds=1, options={})) == 0
