"""The chart of a `make fleet` run (docs/fleet.svg), a hand-written SVG as bench/chart.py draws
docs/benchmarks.svg: over the window, the rotations finished; the function's SSM polls a second
against the assumed ListCommandInvocations rate, with those the quota refused; and the function
processes at work against the reserved concurrency.

    python3 -m local.fleet_chart RUN.json OUT.svg     # RUN.json: local.fleet's --json report
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from local.svg_axes import scale, ticks

WIDTH, PANEL_HEIGHT = 760, 170
LEFT, RIGHT, TOP_GAP, BOTTOM_GAP = 70, 20, 28, 32
POLL = "ListCommandInvocations"


def _panel(top: float, title: str, window_s: float, series: list[tuple[str, str, list[tuple[float, float]]]],
           limit: tuple[str, float] | None) -> list[str]:
    """One panel: `series` (label, colour, (t, value) points) as lines, and a dashed `limit` line."""
    highest = max([v for _, _, points in series for _, v in points] + [limit[1] if limit else 0, 1])
    x = scale(0, window_s, False, LEFT, WIDTH - LEFT - RIGHT)
    axis_y = top + PANEL_HEIGHT - BOTTOM_GAP
    y = scale(0, highest * 1.08, False, axis_y, -(PANEL_HEIGHT - BOTTOM_GAP - TOP_GAP))
    out = [f'<text x="{LEFT}" y="{top + 16}" font-weight="bold">{escape(title)}</text>']
    for t in ticks(0, window_s, False):
        out.append(f'<line x1="{x(t):.1f}" y1="{top + TOP_GAP}" x2="{x(t):.1f}" y2="{axis_y}" stroke="#ddd"/>')
        out.append(f'<text x="{x(t):.1f}" y="{axis_y + 16}" text-anchor="middle" font-size="11">{t:g} s</text>')
    for v in ticks(0, highest * 1.08, False):
        out.append(f'<text x="{LEFT - 6}" y="{y(v) + 4:.1f}" text-anchor="end" font-size="11">{v:g}</text>')
    out.append(f'<line x1="{LEFT}" y1="{axis_y}" x2="{WIDTH - RIGHT}" y2="{axis_y}" stroke="#333"/>')
    if limit:
        label, value = limit
        out.append(f'<line x1="{LEFT}" y1="{y(value):.1f}" x2="{WIDTH - RIGHT}" y2="{y(value):.1f}" stroke="#2ca02c" '
                   f'stroke-dasharray="4,3"/>')
        out.append(f'<text x="{WIDTH - RIGHT - 4}" y="{y(value) - 4:.1f}" font-size="11" text-anchor="end" '
                   f'fill="#2ca02c">{escape(label)}</text>')
    for k, (label, colour, points) in enumerate(series):
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        out.append(f'<text x="{LEFT + 8 + 190 * k}" y="{top + TOP_GAP + 12}" font-size="11" fill="{colour}">{escape(label)}</text>')
    return out


def svg(run: dict[str, Any]) -> str:
    timeline, options = run["timeline"], run["options"]
    step, buckets = timeline["bucket_s"], timeline["buckets"]
    window_s = max(run["window_s"], step)
    middle = [b["t"] + step / 2 for b in buckets]
    finished, done = [], 0
    for b in buckets:
        done += b["completed"]
        finished.append((min(b["t"] + step, window_s), done))
    polls = [(t, b["ssm_calls"].get(POLL, 0) / step) for t, b in zip(middle, buckets, strict=True)]
    refused = [(t, b["ssm_throttled"].get(POLL, 0) / step) for t, b in zip(middle, buckets, strict=True)]
    busy = [(t, b["busy_functions"]) for t, b in zip(middle, buckets, strict=True)]
    quotas = options["quotas"]
    panels = [
        (f"Rotations finished: {run['completed']:,} of {run['rotations']:,} in {run['window_s']:,} s, "
         f"{run['lockouts']} lockouts", [("completed", "#1f77b4", [(0.0, 0)] + finished)],
         ("all secrets", run["rotations"])),
        (f"{POLL} a second ({step} s buckets)", [("made", "#1f77b4", polls), ("refused by the quota", "#d62728", refused)],
         ("assumed rate", options["poll_rate"]) if quotas else None),
        ("Function processes at work", [("busy", "#1f77b4", busy)], ("reserved concurrency", options["concurrency"])),
    ]
    body = []
    for k, (title, series, limit) in enumerate(panels):
        body += _panel(10 + k * PANEL_HEIGHT, title, window_s, series, limit)
    height = PANEL_HEIGHT * len(panels) + 10
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
            f'font-family="sans-serif" font-size="13">\n<rect width="100%" height="100%" fill="white"/>\n'
            + "\n".join(body) + "\n</svg>\n")


if __name__ == "__main__":
    Path(sys.argv[2]).write_text(svg(json.loads(Path(sys.argv[1]).read_text())))
