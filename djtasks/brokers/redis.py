"""The Redis broker: one stream per (queue, priority), leases in a sorted set.

Per queue, every key shares the hash tag ``{<prefix>:<queue>}``, so a queue
lives in one Redis Cluster slot and queues spread over the shards:

``…:priorities``  ZSET of the priorities the queue has streams for
``…:s:<priority>`` STREAM of ready messages, consumer group ``djtasks``
``…:delayed``     ZSET of messages not due yet (countdown, eta, retry backoff)
``…:leases``      ZSET ``<stream>|<entry>|<worker>`` -> lease deadline (ms)
``…:wake``        LIST idle workers block on (BLPOP): one token per ready message
``…:fetched:<worker>`` STRING: a worker's last fetch, replayed if its reply was lost
``…:waiter:<worker>`` LIST: pushed to end a worker's wait at once (a task ended, or it stops)

A fetch reads the streams highest priority first (``XREADGROUP``) and leases
what it read; an ack removes the entry (``XACK`` + ``XDEL``), so streams do
not grow. A worker waits for work inside its fetch: one pipeline holds a
``BLPOP`` on the wake lists and, behind it, the fetch script, which Redis
runs the moment the ``BLPOP`` returns, so a message wakes a worker and is
leased to it in one round trip. Leases are deadlines in a sorted set rather
than stream idle time, so they are renewed by heartbeat and recovered by the
same rules as on the ORM broker. Every step that touches more than one key is a Lua script
(``lua/*.lua``), hence atomic, whichever worker runs it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import secrets
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..exceptions import BrokerError
from .base import Broker, Delivery, OutgoingMessage, QueueDepth
from .redisclient import REDIS_ERRORS, get_client, redis

LUA_DIR = Path(__file__).with_name("lua")


@dataclass(frozen=True, slots=True)
class LuaScript:
    text: str
    sha: str


def _load_scripts(**versions: int) -> dict[str, LuaScript]:
    scripts = {}
    for name, version in versions.items():
        text = (LUA_DIR / f"{name}_v{version}.lua").read_text()
        scripts[name] = LuaScript(text=text, sha=hashlib.sha1(text.encode()).hexdigest())
    return scripts


SCRIPTS = _load_scripts(enqueue=2, fetch=3, ack=1, extend=1, requeue=2, recover=1, purge=1, depth=1)
#: Messages per call of the enqueue script: a longer script would hold Redis up for others.
ENQUEUE_BATCH = 500
#: Leases recovered per queue and call.
RECOVER_BATCH = 500
#: Seconds a worker's own wake-up token lives: it ends a wait that starts soon after, not one much later.
WAITER_TOKEN_SECONDS = 60


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
        self._base = base

    def stream(self, priority: int) -> str:
        return f"{self.stream_prefix}{priority}"

    def fetched(self, worker_id: str) -> str:
        return f"{self._base}:fetched:{worker_id}"

    def waiter(self, worker_id: str) -> str:
        return f"{self._base}:waiter:{worker_id}"


class RedisBroker(Broker):
    """Messages in Redis streams; see the module docstring for the layout."""

    def __init__(self, url: str, *, prefix: str = "djtasks", timeout_seconds: float = 5.0,
                 options: dict[str, Any] | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.timeout_seconds = timeout_seconds
        self.options = dict(options or {})
        self.queues_key = f"{prefix}:queues"
        #: (worker id, queue) -> token of a fetch that raised: it may have run in Redis with its
        #: reply lost, so the next fetch sends the same token and gets what it leased.
        self._unanswered: dict[tuple[str, str], str] = {}
        #: queue -> when its first delayed message is due (ms), as the last fetch saw: a wait ends then.
        self._next_due_ms: dict[str, int] = {}
        self.cluster = url.startswith("redis+cluster:")
        #: Connections kept out of the client's pool: one for waiting fetches, one for the other calls.
        self._for_waits = _KeptConnection()
        self._for_calls = _KeptConnection()
        self._keys: dict[str, QueueKeys] = {}
        self._client: Any = None
        self._client_key: tuple[int, float] | None = None

    @property
    def client(self) -> Any:
        """This process's client of the broker URL (looked up again after a fork or a new timeout)."""
        key = (os.getpid(), self.timeout_seconds)
        if self._client_key != key:
            self._client = get_client(self.url, timeout_seconds=self.timeout_seconds, options=self.options)
            self._client_key = key
        return self._client

    def keys(self, queue: str) -> QueueKeys:
        keys = self._keys.get(queue)
        if keys is None:
            keys = self._keys[queue] = QueueKeys(self.prefix, queue)
        return keys

    def _run(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """Run script ``name`` by its SHA; load it first if Redis forgot it (a restart)."""
        script = SCRIPTS[name]
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        [reply] = self._send_together([command])
        if isinstance(reply, redis.exceptions.NoScriptError):
            self.client.script_load(script.text)
            [reply] = self._send_together([command])
        if isinstance(reply, Exception):
            raise reply
        return reply

    def _run_many(self, calls: list[tuple[str, list[str], list[Any]]]) -> list[Any]:
        """Run many scripts in one pipeline: one round trip; scripts Redis forgot are loaded and rerun.

        In MULTI/EXEC, except on a cluster (whose transactions cannot span queues' slots): a
        connection that drops midway then applies none of the batch, not its first part.
        """
        pipe = self.client.pipeline(transaction=not self.cluster)
        for name, keys, args in calls:
            # Not pipe.evalsha(): a Redis Cluster pipeline refuses that method, though it routes
            # EVALSHA by its keys (all in one slot here) like any other command.
            pipe.execute_command("EVALSHA", SCRIPTS[name].sha, len(keys), *keys, *args)
        replies = pipe.execute(raise_on_error=False)
        for index, reply in enumerate(replies):
            if isinstance(reply, redis.exceptions.NoScriptError):
                replies[index] = self._run(*calls[index])
            elif isinstance(reply, Exception):
                raise reply
        return replies

    def _errors(self, doing: str) -> _RedisErrors:
        """A context in which a Redis error is raised again as a :class:`BrokerError` saying what failed."""
        return _RedisErrors(self.url, doing)

    # -- producing ---------------------------------------------------------

    def enqueue(self, messages: Sequence[OutgoingMessage]) -> None:
        """One script call per queue (and per ``ENQUEUE_BATCH`` messages), all in one round trip."""
        if not messages:
            return
        now_ms = _ms(messages[0].enqueued_at)
        by_queue: dict[str, list[OutgoingMessage]] = defaultdict(list)
        for m in messages:
            by_queue[m.queue].append(m)
        calls, call_queues = [], []
        for queue, queued in by_queue.items():
            k = self.keys(queue)
            for start in range(0, len(queued), ENQUEUE_BATCH):
                args: list[Any] = [k.stream_prefix, now_ms]
                for m in queued[start:start + ENQUEUE_BATCH]:
                    args += (m.id, m.body, m.priority, _ms(m.available_at), 0)
                calls.append(("enqueue", [k.priorities, k.delayed, k.wake], args))
                call_queues.append(queue)
        with self._errors("enqueue"):
            replies = [self._run(*calls[0])] if len(calls) == 1 else self._run_many(calls)
            # A queue whose keys were just created is recorded for workers that serve every queue.
            new_queues = {queue for queue, created in zip(call_queues, replies, strict=True) if created}
            if new_queues:
                self.client.sadd(self.queues_key, *new_queues)

    # -- consuming ---------------------------------------------------------

    def fetch(self, queues: Sequence[str] | None, limit: int, *, worker_id: str, lease_seconds: float,
              now: dt.datetime, wait_seconds: float = 0.0) -> list[Delivery]:
        """Lease up to ``limit`` messages; if ``wait_seconds``, first wait that long at most for one.

        The wait ends early when a message comes, when a delayed message is
        due, or when :meth:`interrupt_wait` is called.
        """
        deadline_ms = _ms(now + dt.timedelta(seconds=lease_seconds))
        with self._errors("fetch messages"):
            names = self._queues(queues)
            wait_seconds = self._wait_before_fetch(names, wait_seconds, now)
            if wait_seconds > 0:
                return self._fetch_after_wait(names, limit, worker_id, deadline_ms, now, wait_seconds,
                                              waiter=self._waiter_key(queues, worker_id))
            deliveries: list[Delivery] = []
            for queue in names:
                if len(deliveries) >= limit:
                    break
                fetch = self._fetch_call(queue, limit - len(deliveries), worker_id, deadline_ms, now)
                try:
                    reply = self._run(*fetch)
                except REDIS_ERRORS:
                    self._unanswered[(worker_id, queue)] = fetch[2][-1]
                    raise
                deliveries += self._deliveries(queue, reply)
        return deliveries

    def waits_in_fetch(self, queues: Sequence[str] | None) -> bool:
        """Whether :meth:`fetch` can wait for these queues: one ``BLPOP`` on all their wake lists.

        On a cluster, only for one queue: a command's keys must share a slot.
        """
        return not self.cluster or (queues is not None and len(queues) == 1)

    def interrupt_wait(self, queues: Sequence[str] | None, *, worker_id: str) -> None:
        """End the wait of ``worker_id``'s fetch at once (from another thread), or its next one."""
        key = self._waiter_key(queues, worker_id)
        with self._errors("wake a waiting worker"):
            pipe = self.client.pipeline(transaction=False)
            pipe.lpush(key, "1")
            pipe.expire(key, WAITER_TOKEN_SECONDS)
            pipe.execute()

    def _waiter_key(self, queues: Sequence[str] | None, worker_id: str) -> str:
        # In the slot of the queue on a cluster, whose worker waits for that one queue only.
        return self.keys(queues[0]).waiter(worker_id) if queues else f"{self.prefix}:waiter:{worker_id}"

    def _wait_before_fetch(self, queues: list[str], wait_seconds: float, now: dt.datetime) -> float:
        """How long to wait: less than the socket timeout, and not past the first delayed message's due time."""
        if wait_seconds <= 0:
            return 0.0
        wait_seconds = min(wait_seconds, self.timeout_seconds / 2)
        now_ms = _ms(now)
        for queue in queues:
            due_ms = self._next_due_ms.get(queue, -1)
            if due_ms >= 0:
                wait_seconds = min(wait_seconds, (due_ms - now_ms) / 1000)
        return wait_seconds if wait_seconds >= 0.001 else 0.0

    def _fetch_after_wait(self, queues: list[str], limit: int, worker_id: str, deadline_ms: int, now: dt.datetime,
                          wait_seconds: float, *, waiter: str) -> list[Delivery]:
        """Wait on the queues' wake lists, then fetch from each, in one pipeline: one round trip.

        The fetches of several queues share a budget (a key of their own, deleted
        behind them): together they lease at most ``limit`` messages.
        """
        fetches = [self._fetch_call(queue, limit, worker_id, deadline_ms, now) for queue in queues]
        commands = [("BLPOP", *[self.keys(queue).wake for queue in queues], waiter, wait_seconds)]
        budget = f"{self.prefix}:budget:{fetches[0][2][-1]}" if len(queues) > 1 else None
        if budget:
            for _, keys, _ in fetches:
                keys.append(budget)
        commands += [("EVALSHA", SCRIPTS[name].sha, len(keys), *keys, *args) for name, keys, args in fetches]
        if budget:
            commands.append(("DEL", budget))
        try:
            replies = self._send_together(commands, waits=True)
            failed = next((r for r in replies if isinstance(r, Exception)
                           and not isinstance(r, redis.exceptions.NoScriptError)), None)
            if failed is not None:
                raise failed
        except REDIS_ERRORS:
            # Some fetches may have leased messages: the next fetch of each queue hands them out.
            for queue, fetch in zip(queues, fetches, strict=True):
                self._unanswered[(worker_id, queue)] = fetch[2][-1]
            raise
        deliveries: list[Delivery] = []
        for queue, fetch, reply in zip(queues, fetches, replies[1:1 + len(fetches)], strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError):
                reply = self._run(*fetch)  # Redis restarted and forgot the script: this fetch did not run
            deliveries += self._deliveries(queue, reply)
        return deliveries

    def _send_together(self, commands: list[tuple[Any, ...]], *, waits: bool = False) -> list[Any]:
        """Send ``commands`` in one write and read every reply; a command's error is its reply.

        One round trip, without the client's per-command layers, which show
        in start latency: a producer runs them before its message leaves, and
        a waiting worker between the message's arrival and its task's start.
        A fetch that ``waits`` uses the connection kept for waits, other calls
        the one kept for them (see :class:`_KeptConnection`), or one from the
        pool while another thread has it. A cluster client routes a pipeline
        by the commands' slot.
        """
        if self.cluster:
            if len(commands) == 1:  # routed by its keys, without a pipeline's bookkeeping
                try:
                    return [self.client.execute_command(*commands[0])]
                except redis.exceptions.ResponseError as error:
                    return [error]
            pipe = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)
            return pipe.execute(raise_on_error=False)
        kept = self._for_waits if waits else self._for_calls
        connection = kept.take(self.client)
        pool = None
        if connection is None:  # another thread has it: one from the pool
            pool = self.client.connection_pool
            connection = pool.get_connection()
        try:
            return connection.retry.call_with_retry(lambda: _write_and_read(connection, commands),
                                                    lambda error: connection.disconnect())
        except BaseException:
            connection.disconnect()  # replies may be left unread: the connection is not reused as it is
            raise
        finally:
            if pool is None:
                kept.give_back()
            else:
                pool.release(connection)

    def _fetch_call(self, queue: str, limit: int, worker_id: str, deadline_ms: int,
                    now: dt.datetime) -> tuple[str, list[str], list[Any]]:
        """The fetch script's keys and arguments; the last argument is the fetch's token."""
        k = self.keys(queue)
        token = self._unanswered.pop((worker_id, queue), None) or secrets.token_hex(8)
        return ("fetch", [k.priorities, k.delayed, k.leases, k.fetched(worker_id), k.wake],
                [k.stream_prefix, _ms(now), limit, worker_id, deadline_ms, token])

    def _deliveries(self, queue: str, reply: list) -> list[Delivery]:
        next_due_ms, rows = reply
        self._next_due_ms[queue] = int(next_due_ms)
        return [Delivery(id=_text(r[1]), queue=queue, body=_bytes(r[2]), deliveries=int(r[3]), receipt=_text(r[0]))
                for r in rows]

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

    def release(self, deliveries: Sequence[Delivery], *, available_at: dt.datetime | None = None) -> None:
        for delivery in deliveries:
            self._requeue(delivery, body=delivery.body, available_at=available_at,
                          deliveries=delivery.deliveries - 1)

    def _requeue(self, delivery: Delivery, *, body: bytes, available_at: dt.datetime | None,
                 deliveries: int) -> None:
        from ..messages import decode

        priority = decode(body).priority
        k = self.keys(delivery.queue)
        now = dt.datetime.now(dt.UTC)
        with self._errors("put a message back"):
            self._run("requeue", [k.priorities, k.delayed, k.wake, k.stream(priority), k.leases],
                      [delivery.receipt, "", delivery.id, body, priority, _ms(available_at or now), _ms(now),
                       max(0, deliveries)])

    def recover(self, now: dt.datetime) -> int:
        recovered = 0
        with self._errors("recover expired leases"):
            for queue in self._queues(None):
                k = self.keys(queue)
                recovered += int(self._run("recover", [k.leases, k.wake], [_ms(now), RECOVER_BATCH]))
        return recovered

    # -- operating ---------------------------------------------------------

    def purge(self, queue: str) -> list[str]:
        k = self.keys(queue)
        with self._errors("purge"):
            ids = self._run("purge", [k.priorities, k.delayed, k.leases], [k.stream_prefix])
        return [_text(task_id) for task_id in ids]

    def depths(self, now: dt.datetime) -> list[QueueDepth]:
        depths = []
        with self._errors("count messages"):
            for queue in sorted(self._queues(None)):
                k = self.keys(queue)
                ready, scheduled, reserved = self._run("depth", [k.priorities, k.delayed, k.leases],
                                                       [k.stream_prefix, _ms(now)])
                if ready or scheduled or reserved:
                    depths.append(QueueDepth(queue=queue, ready=int(ready), scheduled=int(scheduled),
                                             reserved=int(reserved)))
        return depths

    def wakeup_source(self, queues: Sequence[str] | None):  # noqa: ANN201
        from .redis_wakeup import RedisWakeup

        return RedisWakeup(self, queues)

    # -- helpers -----------------------------------------------------------

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
        self._run_many([(script, *arguments(self.keys(queue), receipts)) for queue, receipts in groups.items()])


