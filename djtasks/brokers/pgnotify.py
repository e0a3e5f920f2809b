"""Wake idle workers the moment PostgreSQL announces a new message (LISTEN/NOTIFY)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import psycopg
from django.db import connections

logger = logging.getLogger("djtasks.brokers")

#: Seconds between checks of the stop flag while no notification arrives.
LISTEN_TIMEOUT_SECONDS = 1.0
#: Seconds to wait before connecting again after the listening connection broke.
RECONNECT_DELAY_SECONDS = 1.0


class PostgresWakeup:
    """A thread that sets ``event`` whenever a message for one of ``queues`` is enqueued.

    It holds its own connection (LISTEN needs one that stays open and idle),
    built from the Django settings of database ``alias``.
    """

    def __init__(self, alias: str, channel: str, queues: Sequence[str] | None) -> None:
        self.alias = alias
        self.channel = channel
        self.queues = set(queues) if queues else None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, event: threading.Event) -> None:
        self._thread = threading.Thread(target=self._run, args=(event,), name="djtasks-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=LISTEN_TIMEOUT_SECONDS * 2)

    def _run(self, event: threading.Event) -> None:
        while not self._stop.is_set():
            try:
                self._listen(event)
            except psycopg.Error as exc:
                logger.warning("LISTEN connection lost (%s); workers poll until it is back", exc)
                event.set()  # poll now: a message may have come while it was down
                self._stop.wait(RECONNECT_DELAY_SECONDS)

    def _listen(self, event: threading.Event) -> None:
        params = connections[self.alias].get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f'LISTEN "{self.channel}"')
            while not self._stop.is_set():
                for notify in conn.notifies(timeout=LISTEN_TIMEOUT_SECONDS):
                    if self.queues is None or notify.payload in self.queues:
                        event.set()
                    if self._stop.is_set():
                        return
