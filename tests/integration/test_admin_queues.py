"""The admin with the Redis broker: queue depths above the task results (beside the ORM broker's), and a task's page."""

from __future__ import annotations

import re

import pytest
from django.test import override_settings

from djtasks.testing import drain
from tests.conftest import REDIS_URL
from tests.taskapp import tasks

from .redis_servers import free_port

pytestmark = [pytest.mark.redis, pytest.mark.django_db]

CHANGELIST = "/admin/djtasks/taskrecord/"


def backend(url: str, **options: object) -> dict:
    return {"BACKEND": "djtasks.backend.DjTasksBackend", "QUEUES": [], "OPTIONS": {"BROKER_URL": url, **options}}


def depth_row(html: str, alias: str, queue: str) -> tuple[int, int, int] | None:
    """The (ready, scheduled, reserved) shown for ``queue`` of backend ``alias``, if shown."""
    found = re.search(rf"<td>{alias}</td><td>{queue}</td>\s*<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", html)
    return tuple(int(n) for n in found.groups()) if found else None


def test_the_changelist_shows_each_backends_queues_and_says_when_redis_cannot_tell(
        admin_client, redis_prefix: str) -> None:  # noqa: ANN001
    down = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    with override_settings(TASKS={"default": backend("django://default"),
                                  "redis": backend(REDIS_URL, KEY_PREFIX=redis_prefix),
                                  "down": backend(down, BROKER_TIMEOUT=0.5)}):
        on_redis = tasks.add.using(backend="redis")
        on_redis.enqueue(1, 2)
        on_redis.using(queue_name="mail").enqueue(3, 4)
        on_redis.using(queue_name="mail").apply_async((5, 6), countdown=3600)
        tasks.add.enqueue(7, 8)

        html = admin_client.get(CHANGELIST).content.decode()

    assert depth_row(html, "redis", "default") == (1, 0, 0)
    assert depth_row(html, "redis", "mail") == (1, 1, 0)
    assert depth_row(html, "default", "default") == (1, 0, 0)
    assert re.search(rf"<td>down</td>\s*<td colspan=\"4\">unavailable: Redis broker \({re.escape(down)}\) "
                     r"could not count messages", html), html
    assert html.count('class="queue-depth"') == 3
    # The results themselves are listed below, as always: the four rows in the default database.
    assert html.count("field-task_path") == 4


def test_the_queue_depths_are_only_for_staff(client, redis_prefix: str) -> None:  # noqa: ANN001
    with override_settings(TASKS={"default": backend(REDIS_URL, KEY_PREFIX=redis_prefix)}):
        tasks.add.enqueue(1, 2)
        response = client.get(CHANGELIST)
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_task_run_through_redis_shows_no_delivery_count_rather_than_zero(
        admin_client, redis_prefix: str) -> None:  # noqa: ANN001
    with override_settings(TASKS={"default": backend(REDIS_URL, KEY_PREFIX=redis_prefix)}):
        result = tasks.add.enqueue(1, 2)
        drain()
        html = admin_client.get(f"{CHANGELIST}{result.id}/change/").content.decode()
    # Redis counts deliveries in the message, not in the row: "-", where the ORM broker shows its count.
    assert re.search(r'field-attempts">.*?<div class="readonly">1</div>', html, re.S)
    assert re.search(r'field-delivery_count">.*?<div class="readonly">-</div>', html, re.S)
