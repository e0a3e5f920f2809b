"""Run a :class:`~djtasks.worker.Worker` in a thread of the test process, stopped on exit."""

from __future__ import annotations

import threading

from django.db import connections

from djtasks.worker import Worker


class RunningWorker:
    """``with RunningWorker(worker):`` serves in a thread; leaving asks it to stop and waits."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        try:
            self.worker.run()
        finally:
            connections.close_all()

    def __enter__(self) -> Worker:
        self.thread.start()
        return self.worker

    def __exit__(self, *exc_info: object) -> None:
        self.worker.request_stop()
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
