"""Rate limits on real servers: the same contract for the database limiter (PostgreSQL,
MySQL) and the Redis limiter, including many threads racing for one bucket."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connections

from djtasks.brokers.redisclient import get_client
from djtasks.ratelimit import (
    DatabaseRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    parse_rate,
)
from djtasks.ratelimit.redis import EXPIRY_MARGIN_SECONDS
from tests.conftest import REDIS_URL

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
THREADS = 8


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def _database(alias: str, marker: pytest.MarkDecorator) -> Any:
    return pytest.param(alias, id=alias,
                        marks=[marker, pytest.mark.django_db(databases=[alias], transaction=True)])


@pytest.fixture(params=[_database("postgresql", pytest.mark.postgres), _database("mysql", pytest.mark.mysql),
                        pytest.param("redis", id="redis", marks=pytest.mark.redis)])
def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "redis":
        client = get_client(REDIS_URL, timeout_seconds=5, options={})
        return RedisRateLimiter(client, prefix=request.getfixturevalue("redis_prefix"))
    return DatabaseRateLimiter(request.param)


def race(threads: int, work: Callable[[int], list[float]]) -> list[float]:
    """Run ``work(thread index)`` in ``threads`` threads released together; all their waits, in one list."""
    start = threading.Barrier(threads)
    results: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            start.wait(timeout=30)
            results[index] = work(index)
        except BaseException as error:  # noqa: BLE001 - reported below, in the test's thread
            errors.append(error)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in pool)
    assert not errors, errors
    return [wait for waits in results for wait in waits]


def test_a_new_bucket_is_full_then_refuses_with_the_wait(limiter: RateLimiter) -> None:
    rate = parse_rate("10/s")
    assert [limiter.acquire("k", rate, T0) for _ in range(10)] == [0.0] * 10
    assert limiter.acquire("k", rate, T0) == 0.1
    assert limiter.acquire("k", rate, at(0.04)) == 0.06
    assert limiter.acquire("k", rate, at(0.1)) == 0.0
    assert limiter.acquire("k", rate, at(0.1)) == 0.1


def test_a_slow_rate_lets_one_through_a_period(limiter: RateLimiter) -> None:
    rate = parse_rate("100/m")
    assert limiter.acquire("k", rate, T0) == 0.0
    assert limiter.acquire("k", rate, T0) == 0.6
    assert limiter.acquire("k", rate, at(0.6)) == 0.0
    assert limiter.acquire("k", rate, at(0.9)) == 0.3
    assert limiter.acquire("k", rate, at(3600)) == 0.0  # refilled to its burst of 1, no more
    assert limiter.acquire("k", rate, at(3600)) == 0.6


def test_waiting_the_returned_time_gets_the_token(limiter: RateLimiter) -> None:
    rate, now = parse_rate("7/3s"), T0
    for _ in range(rate.burst):
        assert limiter.acquire("k", rate, now) == 0.0
    for _ in range(20):
        wait_seconds = limiter.acquire("k", rate, now)
        assert wait_seconds > 0
        now += dt.timedelta(seconds=wait_seconds)
        assert limiter.acquire("k", rate, now) == 0.0


def test_keys_have_buckets_of_their_own(limiter: RateLimiter) -> None:
    rate = parse_rate("1/s")
    assert limiter.acquire("tasks.a", rate, T0) == 0.0
    assert limiter.acquire("tasks.b", rate, T0) == 0.0
    assert limiter.acquire("tasks.a", rate, T0) == 1.0


def test_a_clock_behind_the_bucket_mints_no_tokens(limiter: RateLimiter) -> None:
    rate = parse_rate("1/s")
    assert limiter.acquire("k", rate, at(10)) == 0.0
    assert limiter.acquire("k", rate, at(5)) == 1.0
    assert limiter.acquire("k", rate, at(11)) == 0.0


def test_racing_threads_at_one_moment_take_exactly_the_burst(limiter: RateLimiter) -> None:
    rate, per_thread = parse_rate("20/s"), 25
    waits = race(THREADS, lambda _: [limiter.acquire("k", rate, T0) for _ in range(per_thread)])
    assert waits.count(0.0) == rate.burst
    assert set(waits) == {0.0, 0.05}
    assert len(waits) == THREADS * per_thread


def test_racing_threads_over_simulated_time_get_the_rate(limiter: RateLimiter) -> None:
    # Threads walk the same 2 s of simulated time, 20 ms a step, at their own pace: however
    # they interleave, the bucket moves forward only, so it hands out its burst plus 50/s.
    rate, steps, calls_per_step = parse_rate("50/s"), 101, 2

    def walk(_: int) -> list[float]:
        return [limiter.acquire("k", rate, at(step * 0.02)) for step in range(steps) for _ in range(calls_per_step)]

    waits = race(THREADS, walk)
    assert waits.count(0.0) == rate.burst + 50 * 2


@pytest.mark.redis
def test_an_idle_redis_bucket_expires_once_it_would_be_full_anyway(redis_prefix: str) -> None:
    client = get_client(REDIS_URL, timeout_seconds=5, options={})
    limiter, rate = RedisRateLimiter(client, prefix=redis_prefix), parse_rate("10/m")
    limiter.acquire("k", rate, T0)
    ttl_ms = client.pttl(limiter.bucket_key("k"))
    assert (EXPIRY_MARGIN_SECONDS + 5) * 1000 < ttl_ms <= (EXPIRY_MARGIN_SECONDS + 6) * 1000
    client.delete(limiter.bucket_key("k"))
    assert limiter.acquire("k", rate, T0) == 0.0  # a dropped bucket is a full one


@pytest.mark.redis
def test_the_redis_limiter_loads_its_script_when_redis_forgot_it(redis_prefix: str) -> None:
    client = get_client(REDIS_URL, timeout_seconds=5, options={})

    class ForgetfulClient:
        """Refuses the first EVALSHA as a restarted Redis would; no SCRIPT FLUSH of a shared server."""

        def __init__(self) -> None:
            self.refused = False

        def evalsha(self, *args: Any) -> Any:
            if not self.refused:
                self.refused = True
                from redis.exceptions import NoScriptError
                raise NoScriptError("NOSCRIPT No matching script.")
            return client.evalsha(*args)

        def script_load(self, text: str) -> str:
            return client.script_load(text)

    forgetful = ForgetfulClient()
    assert RedisRateLimiter(forgetful, prefix=redis_prefix).acquire("k", parse_rate("1/s"), T0) == 0.0
    assert forgetful.refused
