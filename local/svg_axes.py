"""The axes of the hand-written SVG charts (bench/chart.py, local/fleet_chart.py): round tick values
and the mapping of a value to its x, so the charts need no plotting library."""

from __future__ import annotations

import math
from collections.abc import Callable


def ticks(lo: float, hi: float, log: bool) -> list[float]:
    """Tick values between lo and hi: 1, 2 and 5 per decade on a logarithmic axis, else four to
    eight round steps."""
    if log:
        values = []
        for exponent in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
            values += [m * 10 ** exponent for m in (1, 2, 5)]
        return [t for t in values if lo <= t <= hi]
    step = 10 ** math.floor(math.log10(max(hi - lo, 1e-9)))
    while (hi - lo) / step > 8:
        step *= 2
    while (hi - lo) / step < 4:
        step /= 2
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def scale(lo: float, hi: float, log: bool, start: float, length: float) -> Callable[[float], float]:
    """The coordinate of a value on an axis from `start` over `length` pixels showing lo to hi."""
    if log:
        a, b = math.log10(lo), math.log10(hi)
        return lambda v: start + (math.log10(v) - a) / (b - a) * length
    return lambda v: start + (v - lo) / (hi - lo) * length
