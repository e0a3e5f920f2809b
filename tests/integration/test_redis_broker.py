"""The broker contract on the Redis broker, against a real Redis server."""

import pytest

from djtasks.brokers.redis import RedisBroker
from djtasks.exceptions import BrokerError
from tests.broker_contract import T0, BrokerContract, ConcurrentBrokerContract, fetch, message
from tests.conftest import REDIS_URL

pytestmark = pytest.mark.redis


@pytest.fixture
def broker(redis_prefix):  # noqa: ANN001, ANN201
    return RedisBroker(REDIS_URL, prefix=redis_prefix)


class TestRedisBroker(BrokerContract):
    orders_by_due_time = False


class TestConcurrentFetchesOnRedis(ConcurrentBrokerContract):
    consumers = 6
    messages_count = 600


def test_acked_messages_leave_nothing_behind(broker):  # noqa: ANN001

    broker.enqueue([message(priority=p % 3) for p in range(60)])
    deliveries = fetch(broker, 100)
    broker.ack(deliveries)
    client = broker.client
    keys = broker.keys("default")
    assert sum(client.xlen(keys.stream(p)) for p in range(3)) == 0
    assert client.zcard(keys.leases) == 0
    assert broker.depths(T0) == []


def test_a_redis_url_without_a_server_fails_fast_with_a_clear_error():
    dead = RedisBroker("redis://127.0.0.1:1/0", prefix="nowhere", timeout_seconds=0.5)
    with pytest.raises(BrokerError, match="could not enqueue"):
        dead.enqueue([message()])


def test_a_fetch_whose_reply_was_lost_is_answered_by_the_next_fetch(broker, monkeypatch):  # noqa: ANN001
    import redis

    sent = [message() for _ in range(3)]
    broker.enqueue(sent)
    run = broker._run

    def run_then_lose_the_reply(name, keys, args):  # noqa: ANN001, ANN202 - Redis restarts before answering
        run(name, keys, args)
        raise redis.ConnectionError("Connection closed by server.")

    monkeypatch.setattr(broker, "_run", run_then_lose_the_reply)
    with pytest.raises(BrokerError, match="could not fetch"):
        fetch(broker, 2, worker="w1")
    monkeypatch.undo()
    # Not stranded until their lease runs out: the next fetch of that worker hands them out.
    replayed = fetch(broker, 2, worker="w1")
    assert len(replayed) == 2 and all(d.deliveries == 1 for d in replayed)
    rest = fetch(broker, 10, worker="w1")
    assert sorted(d.id for d in replayed + rest) == sorted(m.id for m in sent)
    assert fetch(broker, 10, worker="w1") == []
