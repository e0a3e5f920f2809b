"""Load the SQL that the ORM cannot express from named ``.sql`` files."""

from __future__ import annotations

from functools import cache
from pathlib import Path


@cache
def load_sql(path: Path) -> str:
    """The statement in ``path`` without its ``--`` header comments.

    Comments are dropped so that placeholders quoted in them are never taken
    for parameters.
    """
    lines = path.read_text().splitlines()
    return "\n".join(line for line in lines if not line.lstrip().startswith("--")).strip()
