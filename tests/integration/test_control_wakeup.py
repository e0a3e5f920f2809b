"""Control signals through real brokers: Redis pub/sub (plain, Cluster), PostgreSQL LISTEN/NOTIFY.

A subscriber sets its event on each signal of its kinds, and also when its
subscription comes up (again): the owner then reads what it may have missed.
A lost subscription comes back with backoff, its outage logged once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

import pytest
from django.db import connections

from djtasks.brokers.listener import Listener
from djtasks.brokers.redis import RedisBroker
from djtasks.control.wakeup import (
    COMMAND,
    REPLY,
    REVOCATION,
    WORKER_KINDS,
    ControlChannel,
    PostgresControlChannel,
    RedisControlChannel,
)
from tests.conftest import REDIS_URL
from tests.e2e.helpers import wait_until

from .redis_servers import RedisServers, redis_servers  # noqa: F401 - a fixture used by name

#: Seconds a signal, a subscription or a reconnection may take.
DEADLINE_SECONDS = 15


class Subscribed:
    """A started subscriber and the event it sets."""

    def __init__(self, subscriber: Listener) -> None:
        self.subscriber = subscriber
        self.event = threading.Event()

    def wait_connected(self) -> None:
        """Wait until the subscription is in effect and has said so; then clear the event."""
        wait_until(lambda: self.subscriber.connected and self.event.is_set(), timeout=DEADLINE_SECONDS,
                   what=f"{self.subscriber.description} to take effect")
        self.event.clear()

    def assert_hears(self, channel: ControlChannel, kind: str) -> None:
        """``channel.notify(kind)`` sets the event."""
        self.event.clear()
        channel.notify(kind)
        assert self.event.wait(DEADLINE_SECONDS), f"no {kind} signal through {channel.description}"


#: ``subscribe(channel, kinds)``: a started subscriber, connected.
Subscribe = Callable[[ControlChannel, frozenset[str]], Subscribed]


@pytest.fixture
def subscribe() -> Iterator[Subscribe]:
    """``subscribe(channel, kinds)`` starts a subscriber, stopped when the test ends."""
    started: list[Subscribed] = []

    def start(channel: ControlChannel, kinds: frozenset[str]) -> Subscribed:
        subscribed = Subscribed(channel.subscriber(kinds))
        subscribed.subscriber.start(subscribed.event)
        started.append(subscribed)
        subscribed.wait_connected()
        return subscribed

    yield start
    for subscribed in started:
        subscribed.subscriber.stop()


def outage_lines(caplog: pytest.LogCaptureFixture, subscriber: Listener) -> tuple[int, int]:
    """How many times ``subscriber`` logged the loss of its subscription, and its return."""
    messages = [r.getMessage() for r in caplog.records if r.getMessage().startswith(subscriber.description)]
    return (sum(" lost (" in m for m in messages), sum(" works again after " in m for m in messages))


@pytest.mark.redis
def test_a_redis_subscriber_hears_commands_and_revocations(redis_prefix: str, subscribe: Subscribe) -> None:
    channel = RedisControlChannel(RedisBroker(REDIS_URL, prefix=redis_prefix))
    worker = subscribe(channel, WORKER_KINDS)
    command = subscribe(channel, frozenset({REPLY}))
    worker.assert_hears(channel, COMMAND)
    worker.assert_hears(channel, REVOCATION)
    command.assert_hears(channel, REPLY)


@pytest.mark.redis
def test_a_redis_subscription_comes_back_after_a_restart_with_its_outage_logged_once(
        redis_servers: RedisServers, subscribe: Subscribe,  # noqa: F811
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="djtasks")
    server = redis_servers.server("restarted")
    channel = RedisControlChannel(RedisBroker(server.url, prefix="restarted", timeout_seconds=1))
    worker = subscribe(channel, WORKER_KINDS)
    server.kill()
    # Lost: the owner is told at once (it polls from now on), and several reconnections fail.
    wait_until(lambda: worker.event.is_set() and not worker.subscriber.connected, timeout=DEADLINE_SECONDS,
               what="the subscriber to notice the outage")
    wait_until(lambda: worker.subscriber.failures >= 3, timeout=DEADLINE_SECONDS, what="reconnections to fail")
    server.start()
    worker.wait_connected()
    worker.assert_hears(channel, COMMAND)
    assert outage_lines(caplog, worker.subscriber) == (1, 1)


@pytest.mark.redis
def test_signals_reach_a_subscriber_on_a_redis_cluster(
        redis_servers: RedisServers, subscribe: Subscribe) -> None:  # noqa: F811
    nodes = redis_servers.cluster()
    url = "redis+cluster://" + ",".join(f"127.0.0.1:{node.port}" for node in nodes)
    channel = RedisControlChannel(RedisBroker(url, prefix="clustered"))
    worker = subscribe(channel, WORKER_KINDS)
    command = subscribe(channel, frozenset({REPLY}))
    worker.assert_hears(channel, COMMAND)
    command.assert_hears(channel, REPLY)


@pytest.mark.postgres
@pytest.mark.django_db(databases=["postgresql"], transaction=True)
def test_a_postgres_subscription_comes_back_after_its_connection_is_killed(
        subscribe: Subscribe, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="djtasks")
    channel = PostgresControlChannel("postgresql")
    worker = subscribe(channel, WORKER_KINDS)
    command = subscribe(channel, frozenset({REPLY}))
    worker.assert_hears(channel, REVOCATION)
    command.assert_hears(channel, REPLY)
    with connections["postgresql"].cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                       "WHERE datname = current_database() AND query = 'LISTEN \"djtasks_control\"'")
    wait_until(lambda: outage_lines(caplog, worker.subscriber) == (1, 1), timeout=DEADLINE_SECONDS,
               what="the subscription to be lost and to come back")
    worker.assert_hears(channel, COMMAND)

