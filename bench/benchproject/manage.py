#!/usr/bin/env python
"""Django's command-line utility for the benchmark project.

The contestant is chosen with ``DJANGO_SETTINGS_MODULE``
(``benchproject.settings.djtasks`` / ``.dtdb`` / ``.celery``); the database
and the Redis bookkeeping keys with the ``BENCH_*`` variables read by
:mod:`benchproject.settings.base`.
"""

import itertools
import os
import sys


def wants_gevent(argv: list[str]) -> bool:
    """Whether this process runs ``runworker --pool gevent`` (or ``DJTASKS_POOL=gevent`` says so)."""
    if os.environ.get("DJTASKS_POOL") == "gevent":
        return True
    if argv[1:2] != ["runworker"]:
        return False
    return "--pool=gevent" in argv or ("--pool", "gevent") in itertools.pairwise(argv)


def main() -> None:
    """Run a Django management command."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchproject.settings.dtdb")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    if wants_gevent(sys.argv):
        # Before Django (or anything that opens sockets) is imported: djtasks' gevent pool needs it.
        from gevent import monkey

        monkey.patch_all()
    main()
