"""Push remote control through the broker: "a control row was written, look now".

The rows in the results database (commands, replies, revocations) stay the
record; a signal carries no data, only its kind, and may be lost. Whoever
writes a row calls :meth:`Signals.notify`; whoever waits for rows holds a
subscriber (a :class:`~djtasks.brokers.listener.Listener`) whose
``start(event)`` sets the event on each signal, and still polls, slowly
while the subscription is up and quickly while it is down.

- Redis broker (every URL form, Cluster included): PUBLISH/SUBSCRIBE on
  ``<KEY_PREFIX>:control`` (commands, revocations) and
  ``<KEY_PREFIX>:control:reply`` (replies);
- ORM broker on PostgreSQL: NOTIFY/LISTEN on ``djtasks_control`` and
  ``djtasks_control_reply``;
- ORM broker on SQLite or MySQL/MariaDB: no channel, everyone polls.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Collection, Hashable, Sequence
from typing import TYPE_CHECKING

from django.db import DatabaseError, connections

from ..brokers import Broker
from ..brokers.listener import Listener
from ..brokers.redisclient import REDIS_ERRORS
from ..exceptions import ConfigurationError

if TYPE_CHECKING:
    from ..brokers.redis import RedisBroker

logger = logging.getLogger("djtasks.control")

#: Kinds of signal: a command was sent, a task revoked (both for workers), a worker replied.
COMMAND, REVOCATION, REPLY = "command", "revocation", "reply"
#: What a worker's control agent listens for.
WORKER_KINDS = frozenset({COMMAND, REVOCATION})
#: Seconds between two looks for rows while signals arrive: they catch a signal lost on the way.
FALLBACK_POLL_SECONDS = 5.0
#: Environment variable that overrides FALLBACK_POLL_SECONDS (tests make it long, to show
#: that the signals alone carry remote control).
FALLBACK_POLL_ENV = "DJTASKS_CONTROL_FALLBACK_POLL"
#: Seconds a subscriber waits for a signal before it looks at its stop flag: how long a stopping
#: worker, or ``djtasks ping`` once all replies are in, waits for its subscriber thread.
TICK_SECONDS = 0.1


def fallback_poll_seconds() -> float:
    """``FALLBACK_POLL_SECONDS``, or the number of seconds in ``$DJTASKS_CONTROL_FALLBACK_POLL``."""
    text = os.environ.get(FALLBACK_POLL_ENV, "")
    if not text:
        return FALLBACK_POLL_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise ConfigurationError(f"{FALLBACK_POLL_ENV}={text!r}: give a positive number of seconds.")
    return seconds


class ControlChannel(ABC):
    """Signals of one broker: the worker channel (commands, revocations) and the reply channel."""

    #: What a failed signal raises.
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, description: str) -> None:
        self.description = description
        self._failing = False

    @property
    @abstractmethod
    def key(self) -> Hashable:
        """Equal for two channels that reach the same subscribers."""

    @abstractmethod
    def channel_name(self, kind: str) -> str:
        """The channel that carries signals of ``kind``."""

    @abstractmethod
    def subscriber(self, kinds: Collection[str]) -> Listener:
        """A subscriber to signals of ``kinds`` (all carried by one channel); not started."""

    @abstractmethod
    def _send(self, channel: str, kind: str) -> None:
        """Send ``kind`` on ``channel``."""

    def notify(self, kind: str) -> None:
        """Send a signal of ``kind``; on failure log once (the receivers' polling still finds the row)."""
        try:
            self._send(self.channel_name(kind), kind)
        except self.errors as exc:
            if not self._failing:
                logger.warning("could not signal a control %s through %s (%s); it is seen at the next poll",
                               kind, self.description, exc)
                self._failing = True
        else:
            self._failing = False


class RedisControlChannel(ControlChannel):
    """PUBLISH/SUBSCRIBE on the per-process client of a Redis broker (Sentinel and Cluster included)."""

    errors = REDIS_ERRORS

    def __init__(self, broker: RedisBroker) -> None:
        super().__init__(f"Redis ({broker.url})")
        self.broker = broker

    @property
    def key(self) -> Hashable:
        return ("redis", self.broker.url, self.broker.prefix)

    def channel_name(self, kind: str) -> str:
        return f"{self.broker.prefix}:control:reply" if kind == REPLY else f"{self.broker.prefix}:control"

    def _send(self, channel: str, kind: str) -> None:
        self.broker.client.publish(channel, kind)

    def subscriber(self, kinds: Collection[str]) -> Listener:
        return RedisSubscriber(self.broker, _one_channel(self, kinds), kinds)


class PostgresControlChannel(ControlChannel):
    """NOTIFY/LISTEN on the database of an ORM broker on PostgreSQL."""

    errors = (DatabaseError,)

    def __init__(self, alias: str) -> None:
        super().__init__(f"PostgreSQL NOTIFY (database {alias!r})")
        self.alias = alias

    @property
    def key(self) -> Hashable:
        return ("postgresql", self.alias)

    def channel_name(self, kind: str) -> str:
        return "djtasks_control_reply" if kind == REPLY else "djtasks_control"

    def _send(self, channel: str, kind: str) -> None:
        with connections[self.alias].cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [channel, kind])

    def subscriber(self, kinds: Collection[str]) -> Listener:
        # Imported here: psycopg is needed on PostgreSQL only.
        from ..brokers.pgnotify import PostgresWakeup

        return PostgresWakeup(self.alias, _one_channel(self, kinds), kinds, tick_seconds=TICK_SECONDS)


