"""Small statistics helpers (no numpy needed)."""

from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """Return the ``pct`` percentile (0-100) of ``values``, linearly interpolated."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def rate_between(timestamps: Sequence[float]) -> float:
    """Events per second between the first and the last of ``timestamps``."""
    if len(timestamps) < 2:
        raise ValueError("a rate needs at least two timestamps")
    span = max(timestamps) - min(timestamps)
    return (len(timestamps) - 1) / span if span > 0 else float("inf")
