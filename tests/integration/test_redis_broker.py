"""The broker contract on the Redis broker, against a real Redis server."""

import threading
from collections.abc import Sequence

import pytest
import redis.connection
from django.tasks import task_backends
from django.test import override_settings
from django.utils import timezone

from djtasks.brokers import Delivery
from djtasks.brokers.redis import RedisBroker
from djtasks.exceptions import BrokerError
from tests.broker_contract import LEASE, T0, BrokerContract, ConcurrentBrokerContract, fetch, message
from tests.conftest import REDIS_URL
from tests.e2e.helpers import wait_until
from tests.taskapp import tasks

from .redis_servers import RedisServers, client, redis_servers  # noqa: F401 - a fixture used by name

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


def test_a_fetch_that_leaves_nothing_unread_empties_the_wake_list(broker):  # noqa: ANN001
    broker.enqueue([message() for _ in range(3)])
    wake = broker.keys("default").wake
    assert broker.client.llen(wake) == 3
    fetch(broker, 2)
    assert broker.client.llen(wake) == 3  # one message is still unread: its token must stay
    fetch(broker, 10)
    assert broker.client.llen(wake) == 0  # nothing left that an idle worker could be woken for


def test_the_wake_list_keeps_64_tokens_however_many_messages_wait(broker):  # noqa: ANN001
    wake = broker.keys("default").wake
    for _ in range(70):
        broker.enqueue([message()])
    assert broker.client.llen(wake) == 64
    broker.enqueue([message() for _ in range(100)])
    assert broker.client.llen(wake) == 64


# -- an idle worker's wait inside its fetch ---------------------------------------

class WaitingFetch:
    """A fetch that waits up to ``wait_seconds``, in a thread; started once Redis holds it blocked."""

    def __init__(self, broker: RedisBroker, queues: Sequence[str] | None, wait_seconds: float, limit: int = 10) -> None:
        self.broker = broker
        self.deliveries: list[Delivery] = []
        before = blocked_clients(broker)
        self.thread = threading.Thread(target=lambda: self.deliveries.extend(broker.fetch(
            queues, limit, worker_id="w1", lease_seconds=LEASE, now=T0, wait_seconds=wait_seconds)))
        self.thread.start()
        wait_until(lambda: blocked_clients(broker) > before, timeout=10, what="the fetch to wait in Redis")

    def result(self, *, timeout: float) -> list[Delivery]:
        self.thread.join(timeout=timeout)
        assert not self.thread.is_alive(), "the fetch is still waiting"
        return self.deliveries


def blocked_clients(broker: RedisBroker) -> int:
    if broker.cluster:
        return sum(int(node.redis_connection.info("clients")["blocked_clients"])
                   for node in broker.client.get_nodes())
    return int(broker.client.info("clients")["blocked_clients"])


@pytest.fixture
def patient_broker(redis_prefix):  # noqa: ANN001, ANN201
    """A broker whose socket timeout lets a fetch wait a minute."""
    return RedisBroker(REDIS_URL, prefix=redis_prefix, timeout_seconds=120)


def test_a_waiting_fetch_gets_a_message_enqueued_while_it_waits(patient_broker):  # noqa: ANN001
    waiting = WaitingFetch(patient_broker, ["default"], wait_seconds=60)
    sent = message()
    patient_broker.enqueue([sent])
    assert [d.id for d in waiting.result(timeout=10)] == [sent.id]
    assert patient_broker.depths(T0)[0].reserved == 1


def test_a_waiting_fetch_of_every_queue_gets_a_message_of_any(patient_broker):  # noqa: ANN001
    patient_broker.enqueue([message(queue="a")])
    assert [d.queue for d in fetch(patient_broker)] == ["a"]  # both queues are known now
    patient_broker.enqueue([message(queue="b")])
    fetch(patient_broker)
    waiting = WaitingFetch(patient_broker, None, wait_seconds=60)
    sent = message(queue="b")
    patient_broker.enqueue([sent])
    assert [d.id for d in waiting.result(timeout=10)] == [sent.id]


def test_a_waiting_fetch_of_several_queues_leases_no_more_than_its_limit_in_all(patient_broker):  # noqa: ANN001
    waiting = WaitingFetch(patient_broker, ["a", "b", "c"], wait_seconds=60, limit=3)
    sent = [message(queue=queue) for queue in ("a", "b", "c") for _ in range(2)]
    patient_broker.enqueue(sent)  # one transaction: every queue has its messages when the wait ends
    leased = waiting.result(timeout=10)
    assert len(leased) == 3
    rest = fetch(patient_broker, 10, queues=["a", "b", "c"])
    assert sorted(d.id for d in leased + rest) == sorted(m.id for m in sent)
    assert not patient_broker.client.keys(f"{patient_broker.prefix}:budget:*")


