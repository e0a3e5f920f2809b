"""The Redis broker: one stream per (queue, priority), leases in a sorted set.

Per queue, every key shares the hash tag ``{<prefix>:<queue>}``, so a queue
lives in one Redis Cluster slot and queues spread over the shards:

``…:priorities``  ZSET of the priorities the queue has streams for
``…:s:<priority>`` STREAM of ready messages, consumer group ``djtasks``
``…:delayed``     ZSET of messages not due yet (countdown, eta, retry backoff)
``…:leases``      ZSET ``<stream>|<entry>|<worker>`` -> lease deadline (ms)
``…:wake``        LIST idle workers block on (BLPOP): one push per enqueue

A fetch reads the streams highest priority first (``XREADGROUP``) and leases
what it read; an ack removes the entry (``XACK`` + ``XDEL``), so streams do
not grow. Leases are deadlines in a sorted set rather than stream idle time,
so they are renewed by heartbeat and recovered by the same rules as on the
ORM broker. Every step that touches more than one key is a Lua script
(``lua/*.lua``), hence atomic, whichever worker runs it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..exceptions import BrokerError
from .base import Broker, Delivery, OutgoingMessage, QueueDepth
from .redisclient import get_client, redis

LUA_DIR = Path(__file__).with_name("lua")
SCRIPTS = ("enqueue", "fetch", "ack", "extend", "requeue", "recover", "purge", "depth")
#: Leases recovered per queue and call.
RECOVER_BATCH = 500


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


class QueueKeys:
    """The keys of one queue; all in the same cluster slot."""

    def __init__(self, prefix: str, queue: str) -> None:
        base = f"{{{prefix}:{queue}}}"
        self.priorities = f"{base}:priorities"
        self.delayed = f"{base}:delayed"
        self.leases = f"{base}:leases"
        self.wake = f"{base}:wake"
        self.stream_prefix = f"{base}:s:"

    def stream(self, priority: int) -> str:
        return f"{self.stream_prefix}{priority}"


class RedisBroker(Broker):
    """Messages in Redis streams; see the module docstring for the layout."""

    def __init__(self, url: str, *, prefix: str = "djtasks", timeout_seconds: float = 5.0,
                 options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_seconds = timeout_seconds
        self.options = dict(options or {})
        self.queues_key = f"{prefix}:queues"

    @property
    def client(self) -> Any:
        return get_client(self.url, timeout_seconds=self.timeout_seconds, options=self.options)

    def keys(self, queue: str) -> QueueKeys:
        return QueueKeys(self.prefix, queue)

    def _script(self, name: str) -> Any:
        # Script objects are cheap and cache their SHA; they run with EVALSHA,
        # loading themselves once if Redis does not know them yet.
        return self.client.register_script((LUA_DIR / f"{name}_v1.lua").read_text())

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except redis.RedisError as exc:
            raise BrokerError(f"Redis broker ({self.url}) could not {doing}: {exc}") from exc

    # -- producing ---------------------------------------------------------

    def enqueue(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        script = self._scripts["enqueue"]
        now_ms = _ms(messages[0].enqueued_at)
        with self._errors("enqueue"):
            pipe = self.client.pipeline(transaction=False)
            for queue in {m.queue for m in messages}:
                pipe.sadd(self.queues_key, queue)
            for m in messages:
                k = self.keys(m.queue)
                script(keys=[k.priorities, k.delayed, k.wake, k.stream(m.priority)],
                       args=[m.id, m.body, m.priority, _ms(m.available_at), now_ms, 0], client=pipe)
            pipe.execute()

    # -- consuming ---------------------------------------------------------

    def fetch(self, queues: Sequence[str] | None, limit: int, *, worker_id: str, lease_seconds: float,
              now: dt.datetime) -> list[Delivery]:
        deliveries: list[Delivery] = []
        deadline_ms = _ms(now + dt.timedelta(seconds=lease_seconds))
        with self._errors("fetch messages"):
            for queue in self._queues(queues):
                if len(deliveries) >= limit:
                    break
                k = self.keys(queue)
                rows = self._scripts["fetch"](
                    keys=[k.priorities, k.delayed, k.leases],
                    args=[k.stream_prefix, _ms(now), limit - len(deliveries), worker_id, deadline_ms])
                deliveries += [Delivery(id=_text(r[1]), queue=queue, body=_bytes(r[2]), deliveries=int(r[3]),
                                        receipt=_text(r[0])) for r in rows]
        return deliveries

    def extend(self, deliveries: Sequence[Delivery], *, worker_id: str, lease_seconds: float,
               now: dt.datetime) -> None:
        deadline_ms = _ms(now + dt.timedelta(seconds=lease_seconds))
        with self._errors("extend leases"):
            self._per_queue(deliveries, "extend", lambda k, receipts: ([k.leases], [deadline_ms, worker_id,
                                                                                    *receipts]))

    def ack(self, deliveries: Sequence[Delivery]) -> None:
        with self._errors("acknowledge messages"):
            self._per_queue(deliveries, "ack", lambda k, receipts: ([k.leases], receipts))

    def nack(self, delivery: Delivery, *, body: bytes | None = None, available_at: dt.datetime | None = None) -> None:
        self._requeue(delivery, body=body if body is not None else delivery.body, available_at=available_at,
                      deliveries=delivery.deliveries)

    def release(self, deliveries: Sequence[Delivery]) -> None:
        for delivery in deliveries:
            self._requeue(delivery, body=delivery.body, available_at=None, deliveries=delivery.deliveries - 1)

    def _requeue(self, delivery: Delivery, *, body: bytes, available_at: dt.datetime | None,
                 deliveries: int) -> None:
        from ..messages import decode

        priority = decode(body).priority
        k = self.keys(delivery.queue)
        now = dt.datetime.now(dt.UTC)
        with self._errors("put a message back"):
            self._scripts["requeue"](
                keys=[k.priorities, k.delayed, k.wake, k.stream(priority), k.leases],
                args=[delivery.receipt, "", delivery.id, body, priority,
                      _ms(available_at or now), _ms(now), max(0, deliveries)])

    def recover(self, now: dt.datetime) -> int:
        recovered = 0
        with self._errors("recover expired leases"):
            for queue in self._queues(None):
                k = self.keys(queue)
                recovered += int(self._scripts["recover"](keys=[k.leases, k.wake], args=[_ms(now), RECOVER_BATCH]))
        return recovered

    # -- operating ---------------------------------------------------------

    def purge(self, queue: str) -> list[str]:
        k = self.keys(queue)
        with self._errors("purge"):
            ids = self._scripts["purge"](keys=[k.priorities, k.delayed, k.leases], args=[k.stream_prefix])
        return [_text(task_id) for task_id in ids]

    def depths(self, now: dt.datetime) -> list[QueueDepth]:
        depths = []
        with self._errors("count messages"):
            for queue in sorted(self._queues(None)):
                k = self.keys(queue)
                ready, scheduled, reserved = self._scripts["depth"](
                    keys=[k.priorities, k.delayed, k.leases], args=[k.stream_prefix, _ms(now)])
                if ready or scheduled or reserved:
                    depths.append(QueueDepth(queue=queue, ready=int(ready), scheduled=int(scheduled),
                                             reserved=int(reserved)))
        return depths

    def wakeup_source(self, queues: Sequence[str] | None):  # noqa: ANN201
        from .redis_wakeup import RedisWakeup

        return RedisWakeup(self, queues)

    # -- helpers -----------------------------------------------------------

    @property
    def _scripts(self) -> dict[str, Any]:
        scripts = self.__dict__.get("_script_cache")
        if scripts is None:
            scripts = self.__dict__["_script_cache"] = {name: self._script(name) for name in SCRIPTS}
        return scripts

    def _queues(self, queues: Sequence[str] | None) -> list[str]:
        if queues:
            return list(queues)
        return sorted(_text(q) for q in self.client.smembers(self.queues_key))

    def _per_queue(self, deliveries: Sequence[Delivery], script: str,
                   arguments: Callable[[QueueKeys, list[str]], tuple[list[str], list[Any]]]) -> None:
        """Run ``script`` once per queue of ``deliveries``, all in one round trip."""
        if not deliveries:
            return
        groups: dict[str, list[str]] = defaultdict(list)
        for delivery in deliveries:
            groups[delivery.queue].append(delivery.receipt)
        pipe = self.client.pipeline(transaction=False)
        for queue, receipts in groups.items():
            keys, args = arguments(self.keys(queue), receipts)
            self._scripts[script](keys=keys, args=args, client=pipe)
        pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
