"""Work that the engine tasks do, the same code for every contestant (no Django needed).

``spin(loops)`` is pure-Python CPU work that holds the GIL all along: a
fixed loop whose count is calibrated once per run (:func:`calibrate`) to
last about the wanted seconds, then passed unchanged to every contestant's
task as an argument.
"""

import time


def spin(loops: int) -> int:
    """Burn CPU in pure Python for ``loops`` iterations; return a checksum (so nothing is optimised away)."""
    total = 0
    for index in range(loops):
        total = (total + index * index) % 1_000_003
    return total


def seconds_of(loops: int) -> float:
    """Wall seconds that ``spin(loops)`` takes here, now."""
    started = time.perf_counter()
    spin(loops)
    return time.perf_counter() - started


def calibrate(seconds: float = 0.05, probe: int = 200_000, rounds: int = 5) -> int:
    """The loop count for which :func:`spin` lasts ``seconds`` on this machine.

    The fastest of ``rounds`` probes is taken, the one least disturbed by
    other work on the machine.
    """
    spin(probe)  # warm up
    fastest = min(seconds_of(probe) for _ in range(rounds))
    return max(1, round(probe * seconds / fastest))


if __name__ == "__main__":
    print(calibrate())
