"""The broker contract: one set of tests that every broker must pass.

Each test module that runs it subclasses :class:`BrokerContract` and gives a
``broker`` fixture. Times are passed explicitly (``now``), so nothing waits.
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid

import pytest

from djtasks import messages
from djtasks.brokers import Broker, OutgoingMessage

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
LEASE = 30.0


def message(queue: str = "default", priority: int = 0, at: dt.datetime = T0, task: str = "tests.taskapp.tasks.add",
            args: list | None = None) -> OutgoingMessage:
    envelope = messages.Envelope(id=str(uuid.uuid4()), task=task, backend="default", queue=queue, priority=priority,
                                 args=args if args is not None else [1, 2], eta=at)
    return OutgoingMessage(id=envelope.id, queue=queue, priority=priority, enqueued_at=T0, available_at=at,
                           body=messages.encode(envelope), envelope=envelope)


def later(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def fetch(broker: Broker, limit: int = 10, *, queues=None, now=T0, worker="w1", lease=LEASE):  # noqa: ANN001, ANN201
    return broker.fetch(queues, limit, worker_id=worker, lease_seconds=lease, now=now)


class BrokerContract:
    """Behaviour every broker has, whatever stores the messages."""

    #: Within a priority: True orders by due time; False by arrival (a stream is FIFO,
    #: and a message whose due time has passed counts as arriving when enqueued).
    orders_by_due_time = True

    def test_a_message_comes_back_whole(self, broker: Broker) -> None:
        sent = message(args=["é", 1.5, {"k": [None]}])
        broker.enqueue([sent])
        [delivery] = fetch(broker)
        assert delivery.id == sent.id
        assert delivery.queue == "default"
        assert messages.decode(delivery.body) == messages.decode(sent.body)
        assert delivery.deliveries == 1

    def test_higher_priority_first_then_oldest_due(self, broker: Broker) -> None:
        low_old = message(priority=0, at=later(-20))
        high_new = message(priority=10, at=later(-1))
        high_old = message(priority=10, at=later(-5))
        low_new = message(priority=0, at=later(-2))
        broker.enqueue([low_old, high_new, high_old, low_new])
        order = [d.id for d in fetch(broker, 10)]
        if self.orders_by_due_time:
            assert order == [high_old.id, high_new.id, low_old.id, low_new.id]
        else:
            assert order == [high_new.id, high_old.id, low_old.id, low_new.id]

    def test_fetch_takes_at_most_limit(self, broker: Broker) -> None:
        broker.enqueue([message() for _ in range(5)])
        assert len(fetch(broker, 3)) == 3
        assert len(fetch(broker, 3)) == 2
        assert fetch(broker, 3) == []

    def test_a_scheduled_message_is_not_delivered_early(self, broker: Broker) -> None:
        scheduled = message(at=later(60))
        broker.enqueue([scheduled])
        assert fetch(broker, now=later(59.999)) == []
        assert [d.id for d in fetch(broker, now=later(60))] == [scheduled.id]

    def test_only_the_asked_queues_are_served(self, broker: Broker) -> None:
        mail, default = message(queue="mail"), message(queue="default")
        broker.enqueue([mail, default])
        assert [d.id for d in fetch(broker, queues=["mail"])] == [mail.id]
        assert [d.id for d in fetch(broker, queues=["default", "other"])] == [default.id]

    def test_a_leased_message_is_not_delivered_twice(self, broker: Broker) -> None:
        broker.enqueue([message()])
        assert len(fetch(broker, worker="w1")) == 1
        assert fetch(broker, worker="w2", now=later(LEASE - 1)) == []

    def test_an_acked_message_is_gone(self, broker: Broker) -> None:
        broker.enqueue([message()])
        [delivery] = fetch(broker)
        broker.ack([delivery])
        assert broker.recover(later(LEASE * 10)) == 0
        assert fetch(broker, now=later(LEASE * 10)) == []

    def test_an_expired_lease_is_recovered_and_delivered_again(self, broker: Broker) -> None:
        sent = message()
        broker.enqueue([sent])
        fetch(broker, worker="dead")
        assert broker.recover(later(LEASE - 1)) == 0
        assert broker.recover(later(LEASE + 1)) == 1
        [again] = fetch(broker, worker="w2", now=later(LEASE + 1))
        assert again.id == sent.id
        assert again.deliveries == 2

    def test_extend_keeps_a_healthy_lease_alive(self, broker: Broker) -> None:
        broker.enqueue([message()])
        [delivery] = fetch(broker, worker="w1")
        broker.extend([delivery], worker_id="w1", lease_seconds=LEASE, now=later(LEASE - 1))
        assert broker.recover(later(LEASE + 1)) == 0
        assert broker.recover(later(2 * LEASE)) == 1

    def test_extend_by_another_worker_does_nothing(self, broker: Broker) -> None:
        broker.enqueue([message()])
        [delivery] = fetch(broker, worker="w1")
        broker.extend([delivery], worker_id="intruder", lease_seconds=LEASE, now=later(LEASE - 1))
        assert broker.recover(later(LEASE + 1)) == 1

    def test_nack_puts_back_with_new_body_and_due_time(self, broker: Broker) -> None:
        broker.enqueue([message()])
        [delivery] = fetch(broker)
        retry = message(args=[3, 4])
        broker.nack(delivery, body=retry.body, available_at=later(10))
        assert fetch(broker, now=later(9)) == []
        [again] = fetch(broker, now=later(10))
        assert again.id == delivery.id
        assert messages.decode(again.body).args == [3, 4]
        assert again.deliveries == 2

    def test_purge_removes_waiting_messages_of_one_queue_only(self, broker: Broker) -> None:
        waiting = [message(queue="bulk") for _ in range(3)]
        other = message(queue="default")
        broker.enqueue([*waiting, other])
        [leased] = fetch(broker, 1, queues=["bulk"])
        purged = broker.purge("bulk")
        assert sorted(purged) == sorted(m.id for m in waiting if m.id != leased.id)
        assert fetch(broker, queues=["bulk"]) == []
        assert [d.id for d in fetch(broker)] == [other.id]

    def test_depths_count_ready_scheduled_and_reserved(self, broker: Broker) -> None:
        broker.enqueue([message(queue="q1"), message(queue="q1"), message(queue="q1", at=later(60)),
                        message(queue="q2")])
        fetch(broker, 1, queues=["q1"])
        depths = {d.queue: (d.ready, d.scheduled, d.reserved) for d in broker.depths(T0)}
        assert depths["q1"] == (1, 1, 1)
        assert depths["q2"] == (1, 0, 0)

    def test_enqueue_many_is_all_or_nothing_visible(self, broker: Broker) -> None:
        batch = [message() for _ in range(250)]
        broker.enqueue(batch)
        assert len(fetch(broker, 1000)) == 250


    def test_a_released_message_is_delivered_again_as_if_never_delivered(self, broker: Broker) -> None:
        sent = message()
        broker.enqueue([sent])
        [delivery] = fetch(broker, worker="stopping")
        broker.release([delivery])
        [again] = fetch(broker, worker="w2")
        assert again.id == sent.id
        assert again.deliveries == 1

    def test_a_late_or_repeated_nack_never_queues_a_message_twice(self, broker: Broker) -> None:
        broker.enqueue([message()])
        [delivery] = fetch(broker, worker="slow")
        assert broker.recover(later(LEASE + 1)) == 1  # its lease ran out: queued again already
        broker.nack(delivery, body=delivery.body)  # the slow worker's retry comes late...
        broker.nack(delivery, body=delivery.body)  # ...and is sent twice (a retried command)
        broker.release([delivery])
        assert len(fetch(broker, 10, worker="w2", now=later(LEASE + 2))) == 1


class ConcurrentBrokerContract:
    """Concurrent consumers never receive the same message (run with real connections)."""

    consumers = 4
    messages_count = 200

    def test_concurrent_fetches_deliver_each_message_once(self, broker: Broker) -> None:
        broker.enqueue([message() for _ in range(self.messages_count)])
        seen: list[str] = []
        errors: list[BaseException] = []
        lock = threading.Lock()
        barrier = threading.Barrier(self.consumers)

        def consume(worker: str) -> None:
            from django.db import connections

            try:
                barrier.wait()
                while batch := fetch(broker, 7, worker=worker):
                    with lock:
                        seen.extend(d.id for d in batch)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=consume, args=(f"w{n}",)) for n in range(self.consumers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not errors, errors
        assert len(seen) == self.messages_count
        assert len(set(seen)) == self.messages_count


@pytest.fixture
def memory_broker() -> Broker:
    from djtasks.brokers.memory import MemoryBroker

    name = f"contract-{uuid.uuid4().hex}"
    yield MemoryBroker(name)
    MemoryBroker.reset(name)
