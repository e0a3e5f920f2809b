"""Enqueue task calls through djtasks' public API; run as ``python -m tests.e2e.enqueue``.

The end-to-end tests run this in a subprocess with the workers' environment
(``DJANGO_SETTINGS_MODULE=testproject.settings`` and the ``DJTASKS_DB_*``
variables), so a task is enqueued exactly as the demo project would enqueue it.

Reads a JSON list of calls on stdin, each
``{"task": "<dotted path>", "args": [...], "kwargs": {...}, "countdown": <seconds> | null}``
(optionally with ``"queue": "<name>"`` to enqueue on another queue than the task's),
and prints the JSON list of their task ids, in order. Consecutive calls of one
task without a countdown are enqueued with one ``enqueue_many()``.
"""

from __future__ import annotations

import itertools
import json
import sys


def main() -> None:
    import django

    django.setup()
    from django.utils.module_loading import import_string

    calls = json.load(sys.stdin)
    ids: list[str] = []
    batches = itertools.groupby(calls, key=lambda c: (c["task"], c.get("countdown"), c.get("queue")))
    for (path, countdown, queue), batch in batches:
        task = import_string(path)
        if queue is not None:
            task = task.using(queue_name=queue)
        batch = list(batch)
        if countdown is None:
            if any(c["args"] and c["kwargs"] for c in batch):
                raise SystemExit("enqueue_many() takes args or kwargs per call, not both")
            results = task.enqueue_many([c["kwargs"] or c["args"] for c in batch])
        else:
            results = [task.apply_async(args=c["args"], kwargs=c["kwargs"], countdown=countdown) for c in batch]
        ids.extend(r.id for r in results)
    json.dump(ids, sys.stdout)


if __name__ == "__main__":
    main()