class _KeptConnection:
    """A connection made by the client's pool but kept out of it, for one thread at a time.

    It spares each call the pool's checks and bookkeeping, whose cost comes
    before a producer's message leaves and after a waiting worker's message
    arrived. It reconnects by itself after a failure (every failure
    disconnects it, so it never holds unread replies); a forked process
    makes its own.
    """

    __slots__ = ("_connection", "_lock", "_pid")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._connection: Any = None
        self._pid = 0

    def take(self, client: Any) -> Any:
        """The connection, now this thread's until :meth:`give_back`; None if another thread has it."""
        if not self._lock.acquire(blocking=False):
            return None
        if self._connection is None or self._pid != os.getpid():
            try:
                self._connection = client.connection_pool.make_connection()
            except BaseException:
                self._lock.release()
                raise
            self._pid = os.getpid()
        return self._connection

    def give_back(self) -> None:
        self._lock.release()


class _RedisErrors:
    """See :meth:`RedisBroker._errors` (a class: it runs for every message sent and fetched)."""

    __slots__ = ("doing", "url")

    def __init__(self, url: str, doing: str) -> None:
        self.url = url
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: object) -> None:
        if isinstance(error, REDIS_ERRORS):
            raise BrokerError(f"Redis broker ({self.url}) could not {self.doing}: {error}") from error


def _write_and_read(connection: Any, commands: list[tuple[Any, ...]]) -> list[Any]:
    packed = connection.pack_command(*commands[0]) if len(commands) == 1 else connection.pack_commands(commands)
    connection.send_packed_command(packed)
    replies: list[Any] = []
    for _ in commands:
        try:
            replies.append(connection.read_response())
        except redis.exceptions.ResponseError as error:
            replies.append(error)
    return replies


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()
