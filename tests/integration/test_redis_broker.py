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