def _one_channel(channel: ControlChannel, kinds: Collection[str]) -> str:
    names = {channel.channel_name(kind) for kind in kinds}
    if len(names) != 1:
        raise ValueError(f"signals {sorted(kinds)} travel on different channels: {sorted(names)}")
    return names.pop()


class RedisSubscriber(Listener):
    """SUBSCRIBE to one channel in a pubsub of the broker's client; set the event on ``kinds``.

    A connection that redis-py re-establishes by itself subscribes again, and
    the confirmation of that subscription counts as a (re)connection too.
    """

    errors = REDIS_ERRORS

    def __init__(self, broker: RedisBroker, channel: str, kinds: Collection[str]) -> None:
        super().__init__(f"SUBSCRIBE to Redis channel {channel!r} ({broker.url})", tick_seconds=TICK_SECONDS)
        self.broker = broker
        self.channel = channel
        self.kinds = frozenset(kinds)

    def _listen(self, event: threading.Event) -> None:
        pubsub = self.broker.client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            while not self.stopping:
                message = pubsub.get_message(timeout=self.tick_seconds)
                if message is None:
                    continue
                if message["type"] == "subscribe":  # in effect from now on
                    self._subscribed(event)
                elif message["type"] == "message" and _text(message["data"]) in self.kinds:
                    event.set()
        finally:
            pubsub.close()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def channel_for(broker: Broker) -> ControlChannel | None:
    """The control channel of ``broker``, or ``None`` where it has none (then everyone polls)."""
    from ..brokers.database import DatabaseBroker
    from ..brokers.redis import RedisBroker

    if isinstance(broker, RedisBroker):
        return RedisControlChannel(broker)
    if isinstance(broker, DatabaseBroker) and broker.vendor == "postgresql":
        return PostgresControlChannel(broker.alias)
    return None


def subscriber_for(broker: Broker, kinds: Collection[str]) -> Listener | None:
    """A subscriber to signals of ``kinds`` through ``broker``; ``None`` where it has no channel."""
    channel = channel_for(broker)
    return None if channel is None else channel.subscriber(kinds)


class Signals:
    """The sending side: signal through every channel on which a reader of these rows may listen.

    Control rows are per results database, and every worker whose backend
    keeps its results there reads them, whatever its broker; so a signal goes
    through the channel of each such backend (usually there is one).
    """

    def __init__(self, channels: Sequence[ControlChannel]) -> None:
        self.channels = list(channels)

    @classmethod
    def of_database(cls, alias: str) -> Signals:
        """The channels of the djtasks backends in ``settings.TASKS`` whose results are in ``alias``."""
        from django.tasks import task_backends

        channels: dict[Hashable, ControlChannel] = {}
        for backend in task_backends.all():
            # A djtasks backend has a broker (not imported here: the backend is a layer above).
            if isinstance(getattr(backend, "broker", None), Broker) and backend.config.results_database == alias:
                channel = channel_for(backend.broker)
                if channel is not None:
                    channels.setdefault(channel.key, channel)
        return cls(list(channels.values()))

    def notify(self, kind: str) -> None:
        """Signal ``kind`` through each channel; never raises for a broker that is down."""
        for channel in self.channels:
            channel.notify(kind)
