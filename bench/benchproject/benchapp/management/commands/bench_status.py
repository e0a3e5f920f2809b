"""``manage.py bench_status``: print the stored results by state, as JSON."""

import json
from typing import Any

from django.core.management.base import BaseCommand

from benchapp.contestant import tasks_module


class Command(BaseCommand):
    """Count the contestant's result rows (succeeded / failed / other)."""

    help = __doc__

    def handle(self, *args: Any, **options: Any) -> None:
        """Print the counts as one JSON line."""
        self.stdout.write(json.dumps(tasks_module().count_results()))
