"""Contestant: Huey with its Redis storage, run by ``manage.py run_huey`` (no results kept)."""

from .base import *  # noqa: F403
from .base import BENCH_BROKER_URL, INSTALLED_APPS

BENCH_CONTESTANT = "huey"
BENCH_TASKS_MODULE = "benchapp.tasks_huey"

INSTALLED_APPS = [*INSTALLED_APPS, "huey.contrib.djhuey"]
HUEY = {
    "huey_class": "huey.RedisHuey",
    "name": "bench",
    "immediate": False,
    "results": False,
    # Workers wait for a message with BRPOP: the quickest start Huey has.
    "blocking": True,
    "url": BENCH_BROKER_URL or "redis://127.0.0.1:6379/15",
}
