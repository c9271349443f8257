"""The host scripts' mutation runner (ops/mutate/hosts.py) on its own: the mutants it makes, and
that its Session applies each to a scratch copy, regenerates the template from it, and puts
everything back. The covering tests themselves are replaced by a stand-in here (they need the
databases and minutes); `python3 -m ops.mutate --short` runs them for real."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from ops.mutate import hosts
from ops.mutate.core import REPO, Mutant


@pytest.mark.parametrize("path", hosts.targets())
def test_mutants_are_deterministic_one_line_edits_that_apply(path):
    made = hosts.mutants(path)
    assert made == hosts.mutants(path)
    text = (REPO / path).read_text(encoding="utf-8")
    # Mutant.key leaves the line number out (so a reviewed equivalent survives unrelated edits), but
    # tells copies of one line text apart: every key is one mutant's, or an equivalent hides others.
    assert len({m.key for m in made}) == len(made), "two mutants with one key"
    for mutant in made:
        mutated = mutant.apply(text)
        changed = [i for i, (a, b) in enumerate(zip(text.split("\n"), mutated.split("\n"), strict=True)) if a != b]
        assert changed == [mutant.line - 1], mutant
        if path.endswith(".py"):
            ast.parse(mutated)  # every Python mutant is still Python


def test_every_operator_family_is_generated():
    operators = {m.operator.split(":")[0] for path in hosts.targets() for m in hosts.mutants(path)}
    assert {"comparison", "boolean", "remove not", "bound", "remove return", "remove exit call", "exit code swapped",
            "stage name swapped", "constant", "remove guard", "remove command", "remove !", "test",
            "return status changed"} <= operators


def test_the_issues_sixth_bug_is_a_generated_mutant():
    """The verify after change_password in the single-user set, removed (issue 14)."""
    flow = (REPO / "hosts/linux/flow.sh").read_text(encoding="utf-8").split("\n")
    short = [m for m, status in hosts.short_mutants() if m.path == "hosts/linux/flow.sh"]
    assert len(short) == 1 and short[0] in hosts.mutants("hosts/linux/flow.sh")
    assert flow[short[0].line - 3:short[0].line] == ["  change_password", "  status=0", "  verify || status=$?"]
    assert short[0].replacement == ":"


def test_the_covered_files_leave_out_only_the_windows_script():
    pieces = sorted(str(p.relative_to(REPO)) for p in (REPO / "hosts").rglob("*") if p.suffix in (".sh", ".py", ".ps1"))
    assert sorted(hosts.targets()) + ["hosts/windows/sqlserver.ps1"] == sorted(pieces)
    assert set(hosts.COVERAGE) == set(hosts.targets())
    for arguments in hosts.COVERAGE.values():
        for argument in arguments:
            if argument.startswith("pytests/"):
                assert (REPO / argument.split("::")[0]).is_file(), argument


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    with hosts.Session(tmp_path_factory.mktemp("mutate"), lambda message: None) as made:
        yield made


def _first(path: str, operator: str) -> Mutant:
    return next(m for m in hosts.mutants(path) if m.operator.startswith(operator))


@pytest.mark.parametrize("path, operator", [("hosts/linux/flow.sh", "remove command"),
                                            ("hosts/linux/secret.py", "exit code swapped"),
                                            ("hosts/linux/mysql.py", "comparison")])
def test_a_mutant_reaches_the_regenerated_template_and_is_put_back(session, monkeypatch, path, operator):
    mutant = _first(path, operator)
    original = {name: (session.root / name).read_bytes() for name in hosts.GENERATED + [path]}
    in_tree = (REPO / path).read_bytes()
    seen = {}

    def tests(arguments):
        seen["arguments"] = arguments
        seen["template"] = (session.root / "template.yaml").read_text(encoding="utf-8")
        return None

    monkeypatch.setattr(session, "_pytest", tests)
    outcome = session.run(mutant)
    assert outcome.status == "survived", outcome
    assert sorted(seen["arguments"]) == sorted(session.selection(path))
    mutated_line = mutant.apply((REPO / path).read_text(encoding="utf-8")).split("\n")[mutant.line - 1].strip()
    assert seen["template"] != original["template.yaml"].decode("utf-8")
    assert mutated_line in seen["template"]
    assert {name: (session.root / name).read_bytes() for name in original} == original
    # the working tree itself is never touched
    assert (REPO / path).read_bytes() == in_tree


def test_an_interrupted_run_still_puts_the_piece_back(session, monkeypatch):
    mutant = _first("hosts/linux/flow.sh", "boolean")
    before = (session.root / mutant.path).read_bytes()

    def interrupted(arguments):
        raise KeyboardInterrupt

    monkeypatch.setattr(session, "_pytest", interrupted)
    with pytest.raises(KeyboardInterrupt):
        session.run(mutant)
    assert (session.root / mutant.path).read_bytes() == before
    assert (session.root / "template.yaml").read_bytes() == session.saved["template.yaml"]


def test_a_kill_counts_only_when_the_killer_passes_on_the_unmutated_copy(session, monkeypatch):
    mutant = _first("hosts/linux/postgres.sh", "remove guard")
    answers = {"mutated": "pytests/hosts/test_x.py::test_a[postgres]", "unmutated": None}

    def tests(arguments):
        mutated = (session.root / mutant.path).read_bytes() != session.saved[mutant.path]
        return answers["mutated" if mutated else "unmutated"]

    monkeypatch.setattr(session, "_pytest", tests)
    session.green.clear()
    killed = session.run(mutant)
    assert (killed.status, killed.killer) == ("killed", "pytests/hosts/test_x.py::test_a[postgres]")
    session.green.clear()
    answers["unmutated"] = "pytests/hosts/test_x.py::test_a[postgres]"  # red (or flaky) without the mutant
    assert session.run(mutant).status == "error"


def test_likely_killers_run_first_and_every_selected_test_still_runs(session, monkeypatch):
    mutant = _first("hosts/linux/postgres.sh", "remove guard")
    selected = session.selection(mutant.path)[:5]
    first, second, third, fourth, _ = selected
    monkeypatch.setattr(session, "earlier_killers", {mutant.key: fourth})
    monkeypatch.setattr(session, "line_killers", {(mutant.path, mutant.line): third})
    monkeypatch.setattr(session, "killers", [second, "pytests/hosts/test_gone.py::test_not_selected", third])
    ordered = session._ordered(selected, mutant)
    assert ordered[:3] == [fourth, third, second]
    assert sorted(ordered) == sorted(selected)


def test_a_mutant_bash_cannot_parse_is_unbuildable(session, monkeypatch):
    flow = (REPO / "hosts/linux/flow.sh").read_text(encoding="utf-8").split("\n")
    line = flow.index("fi") + 1
    monkeypatch.setattr(session, "_pytest", lambda arguments: pytest.fail("no test runs for an unbuildable mutant"))
    outcome = session.run(Mutant("hosts/linux/flow.sh", line, 0, "fi", "", "test only"))
    assert outcome.status == "unbuildable"


def test_a_mutants_line_group_holds_the_line_bash_traces_its_command_at(tmp_path):
    """The coverage pass knows a command by the line bash's xtrace gives it (PS4's $LINENO), and a
    mutant on the command's own line selects the tests that traced any line of its group. Inside a
    `$( ... )` over several lines bash gives the line where it closes (flow.sh's read_secret), and
    a case pattern's `)` opens nothing."""
    script = "\n".join([
        "PS4='+@L${LINENO}@ '", "set -x",
        "f() {",
        "  out=$({",
        "    printf '%s\\n' first \\",
        "      second || echo failed",
        "  } | cat) || true",
        "  case $out in",
        "    x) echo matched ;;",
        "  esac",
        "  echo after",
        "}",
        "f", ""])
    (tmp_path / "s.sh").write_text(script)
    trace = subprocess.run(["bash", str(tmp_path / "s.sh")], capture_output=True, text=True).stderr
    traced = {word: int(line.split("@")[1][1:]) for line in trace.splitlines() if line.lstrip("+").startswith("@L")
              for word in ("printf", "cat", "case", "echo") if line.split("@ ", 1)[1].startswith(word)}
    lines = script.split("\n")
    own = {word: next(n for n, line in enumerate(lines, 1) if line.strip().startswith(word) or f"| {word})" in line)
           for word in ("printf", "case")}
    groups = hosts.line_groups("s.sh", script)
    assert traced["printf"] != own["printf"], trace        # what made read_secret's mutants unselected
    assert traced["printf"] in groups[own["printf"]] and traced["cat"] in groups[own["printf"]]
    after = own["case"] + 3
    assert traced["echo"] == after and list(groups[own["case"]]) == [own["case"]] and list(groups[after]) == [after]


def test_the_first_failing_test_is_the_killer():
    spaced = "pytests/hosts/test_a.py::test_b[postgres-arn:x-4-the master secret cannot be read]"
    output = ("..F\n=== short test summary info ===\n"
              f"FAILED {spaced} - AssertionError: x - y\n"
              "FAILED pytests/hosts/test_a.py::test_c[postgres] - AssertionError: y\n")
    tests = ["pytests/hosts/test_a.py::test_c[postgres]", spaced, "pytests/hosts/test_a.py::test_b[postgres-arn:x-4-the"]
    assert hosts.first_failure(output, tests) == spaced
    assert hosts.first_failure("1 passed\n", tests) is None


def test_the_scratch_copy_holds_no_build_output(session):
    assert not any(part.startswith(".build") for p in session.root.rglob("*") for part in p.relative_to(session.root).parts)
    assert Path(session.root / "hosts/linux/flow.sh").read_bytes() == (REPO / "hosts/linux/flow.sh").read_bytes()
