"""A rate limit holds across several real workers, and nothing over it is dropped."""

from __future__ import annotations

import datetime as dt

import pytest

from .conftest import Workers
from .helpers import E2EDatabase, call, enqueue, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]


def test_ten_a_second_across_three_workers(database: E2EDatabase, workers: Workers) -> None:
    for name in ("first", "second", "third"):
        workers.start(database, name, "--pool", "threads", "-c", "4")
    keys = [f"limited-{n}" for n in range(50)]
    enqueue(database, [call("rate_limited", key) for key in keys])
    wait_until(lambda: len(database.runs()) == 50, timeout=60, what="every limited task to run")

    times = sorted(dt.datetime.fromisoformat(str(t)) for (t,) in database.query("SELECT created_at FROM demo_taskrun"))
    first = times[0]
    # A full bucket lets 10 through at once, then 10 a second: at most 40 tokens in 3 s. A task
    # records its run a little after its token (the first one too, which anchors the window): the
    # window is 0.2 s shorter than 3 s to leave that lag two tokens.
    in_three_seconds = sum(1 for t in times if t < first + dt.timedelta(seconds=2.8))
    assert 25 <= in_three_seconds <= 40
    assert len({pid for _, pid in database.runs()}) >= 2  # the limit is shared, the work is too
