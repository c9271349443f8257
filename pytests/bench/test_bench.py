"""`make bench` still works: the benchmark run once with a count of 1, end to end (both functions
rotate on the local stack, both signers sign, both packages are measured), into a temporary
directory. Benchmarks are not timed tests: no figure is compared with a target here."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SAMPLE_KEYS = {"cold_start_ms", "cold_start_cpu_ms", "peak_rss_mib", "first_create_ms", "warm_create_ms",
               "cold_rotation_ms", "warm_rotation_ms", "ssm_reaction_ms"}
FIGURES = ["Cold start: process start", "Cold start, CPU time", "Peak RSS", "`createSecret`, first invocation",
           "`createSecret`, warm", "Full rotation (4 steps), cold", "Full rotation (4 steps), warm",
           "SSM reaction", "SigV4 signatures", "Deployment package (zip), peer with its SDK",
           "Files in the package", "Deployment package (zip), peer's handler alone"]


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    package = subprocess.run(["make", "--no-print-directory", "package"], cwd=REPO, capture_output=True, text=True)
    if package.returncode != 0:
        pytest.fail(f"make package failed:\n{package.stdout[-3000:]}\n{package.stderr[-3000:]}", pytrace=False)
    out = tmp_path_factory.mktemp("bench")
    # Its own process: the benchmark starts a LocalStack, and moto allows one per process.
    run = subprocess.run([sys.executable, "-m", "bench.run", "--runs", "1", "--sigv4-signatures", "200",
                          "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=1200)
    if run.returncode != 0:
        pytest.fail(f"the benchmark failed:\n{run.stdout[-3000:]}\n{run.stderr[-5000:]}", pytrace=False)
    return out


def test_every_sample_is_a_measurement(bench_run: Path) -> None:
    results = json.loads((bench_run / "benchmarks.json").read_text())
    for name in ("ours", "peer"):
        [run] = results["samples"][name]
        assert set(run) == SAMPLE_KEYS
        # setSecret and testSecret of the cold and the warm rotation.
        assert len(run["ssm_reaction_ms"]) == 4
        values = [v for k in SAMPLE_KEYS for v in (run[k] if isinstance(run[k], list) else [run[k]])]
        assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in values), run
        # Causality, not speed: a step answers after its command ends, a rotation outlasts its parts.
        assert all(v > 0 for v in values), run
        assert run["cold_rotation_ms"] > run["first_create_ms"]
        assert run["warm_rotation_ms"] > run["warm_create_ms"]
    assert results["sigv4"]["requests"] == 3
    assert all(rate > 0 for rates in results["sigv4"]["rates"].values() for rate in rates)


def test_report_has_every_figure_for_both(bench_run: Path) -> None:
    report = (bench_run / "BENCHMARKS.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith("| ") and not line.startswith("| figure")]
    for figure in FIGURES:
        matching = [r for r in rows if r.startswith(f"| {figure}")]
        assert len(matching) == 1, f"no single row for {figure!r} in:\n" + "\n".join(rows)
        cells = [c.strip() for c in matching[0].strip("|").split("|")]
        ours, peer, ratio = cells[1], cells[2], cells[3]
        for cell in (ours, peer, ratio):
            assert any(ch.isdigit() for ch in cell), f"{figure}: {cells}"
    for section in ("## The machine", "## Rerun", "make bench", "benchmarks.svg"):
        assert section in report


def test_chart_is_an_svg_with_every_run(bench_run: Path) -> None:
    root = ET.parse(bench_run / "benchmarks.svg").getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    dots = root.findall("{http://www.w3.org/2000/svg}circle")
    # One dot per run, per function, per panel (cold start, its CPU time, warm rotation).
    assert len(dots) == 3 * 2 * 1
