"""Rates such as ``"100/m"``: parsed once, into a frozen value the limiters share.

Grammar (spaces allowed around the parts, units case-insensitive)::

    <count> "/" [<every>] <unit>

``count`` and ``every`` are positive numbers (``"0.5/s"``, ``"10/2s"``: ten
per two seconds); ``unit`` is ``s``/``sec``/``second(s)``, ``m``/``min``/
``minute(s)``, ``h``/``hr``/``hour(s)`` or ``d``/``day(s)``. A bare number
(``"100"``, which Celery reads as per second) is refused: the unit is the
part most worth reading, so it must be written.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

#: Seconds in each unit a rate may be written in.
UNIT_SECONDS: dict[str, float] = {
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1.0),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 60.0),
    **dict.fromkeys(("h", "hr", "hour", "hours"), 3600.0),
    **dict.fromkeys(("d", "day", "days"), 86400.0),
}

_NUMBER = r"\d+(?:\.\d+)?"
_RATE_RE = re.compile(
    rf"^\s*(?P<count>{_NUMBER})\s*/\s*(?P<every>{_NUMBER})?\s*(?P<unit>[a-z]+)\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True, kw_only=True)
class Rate:
    """A token bucket's shape: it refills at ``tokens_per_second`` and holds at most ``burst`` tokens."""

    tokens_per_second: float
    #: Tokens a full bucket holds: how many calls may run back to back after a quiet spell.
    burst: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.tokens_per_second) and self.tokens_per_second > 0):
            raise ValueError(f"A rate needs a positive, finite tokens_per_second, not {self.tokens_per_second!r}.")
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(f"A rate's burst must be a whole number of at least 1, not {self.burst!r}.")

    @property
    def fill_seconds(self) -> float:
        """Seconds an empty bucket takes to fill up: after that long idle, any bucket is full."""
        return self.burst / self.tokens_per_second


def default_burst(tokens_per_second: float) -> int:
    """One second's worth of tokens, rounded down, and at least 1."""
    return max(1, math.floor(tokens_per_second))


def parse_rate(text: str, *, burst: int | None = None) -> Rate:
    """Parse ``text`` (e.g. ``"100/m"``) into a :class:`Rate`; raise ``ValueError`` naming it if it is not one.

    ``burst`` defaults to one second's worth of tokens (at least 1): ``"10/s"``
    lets 10 calls through at once, ``"100/m"`` one at a time, 0.6 s apart.
    """
    if not isinstance(text, str):
        # ValueError, not TypeError: one error for every bad ``rate_limit=``, so its caller catches one.
        raise ValueError(f"Invalid rate limit {text!r}: expected a string such as '100/m'.")  # noqa: TRY004
    match = _RATE_RE.match(text)
    if match is None:
        raise ValueError(f"Invalid rate limit {text!r}: expected '<count>/<unit>' such as '10/s', '100/m', "
                         f"'1000/h', '5/d' or '10/2s'.")
    unit = match["unit"].lower()
    if unit not in UNIT_SECONDS:
        raise ValueError(f"Invalid rate limit {text!r}: unknown unit {match['unit']!r}; "
                         f"use s, m, h or d.")
    count, every = float(match["count"]), float(match["every"] or 1)
    if count <= 0 or every <= 0:
        raise ValueError(f"Invalid rate limit {text!r}: the count and the period must be greater than zero.")
    tokens_per_second = count / (every * UNIT_SECONDS[unit])
    try:
        return Rate(tokens_per_second=tokens_per_second,
                    burst=default_burst(tokens_per_second) if burst is None else burst)
    except ValueError as error:
        raise ValueError(f"Invalid rate limit {text!r}: {error}") from None
