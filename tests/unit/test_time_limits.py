"""Time limits in task threads (the threads pool): one watchdog thread for every task."""

import threading
import time

import pytest

from djtasks.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded
from djtasks.worker import timelimits
from djtasks.worker.timelimits import time_limits


def in_a_thread(function):  # noqa: ANN001, ANN201
    """Run ``function`` in a new thread (not the main one, as in the threads pool); return its result or raise."""
    outcome = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as error:  # noqa: BLE001 - handed back to the test
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def busy_until(deadline: float) -> None:
    while time.monotonic() < deadline:
        pass


@pytest.mark.parametrize(("soft", "hard", "error"), [(0.05, 5, SoftTimeLimitExceeded), (None, 0.05, TimeLimitExceeded)])
def test_a_thread_over_its_limit_gets_the_error(soft, hard, error):  # noqa: ANN001
    def overrun() -> None:
        with time_limits(soft, hard):
            busy_until(time.monotonic() + 10)

    with pytest.raises(error):
        in_a_thread(overrun)


def test_tasks_in_many_threads_each_get_their_own_limit():
    errors = []

    def overrun(seconds: float) -> None:
        try:
            with time_limits(seconds, None):
                busy_until(time.monotonic() + 10)
        except SoftTimeLimitExceeded:
            errors.append(seconds)

    threads = [threading.Thread(target=overrun, args=(seconds,)) for seconds in (0.05, 0.1, 0.15, 0.2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(errors) == [0.05, 0.1, 0.15, 0.2]


def test_a_limit_never_fires_after_its_task_left_it():
    def many_short_tasks_then_more_work() -> int:
        for _ in range(200):
            with time_limits(0.2, 0.3):
                pass
        # Well past every limit armed above: none of them may reach this code.
        busy_until(time.monotonic() + 0.6)
        return 200

    assert in_a_thread(many_short_tasks_then_more_work) == 200


def test_long_limits_of_finished_tasks_do_not_pile_up():
    def many_tasks_with_hour_long_limits() -> None:
        for _ in range(10 * timelimits.COMPACT_AFTER):
            with time_limits(3600, 7200):
                pass

    in_a_thread(many_tasks_with_hour_long_limits)
    assert len(timelimits._watchdog()._heap) <= 4 * timelimits.COMPACT_AFTER
