"""Wake an idle worker the moment a message is pushed to one of its Redis queues.

Only for a worker that cannot wait inside its fetch: one that serves several
queues of a Redis Cluster (see :meth:`RedisBroker.waits_in_fetch`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .redisclient import REDIS_ERRORS

if TYPE_CHECKING:
    from .redis import RedisBroker

logger = logging.getLogger("djtasks.brokers")

#: Longest block, in seconds (at most half the broker timeout): also how soon a new
#: queue (serving every queue) is noticed.
MAX_BLOCK_SECONDS = 1.0
#: Seconds to wait before blocking again after Redis failed.
RETRY_DELAY_SECONDS = 0.5


class RedisWakeup:
    """One thread per queue blocks on its wake list (BLPOP) and sets the worker's event.

    A thread per queue, because one BLPOP cannot span keys of different
    cluster slots. The block ends early when a delayed message is due, so
    countdowns start on time.
    """

    def __init__(self, broker: RedisBroker, queues: Sequence[str] | None) -> None:
        self.broker = broker
        self.queues = list(queues) if queues else None
        self._stop = threading.Event()
        self._threads: dict[str, threading.Thread] = {}
        self._watcher: threading.Thread | None = None

    def start(self, event: threading.Event) -> None:
        if self.queues is not None:
            for queue in self.queues:
                self._start_queue(queue, event)
        else:
            self._watcher = threading.Thread(target=self._watch_queues, args=(event,), name="djtasks-queues",
                                             daemon=True)
            self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in [*self._threads.values(), *([self._watcher] if self._watcher else [])]:
            thread.join(timeout=MAX_BLOCK_SECONDS * 3)

    def _start_queue(self, queue: str, event: threading.Event) -> None:
        thread = threading.Thread(target=self._block, args=(queue, event), name=f"djtasks-wake-{queue}", daemon=True)
        self._threads[queue] = thread
        thread.start()

    def _watch_queues(self, event: threading.Event) -> None:
        while not self._stop.is_set():
            try:
                for queue in self.broker._queues(None):
                    if queue not in self._threads:
                        self._start_queue(queue, event)
                        event.set()
            except REDIS_ERRORS:
                pass  # the blocking threads log the outage
            self._stop.wait(MAX_BLOCK_SECONDS)

    def _block(self, queue: str, event: threading.Event) -> None:
        keys = self.broker.keys(queue)
        client = self.broker.client
        # A block must end before the socket timeout, or every idle BLPOP would fail as a timeout.
        longest_block = min(MAX_BLOCK_SECONDS, self.broker.timeout_seconds / 2)
        failing = False
        while not self._stop.is_set():
            try:
                timeout = longest_block
                first_due = client.zrange(keys.delayed, 0, 0, withscores=True)
                if first_due:
                    timeout = min(timeout, max(0.0, first_due[0][1] / 1000 - time.time()))
                if timeout <= 0.001 or client.blpop([keys.wake], timeout=timeout) is not None or first_due:
                    event.set()
                if failing:
                    logger.debug("wake-ups of queue %s work again (%s)", queue, self.broker.url)
                    failing = False
            except REDIS_ERRORS as exc:
                # Debug only: the worker loop, woken here, meets the same outage and
                # reports it once, whichever number of queues this worker serves.
                if not failing:
                    logger.debug("wake-ups of queue %s fail (%s): %s; retrying", queue, self.broker.url, exc)
                    failing = True
                event.set()  # let the worker poll: it owns the reconnect backoff
                self._stop.wait(RETRY_DELAY_SECONDS)
