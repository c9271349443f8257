"""local/reliability_report.py: the tables of docs/RELIABILITY.md come from a run's report."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from local import reliability_report as report

DOCUMENT = """# R
<!-- chaos-table:begin -->
old scenarios
<!-- chaos-table:end -->
<!-- attack-table:begin -->
old attacks
<!-- attack-table:end -->
<!-- downtime-table:begin -->
old downtime
<!-- downtime-table:end -->
"""


def run(tmp_path, records, *flags):
    lines = tmp_path / "report.jsonl"
    lines.write_text("".join(json.dumps(r) + "\n" for r in records))
    document = tmp_path / "R.md"
    document.write_text(DOCUMENT)
    status = report.main([str(lines), str(document), *flags])
    return status, document.read_text()


RECORDS = [
    {"scenario": "Attacks: grant replay", "tried": 1, "held": 1},
    {"scenario": "Attacks: grant replay", "tried": 1, "held": 0},
    {"scenario": "Kill points", "tried": 3, "held": 3},
]


def test_attacks_get_their_own_table(tmp_path):
    status, text = run(tmp_path, RECORDS)
    assert status == 1, "a failed attack makes the run fail"
    attacks = text.split("<!-- attack-table:begin -->")[1].split("<!-- attack-table:end -->")[0]
    scenarios = text.split("<!-- chaos-table:begin -->")[1].split("<!-- chaos-table:end -->")[0]
    assert "| grant replay | 2 | 1 | 1 |" in attacks and "Kill points" not in attacks
    assert "| Kill points | 3 | 3 | 0 |" in scenarios and "grant replay" not in scenarios
    assert "old downtime" in text, "a report without downtime lines leaves that table"


def test_attacks_only_leaves_the_other_tables(tmp_path):
    status, text = run(tmp_path, RECORDS[:1] + RECORDS[2:], "--attacks-only")
    assert status == 0
    assert "old scenarios" in text and "old downtime" in text and "old attacks" not in text
    assert "| **all** | **1** | **1** | **0** |" in text


# -- what the `chaos` marker counts (pytests/conftest.py), one try per test

def counted(monkeypatch, phases: list[tuple[str, str]], xfail: bool = False) -> list[tuple]:
    """The chaos report's lines for one test marked `chaos` whose phases ended as given."""
    import pytests.conftest as shared
    recorded: list[tuple] = []
    monkeypatch.setattr(shared.chaos, "record", lambda *line: recorded.append(line))
    item = SimpleNamespace(name="test_x", stash=pytest.Stash(),
                           get_closest_marker=lambda name: SimpleNamespace(args=["Kill points"]) if name == "chaos" else None)
    for when, outcome in phases:
        report = SimpleNamespace(when=when, passed=outcome == "passed", failed=outcome == "failed",
                                 skipped=outcome == "skipped", **({"wasxfail": ""} if xfail else {}))
        hook = shared.pytest_runtest_makereport(item, None)
        next(hook)
        with pytest.raises(StopIteration):
            hook.send(SimpleNamespace(get_result=lambda report=report: report))
    return recorded


def test_a_try_is_counted_once_its_teardown_has_run_and_held_only_when_no_phase_failed(monkeypatch):
    passed = [("setup", "passed"), ("call", "passed"), ("teardown", "passed")]
    assert counted(monkeypatch, passed) == [("Kill points", 1, 1, "test_x")]
    # The login's invariants and the leak sweep are checked in teardowns: a try they fail did not hold.
    assert counted(monkeypatch, [*passed[:2], ("teardown", "failed")]) == [("Kill points", 1, 0, "test_x")]
    assert counted(monkeypatch, [("setup", "passed"), ("call", "failed"), ("teardown", "passed")]) == [("Kill points", 1, 0, "test_x")]
    assert counted(monkeypatch, [("setup", "failed"), ("teardown", "passed")]) == [("Kill points", 1, 0, "test_x")]
    assert counted(monkeypatch, [("setup", "skipped"), ("teardown", "passed")]) == [("Kill points", 1, 0, "test_x")]
    # A strict xfail is a known open case, not a try.
    assert counted(monkeypatch, [("setup", "passed"), ("call", "skipped"), ("teardown", "passed")], xfail=True) == []
