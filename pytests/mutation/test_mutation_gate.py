"""The mutation gate (ops/mutate, `make mutate`) in `make test`: its short form kills known bugs in a
scratch copy without touching the working tree, its generator still makes issue 14's known bugs, and
the gate fails a report state with a file under the threshold, unfinished or never run."""

import fcntl
import hashlib
import importlib
import json
import subprocess
import sys

import pytest

from ops.mutate import core, swift
from ops.mutate.__main__ import RUNNER_NAMES, file_digest, load_runners, main

ROOT = core.REPO


def test_the_short_form_kills_known_bugs_in_a_scratch_copy():
    runners = load_runners(list(RUNNER_NAMES))
    watched = [path for runner in runners for path in runner.targets()]
    before = {path: hashlib.sha256((ROOT / path).read_bytes()).hexdigest() for path in watched}
    result = subprocess.run([sys.executable, "-m", "ops.mutate", "--short"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    expected = sum(len(runner.short_mutants()) for runner in runners)
    assert result.stdout.count("as expected") == expected, result.stdout
    after = {path: hashlib.sha256((ROOT / path).read_bytes()).hexdigest() for path in watched}
    assert after == before, "the short form left a covered file of the working tree changed"


# Issue 14's Swift bugs, as the generator must make them: (file, the line, original, replacement).
ISSUE_14_BUGS = [
    ("Sources/Rotation/Rotator.swift", "guard stages.contains(SecretStage.pending) else {",
     "stages.contains(SecretStage.pending)", "true"),
    ("Sources/Rotation/HostRunner.swift", 'let succeeded = invocation.status == "Success" && invocation.responseCode == 0',
     " && invocation.responseCode == 0", ""),
    ("Sources/Rotation/HostRunner.swift", "if clock.nowMilliseconds + wait >= budgetEnd {", " >= ", " > "),
    ("Sources/Rotation/Identifiers.swift", '&& parts[1].unicodeScalars.allSatisfy { ("0"..."9").contains($0) || ("a"..."f").contains($0) }',
     '"f"', '"g"'),
    ("Sources/SigV4/Canonical.swift", "if isBlank(byte) && (previousBlank || byte == 0x09) { clean = false; break }",
     " || byte == 0x09", ""),
]


@pytest.mark.parametrize(("path", "line", "original", "replacement"), ISSUE_14_BUGS)
def test_the_generator_makes_each_known_swift_bug(path, line, original, replacement):
    lines = (ROOT / path).read_text(encoding="utf-8").split("\n")
    made = [m for m in swift.mutants(path) if lines[m.line - 1].strip() == line
            and m.original == original and m.replacement == replacement]
    assert len(made) == 1, [(m.line, m.original, m.replacement) for m in swift.mutants(path) if lines[m.line - 1].strip() == line]


def test_the_generator_leaves_comments_and_messages_alone():
    source = '/// a < b && c\nlet x = "a == b || !c" // d >= e\nlet y = a >= b\n'
    masked, _ = swift.mask(source)
    assert masked.split("\n")[0].strip() == ""
    assert "==" not in masked.split("\n")[1] and ">=" not in masked.split("\n")[1]
    assert ">=" in masked.split("\n")[2]


def outcome(path, status, n, run="2026-01-01T00:00:00Z/test"):
    mutant = core.Mutant(path, 1, n, "x", "y", "test rule")
    return {"kind": "outcome", "run": run, "path": path, "key": f"{path}-{n}",
            **core.Outcome(mutant, status, killer="T" if status == "killed" else "").to_json()}


def write_state(tmp_path, statuses_by_path, planned=None):
    state = tmp_path / "mutation.jsonl"
    lines = []
    for path, statuses in statuses_by_path.items():
        lines.append({"kind": "file", "run": "2026-01-01T00:00:00Z/test", "path": path, "mutants": planned or len(statuses),
                      "digest": file_digest(path), "at": "2026-01-01T00:00:00Z"})
        lines += [outcome(path, status, n) for n, status in enumerate(statuses)]
    state.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return state


def gate(tmp_path, state):
    report = tmp_path / "MUTATION.md"
    status = main(["--report-only", "--state", str(state), "--report", str(report)])
    return status, report.read_text()


def covered():
    return [path for runner in load_runners(list(RUNNER_NAMES)) for path in runner.targets()]


def test_the_gate_passes_only_when_every_covered_file_is_at_the_threshold(tmp_path):
    # 9 of 10 killed is the threshold itself; an unbuildable mutant is not counted.
    at_threshold = {path: ["killed"] * 9 + ["survived", "unbuildable"] for path in covered()}
    status, report = gate(tmp_path, write_state(tmp_path, at_threshold))
    assert status == 0, report
    assert report.count("| 90% | ok |") == len(at_threshold)


def test_the_gate_fails_a_file_under_the_threshold(tmp_path):
    paths = covered()
    state = {path: ["killed"] * 10 for path in paths}
    state[paths[0]] = ["killed"] * 8 + ["survived"] * 2
    status, report = gate(tmp_path, write_state(tmp_path, state))
    assert status == 1
    assert f"| {paths[0]} | 2026-01-01T00:00:00Z | 10 | 8 | 2 | 0 | 0 | 0 | 80% | under threshold |" in report
    assert report.count(f"| {paths[0]}:1 | test rule |") == 2


def test_the_gate_fails_a_file_never_run_or_run_in_part(tmp_path):
    paths = covered()
    never = {path: ["killed"] * 10 for path in paths[1:]}
    status, report = gate(tmp_path, write_state(tmp_path, never))
    assert status == 1
    assert f"| {paths[0]} | | | | | | | | | never run |" in report

    partial = {path: ["killed"] * 10 for path in paths}
    status, report = gate(tmp_path, write_state(tmp_path, partial, planned=11))
    assert status == 1
    assert "partial (10 of 11 run)" in report


@pytest.mark.parametrize("runner", RUNNER_NAMES)
def test_a_second_run_in_the_same_scratch_copy_stops_before_touching_it(runner, tmp_path):
    """Two runs in one scratch directory would apply their mutants to each other's copy (a host
    mutant's run removes and rewrites the whole copy): the second stops, and the first's files stay."""
    module = importlib.import_module(f"ops.mutate.{runner}")
    lock_name = f"{runner}.lock"
    (tmp_path / runner).mkdir()
    marker = tmp_path / runner / "the first run's file"
    marker.write_text("kept")
    with (tmp_path / lock_name).open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RuntimeError, match="another mutation run is using"):
            with module.Session(tmp_path, lambda message: None):
                pass
    assert marker.read_text() == "kept"
