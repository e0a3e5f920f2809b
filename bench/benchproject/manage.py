#!/usr/bin/env python
"""Django's command-line utility for the benchmark project.

The contestant is chosen with ``DJANGO_SETTINGS_MODULE``
(``benchproject.settings.djtasks`` / ``.dtdb`` / ``.celery``); the database
and the Redis bookkeeping keys with the ``BENCH_*`` variables read by
:mod:`benchproject.settings.base`.
"""

import os
import sys


def main() -> None:
    """Run a Django management command."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings.dtdb")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
