"""The fault suite's two sizes and its report.

`make test` runs every scenario in its short form; `make chaos` sets ROTATOR_CHAOS=full for the
long form and ROTATOR_CHAOS_REPORT to a file that collects one line per scenario outcome, from
which local/reliability_report.py writes the table of docs/RELIABILITY.md.

A test counts as one try of its scenario when it is marked `@pytest.mark.chaos("<scenario>")`
(held when it passed); a test that runs many cases itself calls `record` with its own counts.
The downtime measurement (pytests/e2e/test_downtime.py) adds its figures with `record_downtime`.
"""

from __future__ import annotations

import json
import os
import time

FULL = os.environ.get("ROTATOR_CHAOS") == "full"


def scale(short: int, full: int) -> int:
    """How many cases a scenario runs: `short` in `make test`, `full` in `make chaos`."""
    return full if FULL else short


def record(scenario: str, tried: int, held: int, detail: str = "") -> None:
    """Adds one scenario's counts to the chaos report (a no-op when no report is being written)."""
    _write({"scenario": scenario, "tried": tried, "held": held, "detail": detail})


def record_downtime(strategy: str, engine: str, rotations: int, connections: int, failed: int, cache_s: float) -> None:
    """Adds one downtime measurement to the chaos report (a line of kind "downtime")."""
    _write({"kind": "downtime", "strategy": strategy, "engine": engine, "rotations": rotations,
            "connections": connections, "failed": failed, "cache_s": cache_s})


def _write(line: dict) -> None:
    path = os.environ.get("ROTATOR_CHAOS_REPORT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({**line, "at": time.time()}) + "\n")
