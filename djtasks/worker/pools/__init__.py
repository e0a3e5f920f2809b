"""Execution pools, chosen by name with ``runworker --pool``."""

from __future__ import annotations

from typing import Any

from .base import Execute, OnDone, Pool
from .gevent import GeventPool
from .prefork import PreforkPool
from .solo import SoloPool
from .threads import ThreadPool

POOLS: dict[str, type[Pool]] = {"prefork": PreforkPool, "solo": SoloPool, "threads": ThreadPool, "gevent": GeventPool}

__all__ = ["POOLS", "GeventPool", "Pool", "PreforkPool", "SoloPool", "ThreadPool", "make_pool"]


def make_pool(name: str, execute: Execute, on_done: OnDone, concurrency: int, **options: Any) -> Pool:
    """The pool called ``name``; raise ``ValueError`` for an unknown one.

    ``options`` (``max_tasks_per_child``, ``max_memory_per_child_kib``) apply to the prefork pool.
    """
    try:
        cls = POOLS[name]
    except KeyError:
        raise ValueError(f"unknown pool {name!r}; choose one of: {', '.join(sorted(POOLS))}") from None
    if cls is PreforkPool:
        return cls(execute, on_done, concurrency, **options)
    return cls(execute, on_done, concurrency)