def test_a_waiting_fetch_ends_when_its_worker_is_interrupted(patient_broker):  # noqa: ANN001
    waiting = WaitingFetch(patient_broker, ["default"], wait_seconds=60)
    patient_broker.interrupt_wait(["default"], worker_id="w1")
    assert waiting.result(timeout=10) == []


def test_a_waiting_fetch_ends_when_a_delayed_message_enqueued_meanwhile_is_due(patient_broker):  # noqa: ANN001
    from tests.broker_contract import later

    waiting = WaitingFetch(patient_broker, ["default"], wait_seconds=60)
    # Due before every other delayed message: it wakes the waiting fetch, which learns when to fetch next.
    patient_broker.enqueue([message(at=later(30))])
    assert waiting.result(timeout=10) == []
    assert patient_broker._wait_before_fetch(["default"], 60, T0) == 30
    assert patient_broker._wait_before_fetch(["default"], 60, later(30)) == 0


def test_a_waiting_fetch_on_a_redis_cluster(redis_servers: RedisServers, redis_prefix) -> None:  # noqa: ANN001, F811
    nodes = redis_servers.cluster(3)
    broker = RedisBroker(f"redis+cluster://127.0.0.1:{nodes[0].port}", prefix=redis_prefix, timeout_seconds=120)
    assert broker.waits_in_fetch(["default"]) and not broker.waits_in_fetch(["a", "b"])
    assert not broker.waits_in_fetch(None)
    waiting = WaitingFetch(broker, ["default"], wait_seconds=60)
    sent = message()
    broker.enqueue([sent])
    assert [d.id for d in waiting.result(timeout=10)] == [sent.id]
    waiting = WaitingFetch(broker, ["default"], wait_seconds=60)
    broker.interrupt_wait(["default"], worker_id="w1")
    assert waiting.result(timeout=10) == []


def test_a_waiting_fetch_that_fails_after_leasing_is_answered_by_the_next_fetch(patient_broker):  # noqa: ANN001
    sent = message()
    patient_broker.enqueue([sent])
    wake = patient_broker.keys("default").wake
    patient_broker.client.delete(wake)
    patient_broker.client.set(wake, "not a list")  # the BLPOP fails; the fetch behind it still runs
    with pytest.raises(BrokerError, match="could not fetch"):
        patient_broker.fetch(["default"], 10, worker_id="w1", lease_seconds=LEASE, now=T0, wait_seconds=30)
    # Not stranded until its lease runs out: the next fetch of that worker hands it out.
    replayed = fetch(patient_broker, 10, queues=["default"], worker="w1")
    assert [(d.id, d.deliveries) for d in replayed] == [(sent.id, 1)]


@pytest.mark.django_db
def test_enqueue_many_sends_its_whole_batch_in_one_round_trip(redis_servers: RedisServers,  # noqa: F811
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    server = redis_servers.server("bulk")
    options = {"BROKER_URL": server.url, "KEY_PREFIX": "bulk"}
    with override_settings(TASKS={"default": {"BACKEND": "djtasks.backend.DjTasksBackend", "QUEUES": [],
                                              "OPTIONS": options}}):
        # The first message of a queue (or of a priority in it) creates its keys, then records the queue.
        tasks.add.enqueue(0, 0)
        tasks.add.using(queue_name="mail", priority=5).enqueue(0, 0)
        before = client(server.port).info("commandstats")
        sends: list[object] = []
        send = redis.connection.AbstractConnection.send_packed_command

        def counted_send(connection: object, packed: object, *args: object, **kwargs: object) -> None:
            sends.append(packed)
            send(connection, packed, *args, **kwargs)

        monkeypatch.setattr(redis.connection.AbstractConnection, "send_packed_command", counted_send)
        tasks.add.enqueue_many([(n, n) for n in range(1200)])  # more than one script call holds (500)
        tasks.add.using(queue_name="mail", priority=5).enqueue_many([(n, n) for n in range(10)])
        monkeypatch.undo()

        stats = client(server.port).info("commandstats")
        depths = {d.queue: d.ready for d in task_backends["default"].broker.depths(timezone.now())}
    calls = {name: stats[name]["calls"] - before.get(name, {}).get("calls", 0)
             for name in ("cmdstat_evalsha", "cmdstat_multi", "cmdstat_exec", "cmdstat_xadd", "cmdstat_sadd")}
    # One write to the socket per batch; in it, one script call per 500 messages of a queue, in one transaction.
    assert len(sends) == 2, sends
    assert calls == {"cmdstat_evalsha": 4, "cmdstat_multi": 1, "cmdstat_exec": 1, "cmdstat_xadd": 1210,
                     "cmdstat_sadd": 0}
    assert depths == {"default": 1201, "mail": 11}
