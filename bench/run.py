#!/usr/bin/env python
"""Benchmark djtasks beside django-tasks-db and Celery, in one run.

Usage (from the repository root)::

    bash bench/setup.sh
    bench/.venv/bin/python bench/run.py [--only NAMES] [--workloads drain,enqueue,latency]
                                        [--tasks N] [--quick] [--keep]

See bench/README.rst and docs/benchmarks.rst.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchkit.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
