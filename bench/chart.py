"""The benchmark's chart, as a hand-written SVG (no plotting library to install): every run's cold
start, wall clock and CPU time (logarithmic scales: ours and the peer differ by two orders of
magnitude; the dashed line is the 10 ms target) and warm rotation (linear), one row of dots per
function, a bar at the median.

bench/run.py calls svg(samples); `python3 -m bench.chart RESULTS.json OUT.svg` redraws it from the
samples `make bench` saved.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from local.svg_axes import scale, ticks

WIDTH, PANEL_HEIGHT = 760, 150
LEFT, RIGHT = 70, 20
ROWS = (("ours", "#1f77b4"), ("peer", "#d62728"))
# (sample key, title, logarithmic?, target line or None)
PANELS = (
    ("cold_start_ms", "Cold start: process start to first /next, wall clock (ms, log scale)", True, 10.0),
    ("cold_start_cpu_ms", "Cold start: CPU time used by the first /next (ms, log scale)", True, 10.0),
    ("warm_rotation_ms", "Full rotation, warm: RotateSecret to finishSecret answered (ms)", False, None),
)


def _panel(top: float, title: str, values: dict[str, list[float]], log: bool, target: float | None) -> list[str]:
    every = [v for vs in values.values() for v in vs]
    lo, hi = min(every), max(every)
    if log:
        lo, hi = 10 ** math.floor(math.log10(lo)), 10 ** math.ceil(math.log10(hi))
    else:
        lo, hi = 0, hi * 1.05
    x = scale(lo, hi, log, LEFT, WIDTH - LEFT - RIGHT)
    axis_y = top + PANEL_HEIGHT - 30
    out = [f'<text x="{LEFT}" y="{top + 16}" font-weight="bold">{escape(title)}</text>']
    for t in ticks(lo, hi, log):
        out.append(f'<line x1="{x(t):.1f}" y1="{top + 26}" x2="{x(t):.1f}" y2="{axis_y}" stroke="#ddd"/>')
        out.append(f'<text x="{x(t):.1f}" y="{axis_y + 16}" text-anchor="middle" font-size="11">{t:g}</text>')
    out.append(f'<line x1="{LEFT}" y1="{axis_y}" x2="{WIDTH - RIGHT}" y2="{axis_y}" stroke="#333"/>')
    if target is not None and lo <= target <= hi:
        out.append(f'<line x1="{x(target):.1f}" y1="{top + 26}" x2="{x(target):.1f}" y2="{axis_y}" stroke="#2ca02c" '
                   f'stroke-dasharray="4,3"/>')
        out.append(f'<text x="{x(target) + 3:.1f}" y="{axis_y - 4}" font-size="11" fill="#2ca02c">target {target:g}</text>')
    for i, (name, colour) in enumerate(ROWS):
        y = top + 48 + i * 36
        out.append(f'<text x="{LEFT - 8}" y="{y + 4}" text-anchor="end">{name}</text>')
        for j, v in enumerate(values.get(name, [])):
            jitter = ((j * 7) % 11 - 5) * 1.2   # deterministic spread so equal values stay visible
            out.append(f'<circle cx="{x(v):.1f}" cy="{y + jitter:.1f}" r="3" fill="{colour}" fill-opacity="0.55"/>')
        if values.get(name):
            m = statistics.median(values[name])
            out.append(f'<line x1="{x(m):.1f}" y1="{y - 12}" x2="{x(m):.1f}" y2="{y + 12}" stroke="#000" stroke-width="2"/>')
            # The label sits on the side of the bar with room for it.
            right_half = x(m) > LEFT + (WIDTH - LEFT - RIGHT) / 2
            anchor, dx = ("end", -4) if right_half else ("start", 4)
            out.append(f'<text x="{x(m) + dx:.1f}" y="{y - 10}" font-size="11" text-anchor="{anchor}">'
                       f'median {m:,.1f}</text>')
    return out


def svg(samples: dict[str, list[dict[str, Any]]]) -> str:
    height = PANEL_HEIGHT * len(PANELS) + 10
    body = []
    for k, (key, title, log, target) in enumerate(PANELS):
        values = {name: [run[key] for run in runs] for name, runs in samples.items()}
        body += _panel(10 + k * PANEL_HEIGHT, title, values, log, target)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'font-family="sans-serif" font-size="13">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")


if __name__ == "__main__":
    results = json.loads(Path(sys.argv[1]).read_text())
    Path(sys.argv[2]).write_text(svg(results["samples"]))
