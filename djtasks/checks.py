"""System checks beyond each backend's own ``check()``: the database set-up the ORM broker needs."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register()
def check_sqlite_for_workers(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Warn when SQLite would make several worker processes fail with "database is locked"."""
    from django.tasks import task_backends

    from .backend import DjTasksBackend
    from .exceptions import ConfigurationError

    messages: list[checks.CheckMessage] = []
    for backend in task_backends.all():
        if not isinstance(backend, DjTasksBackend):
            continue
        try:
            url = backend.config.broker_url
        except ConfigurationError:
            continue  # reported by the backend's own check
        if not url.startswith("django://"):
            continue
        alias = url.removeprefix("django://").strip("/") or "default"
        database = settings.DATABASES.get(alias)
        if database is None:
            messages.append(checks.Error(
                f"BROKER_URL {url!r} names database {alias!r}, which is not in DATABASES.",
                hint="Use django://<alias> with an alias from settings.DATABASES.", id="djtasks.E002"))
        elif alias != backend.config.results_database:
            messages.append(checks.Error(
                f"The ORM broker queues in the result rows, so BROKER_URL {url!r} and RESULTS_DATABASE "
                f"{backend.config.results_database!r} must name the same database.",
                hint=f"Set RESULTS_DATABASE to {alias!r} or leave it out.", id="djtasks.E003"))
        elif database["ENGINE"].endswith("sqlite3"):
            options = database.get("OPTIONS", {})
            if str(options.get("transaction_mode", "")).upper() != "IMMEDIATE":
                messages.append(checks.Warning(
                    f"Database {alias!r} (SQLite) queues tasks without IMMEDIATE transactions; several "
                    "processes writing at once may fail with 'database is locked'.",
                    hint="Set DATABASES[alias]['OPTIONS'] = {'transaction_mode': 'IMMEDIATE', 'timeout': 20, "
                         "'init_command': 'PRAGMA journal_mode=WAL;'}.", id="djtasks.W001"))
    return messages
