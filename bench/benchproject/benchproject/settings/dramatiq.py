"""Contestant: Dramatiq with its Redis broker (no result backend: fire and forget)."""

from .base import *  # noqa: F403
from .base import BENCH_BROKER_URL

BENCH_CONTESTANT = "dramatiq"
BENCH_TASKS_MODULE = "benchapp.tasks_dramatiq"

DRAMATIQ_BROKER_URL = BENCH_BROKER_URL or "redis://127.0.0.1:6379/14"
