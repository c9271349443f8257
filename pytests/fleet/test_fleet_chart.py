"""The chart of a `make fleet` run (local/fleet_chart.py): valid SVG, and its lines say what the run's
timeline says (the finished rotations reach the fleet's size, the refused polls are drawn)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from local.fleet_chart import svg
from local.stack import REPO

NS = {"svg": "http://www.w3.org/2000/svg"}


def run_with(buckets: list[dict]) -> dict:
    return {"rotations": 3, "completed": 3, "lockouts": 0, "window_s": 20.0,
            "options": {"quotas": True, "poll_rate": 10.0, "concurrency": 2},
            "timeline": {"bucket_s": 10, "buckets": buckets}}


def test_the_chart_draws_the_runs_timeline():
    chart = ET.fromstring(svg(run_with([
        {"t": 0, "completed": 1, "failed": 0, "ssm_calls": {"ListCommandInvocations": 120}, "ssm_throttled": {"ListCommandInvocations": 30},
         "busy_functions": 2.0},
        {"t": 10, "completed": 2, "failed": 0, "ssm_calls": {"ListCommandInvocations": 40}, "ssm_throttled": {}, "busy_functions": 0.5},
    ])))
    lines = chart.findall("svg:polyline", NS)
    assert len(lines) == 4                      # finished; polls made and refused; processes at work
    finished = [tuple(map(float, p.split(","))) for p in lines[0].get("points").split()]
    # The dashed limits, one a panel: all secrets, the assumed poll rate, the reserved concurrency.
    all_secrets, poll_rate, concurrency = (float(line.get("y1")) for line in chart.findall("svg:line", NS)
                                           if line.get("stroke-dasharray"))
    # The finished rotations climb 0, 1, 3: the last point is on the "all secrets" line (3).
    assert [round(y, 1) for _, y in finished][0] > finished[1][1] > finished[2][1]
    assert finished[-1][1] == all_secrets
    # 120 polls in 10 s is 12 a second, above the assumed 10; 30 refused is 3 a second.
    made = [float(p.split(",")[1]) for p in lines[1].get("points").split()]
    refused = [float(p.split(",")[1]) for p in lines[2].get("points").split()]
    assert made[0] < poll_rate < made[1]                      # higher on the page is a smaller y
    assert refused[0] > made[0] and refused[1] > refused[0]   # none refused in the second bucket
    busy = [float(p.split(",")[1]) for p in lines[3].get("points").split()]
    assert busy[0] == concurrency and busy[1] > busy[0]       # two processes, then half of one


def test_docs_fleet_svg_is_the_chart_of_the_committed_run():
    """Regenerate with `python3 -m local.fleet_chart docs/fleet.json docs/fleet.svg`."""
    assert (REPO / "docs" / "fleet.svg").read_text() == svg(json.loads((REPO / "docs" / "fleet.json").read_text()))
