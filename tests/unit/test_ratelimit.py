"""Rate limits without services: parsing, the bucket arithmetic, the database limiter on SQLite."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from djtasks.brokers.redis import RedisBroker
from djtasks.models import RateLimitBucket
from djtasks.ratelimit import (
    DatabaseRateLimiter,
    Rate,
    RedisRateLimiter,
    limiter_for,
    parse_rate,
    take_token,
)
from djtasks.ratelimit.base import ceil_to_microsecond, storage_key
from djtasks.ratelimit.redis import epoch_ms

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


# -- parse_rate ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "tokens_per_second", "burst"), [
    ("10/s", 10.0, 10),
    ("100/m", 100 / 60, 1),
    ("1000/h", 1000 / 3600, 1),
    ("5/d", 5 / 86400, 1),
    ("10/2s", 5.0, 5),
    ("120/2m", 1.0, 1),
    ("0.5/s", 0.5, 1),
    ("2.5/s", 2.5, 2),
    ("600/M", 10.0, 10),
    (" 30 / minute ", 0.5, 1),
    ("7200/hours", 2.0, 2),
])
def test_parse_rate_reads_count_period_and_unit(text, tokens_per_second, burst):
    rate = parse_rate(text)
    assert (rate.tokens_per_second, rate.burst) == (pytest.approx(tokens_per_second), burst)


def test_parse_rate_takes_an_explicit_burst():
    assert parse_rate("100/m", burst=20) == Rate(tokens_per_second=100 / 60, burst=20)


@pytest.mark.parametrize(("text", "reason"), [
    ("100", "expected '<count>/<unit>'"),
    ("", "expected '<count>/<unit>'"),
    ("ten/s", "expected '<count>/<unit>'"),
    ("-1/s", "expected '<count>/<unit>'"),
    ("10/s/s", "expected '<count>/<unit>'"),
    ("10/w", "unknown unit 'w'"),
    ("10/fortnight", "unknown unit 'fortnight'"),
    ("0/s", "greater than zero"),
    ("10/0m", "greater than zero"),
])
def test_parse_rate_refuses_a_bad_string_and_names_it(text, reason):
    with pytest.raises(ValueError, match="Invalid rate limit") as raised:
        parse_rate(text)
    assert repr(text) in str(raised.value)
    assert reason in str(raised.value)


def test_parse_rate_refuses_what_is_not_a_string():
    with pytest.raises(ValueError, match="Invalid rate limit 100"):
        parse_rate(100)  # type: ignore[arg-type]


def test_parse_rate_refuses_a_burst_below_one():
    with pytest.raises(ValueError, match="'10/s'.*burst"):
        parse_rate("10/s", burst=0)


def test_a_rate_is_a_frozen_value():
    rate = parse_rate("10/s")
    with pytest.raises(AttributeError):
        rate.burst = 3  # type: ignore[misc]
    assert rate.fill_seconds == 1.0


# -- the bucket arithmetic -----------------------------------------------------


def test_take_token_takes_one_when_the_bucket_holds_one():
    assert take_token(3.0, 0.0, parse_rate("10/s")) == (2.0, 0.0)


def test_take_token_refuses_and_says_when_a_token_will_be_there():
    taken = take_token(0.25, 0.0, parse_rate("10/s"))
    assert taken == (0.25, 0.075)


def test_take_token_refills_with_elapsed_time():
    rate = parse_rate("10/s")
    assert take_token(0.0, 0.1, rate) == (0.0, 0.0)
    assert take_token(0.0, 0.05, rate) == (pytest.approx(0.5), 0.05)


def test_take_token_caps_the_refill_at_the_burst():
    assert take_token(0.0, 3600.0, parse_rate("10/s")) == (9.0, 0.0)


def test_take_token_refills_nothing_when_time_runs_backwards():
    assert take_token(0.5, -10.0, parse_rate("10/s")) == (0.5, 0.05)


def test_take_token_counts_a_refill_short_by_float_noise_as_a_whole_token():
    rate = parse_rate("100/m")
    assert take_token(0.0, 0.6, rate).wait_seconds == 0.0  # 0.6 * 100/60 is 0.99999... in floats


def test_waits_are_rounded_up_to_a_whole_microsecond_without_float_noise():
    assert ceil_to_microsecond(0.6000000000000001) == 0.6
    assert ceil_to_microsecond(1.2e-7) == 1e-6
    assert ceil_to_microsecond(0.0000101) == 0.000011


def test_long_keys_are_hashed_to_fit_the_column_and_stay_distinct():
    short = "mailer.tasks.send"
    long_a, long_b = "a" * 300, "a" * 299 + "b"
    assert storage_key(short) == short
    assert len(storage_key(long_a)) == 255
    assert storage_key(long_a) != storage_key(long_b)


def test_epoch_ms_is_exact_to_the_microsecond():
    assert epoch_ms(dt.datetime(1970, 1, 1, 0, 0, 1, 2345, tzinfo=dt.UTC)) == "1002.345"
    assert epoch_ms(dt.datetime(1970, 1, 1, 0, 0, 1, 2345)) == "1002.345"


# -- the database limiter, on SQLite --------------------------------------------

db = pytest.mark.django_db(databases=["default"])


@db
def test_a_new_bucket_is_full_then_refuses_with_the_wait():
    limiter, rate = DatabaseRateLimiter("default"), parse_rate("10/s")
    assert [limiter.acquire("k", rate, T0) for _ in range(10)] == [0.0] * 10
    assert limiter.acquire("k", rate, T0) == 0.1
    assert limiter.acquire("k", rate, at(0.04)) == 0.06
    assert limiter.acquire("k", rate, at(0.1)) == 0.0
    assert limiter.acquire("k", rate, at(0.1)) == 0.1


@db
def test_one_token_a_period_for_a_rate_below_one_a_second():
    limiter, rate = DatabaseRateLimiter("default"), parse_rate("100/m")
    assert limiter.acquire("k", rate, T0) == 0.0
    assert limiter.acquire("k", rate, T0) == 0.6
    assert limiter.acquire("k", rate, at(0.6)) == 0.0
    assert limiter.acquire("k", rate, at(0.9)) == 0.3


@db
def test_a_refusal_takes_nothing_and_writes_nothing():
    limiter, rate = DatabaseRateLimiter("default"), parse_rate("1/s")
    limiter.acquire("k", rate, T0)
    before = RateLimitBucket.objects.get(pk="k")
    assert limiter.acquire("k", rate, at(0.5)) == 0.5
    after = RateLimitBucket.objects.get(pk="k")
    assert (after.tokens, after.updated_at) == (before.tokens, before.updated_at) == (0.0, T0)


@db
def test_buckets_of_different_keys_are_independent():
    limiter, rate = DatabaseRateLimiter("default"), parse_rate("1/s")
    assert limiter.acquire("a", rate, T0) == 0.0
    assert limiter.acquire("b", rate, T0) == 0.0
    assert limiter.acquire("a", rate, T0) == 1.0


@db
def test_a_clock_behind_the_bucket_mints_no_tokens():
    limiter, rate = DatabaseRateLimiter("default"), parse_rate("1/s")
    assert limiter.acquire("k", rate, at(10)) == 0.0
    assert limiter.acquire("k", rate, at(5)) == 1.0  # another host, 5 s behind: waits as long as anyone
    assert limiter.acquire("k", rate, at(11)) == 0.0
    assert RateLimitBucket.objects.get(pk="k").updated_at == at(11)


@db
def test_over_simulated_time_the_database_limiter_grants_the_rate():
    limiter, rate = DatabaseRateLimiter("default"), parse_rate("20/s")
    granted = sum(limiter.acquire("k", rate, at(step * 0.01)) == 0.0
                  for step in range(301) for _ in range(3))
    assert granted == rate.burst + 20 * 3


@db
def test_a_key_longer_than_the_column_works():
    limiter, rate = DatabaseRateLimiter("default"), parse_rate("1/s")
    assert limiter.acquire("x" * 400, rate, T0) == 0.0
    assert limiter.acquire("x" * 400, rate, T0) == 1.0


# -- the factory ------------------------------------------------------------------


def test_limiter_for_chooses_redis_with_the_redis_broker():
    broker = RedisBroker("redis://127.0.0.1:6379/0", prefix="somewhere")
    limiter = limiter_for(SimpleNamespace(broker=broker, config=SimpleNamespace(results_database="other")))
    assert isinstance(limiter, RedisRateLimiter)
    assert limiter.prefix == "somewhere"
    assert limiter.client is broker.client
    assert limiter.bucket_key("t") == "somewhere:ratelimit:t"


def test_limiter_for_chooses_the_results_database_otherwise():
    from django.tasks import task_backends

    backend = task_backends["memory"]
    limiter = limiter_for(backend)
    assert isinstance(limiter, DatabaseRateLimiter)
    assert limiter.alias == backend.config.results_database


@db
def test_on_sqlite_in_deferred_mode_the_first_statement_takes_the_write_lock(monkeypatch):
    # A deferred transaction that reads, then writes, fails with "database is locked"
    # when another writer went in between; writing first makes it wait for the lock.
    limiter, rate = DatabaseRateLimiter("default"), parse_rate("1/s")
    limiter.acquire("k", rate, T0)
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {})
    with CaptureQueriesContext(connection) as queries:
        assert limiter.acquire("k", rate, at(1)) == 0.0
    assert _statements(queries)[:2] == ["UPDATE", "SELECT"]
    monkeypatch.setitem(connection.settings_dict, "OPTIONS", {"transaction_mode": "IMMEDIATE"})
    with CaptureQueriesContext(connection) as queries:
        assert limiter.acquire("k", rate, at(2)) == 0.0
    assert _statements(queries)[:1] == ["SELECT"]


def _statements(queries: CaptureQueriesContext) -> list[str]:
    """The first word of each statement but savepoints (the test runs inside a transaction)."""
    words = (q["sql"].split()[0] for q in queries.captured_queries)
    return [word for word in words if word not in {"SAVEPOINT", "RELEASE"}]
