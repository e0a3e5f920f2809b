"""Wake whoever waits the moment PostgreSQL announces something on a channel (LISTEN/NOTIFY).

Idle workers listen for new messages (the ORM broker), control agents for
commands and revocations, and ``manage.py djtasks`` for replies.
"""

from __future__ import annotations

import threading
from collections.abc import Collection

import psycopg
from django.db import connections

from .listener import Listener

#: Seconds between checks of the stop flag while no notification arrives.
LISTEN_TIMEOUT_SECONDS = 1.0


class PostgresWakeup(Listener):
    """A thread that sets ``event`` whenever ``channel`` carries one of ``payloads`` (``None``: any).

    It holds its own connection (LISTEN needs one that stays open and idle),
    built from the Django settings of database ``alias``. It reconnects with
    backoff when that connection breaks (see :class:`~.listener.Listener`).
    """

    errors = (psycopg.Error,)

    def __init__(self, alias: str, channel: str, payloads: Collection[str] | None,
                 *, tick_seconds: float = LISTEN_TIMEOUT_SECONDS) -> None:
        super().__init__(f"LISTEN on PostgreSQL channel {channel!r} (database {alias!r})", tick_seconds=tick_seconds)
        self.alias = alias
        self.channel = channel
        self.payloads = set(payloads) if payloads else None

    def _listen(self, event: threading.Event) -> None:
        params = connections[self.alias].get_connection_params()
        params.pop("cursor_factory", None)
        params.pop("context", None)
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f'LISTEN "{self.channel}"')
            self._subscribed(event)
            while not self.stopping:
                for notify in conn.notifies(timeout=self.tick_seconds):
                    if self.payloads is None or notify.payload in self.payloads:
                        event.set()
                    if self.stopping:
                        return
