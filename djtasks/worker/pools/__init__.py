"""Execution pools, chosen by name with ``runworker --pool``."""

from __future__ import annotations

from .base import Execute, OnDone, Pool
from .solo import SoloPool
from .threads import ThreadPool

POOLS: dict[str, type[Pool]] = {"solo": SoloPool, "threads": ThreadPool}

__all__ = ["POOLS", "Pool", "SoloPool", "ThreadPool", "make_pool"]


def make_pool(name: str, execute: Execute, on_done: OnDone, concurrency: int) -> Pool:
    """The pool called ``name``; raise ``ValueError`` for an unknown one."""
    try:
        cls = POOLS[name]
    except KeyError:
        raise ValueError(f"unknown pool {name!r}; choose one of: {', '.join(sorted(POOLS))}") from None
    return cls(execute, on_done, concurrency)
