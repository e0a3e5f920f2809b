#!/usr/bin/env python
"""Django's command-line utility for the djtasks demo project (``testproject``)."""

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


if __name__ == "__main__":
    if wants_gevent(sys.argv):
        # Before Django (or anything that opens sockets) is imported: the gevent pool needs it.
        from gevent import monkey

        monkey.patch_all()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "testproject.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
