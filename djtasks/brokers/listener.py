"""A thread that keeps one subscription (LISTEN, SUBSCRIBE) open and sets an event when it fires.

The subscription is a hint, never the record: whoever owns the event reads
its rows or queues when it is set, and polls as well. So the listener sets
the event not only on each signal but also whenever its subscription comes
up (a signal may have been missed before it did) and when it is lost (the
owner should look now and poll until it is back). A lost subscription is
reconnected with backoff; the outage is logged once, and its end once, at
INFO: polling covers it, and an outage of the broker itself is reported as
an error by the worker loop.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod

logger = logging.getLogger("djtasks.brokers")

#: Seconds to wait before subscribing again, after the 1st, 2nd, ... failure in a row (the last repeats).
RECONNECT_DELAYS_SECONDS = (0.5, 1.0, 2.0, 5.0)


class Listener(ABC):
    """Keep a subscription open in a daemon thread; see the module docstring.

    Subclasses implement :meth:`_listen`, which subscribes, calls
    :meth:`_subscribed` once the subscription is in effect, then waits for
    signals (calling ``event.set()`` on each) in waits of at most
    ``tick_seconds``, returning once :attr:`stopping` is true.
    """

    #: What a failed subscription raises; anything else is a bug and ends the thread.
    errors: tuple[type[BaseException], ...] = ()

    def __init__(self, description: str, *, tick_seconds: float) -> None:
        self.description = description
        #: Longest wait for a signal before the stop flag is checked again.
        self.tick_seconds = tick_seconds
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._connected = False
        self._failures = 0  # in a row, since the subscription last took effect
        self._outage_since: float | None = None

    @property
    def connected(self) -> bool:
        """Whether the subscription is in effect now (signals arrive)."""
        return self._connected

    @property
    def failures(self) -> int:
        """Attempts to subscribe that failed in a row, since the subscription last took effect."""
        return self._failures

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def start(self, event: threading.Event) -> None:
        """Subscribe in a new daemon thread; set ``event`` on each signal, (re)connection and loss."""
        self._thread = threading.Thread(target=self._run, args=(event,), name="djtasks-listen", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the subscription; return within about ``tick_seconds``."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.tick_seconds * 2 + 1)

    def _run(self, event: threading.Event) -> None:
        while not self.stopping:
            try:
                self._listen(event)
            except self.errors as exc:
                self._lost(exc, event)
                self._failures += 1
                self._stop.wait(RECONNECT_DELAYS_SECONDS[min(self._failures, len(RECONNECT_DELAYS_SECONDS)) - 1])
            finally:
                self._connected = False

    @abstractmethod
    def _listen(self, event: threading.Event) -> None:
        """Subscribe, call :meth:`_subscribed`, and pass signals on to ``event`` until stopped."""

    def _subscribed(self, event: threading.Event) -> None:
        """The subscription is in effect: say so once after an outage, and have the owner look now."""
        self._connected = True
        self._failures = 0
        if self._outage_since is not None:
            logger.info("%s works again after %.1f s", self.description, time.monotonic() - self._outage_since)
            self._outage_since = None
        else:
            logger.debug("%s in effect", self.description)
        event.set()  # a signal may have been sent before the subscription took effect

    def _lost(self, exc: BaseException, event: threading.Event) -> None:
        self._connected = False
        if self._outage_since is None and not self.stopping:
            logger.info("%s lost (%s); polling until it is back", self.description, exc)
            self._outage_since = time.monotonic()
        event.set()  # look now: a signal may have been missed
