"""ops/long_form.py: where the long forms stand, and `make chaos` in pieces that a later run (a fresh
clone of the same code) takes up. The pieces are real pytest processes on small test files; what
names the code (the proof's code_digest, the checkout) is a stand-in, as a unit test of one module."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from ops import long_form
from ops.long_form import PairSearch, pair_searches, proof_summary, rewrite_threat_model

CODE = "c0de"


def saved_search(directory: Path, name: str, *, code: str = CODE, finished: bool, tried: int, held: int, traces: int) -> None:
    """A pair's file as test_interleavings.py's SavedSearch writes it (the fields this module reads)."""
    (directory / f"{name}.json").write_text(json.dumps({
        "code": code, "commit": "", "clean": False, "versions": [], "finished": finished, "tried": tried, "held": held,
        "broken": ["a schedule"] * (tried - held), "search": {"schedules": traces, "redundant": tried - traces, "path": []}}))


def test_the_proofs_summary_counts_each_pair_as_its_file_stands_on_this_code(tmp_path):
    saved_search(tmp_path, "postgres-set+set", finished=True, tried=16, held=16, traces=4)
    saved_search(tmp_path, "mariadb-rollback+rollback", finished=False, tried=10, held=10, traces=7)
    saved_search(tmp_path, "postgres-set+test", finished=False, tried=5, held=4, traces=3)
    # Written on other code: the next run sets it aside, so none of its schedules count.
    saved_search(tmp_path, "postgres-test+test", code="other", finished=True, tried=16, held=16, traces=4)
    searches = pair_searches(tmp_path, CODE)
    assert len(searches) == 30
    other = next(s for s in searches if s.engine == "postgres" and s.pair == ("test", "test"))
    assert (other.state, other.begun, other.tried) == ("other code", False, 0)

    summary = proof_summary(searches, "2026-12-06 (dda9ae1)")
    assert summary.startswith("Where it stands, on the code of 2026-12-06 (dda9ae1). ")
    assert "Run to its end, every schedule held: on PostgreSQL set + set (4 traces)." in summary
    # A pair that broke is not said to have held, nor are the pairs beside it.
    assert "As far as they went: on PostgreSQL set + test (5 schedules); on MariaDB rollback + rollback (10 schedules)." in summary
    assert "Broke: on PostgreSQL set + test (1 of 5); 1 of the 31 schedules in all." in summary
    unbegun, aside = summary.split("Not yet begun: ", 1)[1].split(" Set aside by the next run")
    assert unbegun.startswith("on PostgreSQL set + rollback, set + finish, set + cancel, rollback + rollback, ")
    assert "test + test" not in unbegun.split("; on MariaDB")[0]
    assert unbegun.endswith("finish + cancel, cancel + cancel.")
    assert "rollback + rollback" not in unbegun.split("; on MariaDB ")[1]
    assert aside == " (written on other code, or counts that do not add up): on PostgreSQL test + test."


def test_a_search_whose_counts_do_not_add_up_counts_for_nothing(tmp_path):
    """As SavedSearch.load sets such a file aside (a merge of two clones' runs, an edit), so does the
    summary: none of its schedules are said to have held."""
    for name, change in [("postgres-set+set", {"broken": ["a schedule"]}),            # held + broken != tried
                         ("postgres-set+test", {"tried": 17, "held": 17}),            # tried != traces + cut short
                         ("postgres-set+finish", {"search": {"schedules": 4, "redundant": 12, "path": [[0]]}})]:  # finished, not done
        saved_search(tmp_path, name, finished=True, tried=16, held=16, traces=4)
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    (tmp_path / "postgres-test+test.json").write_text("{")
    searches = {f"{s.engine}-{s.pair[0]}+{s.pair[1]}": s for s in pair_searches(tmp_path, CODE)}
    for name in ("postgres-set+set", "postgres-set+test", "postgres-set+finish", "postgres-test+test"):
        assert (searches[name].state, searches[name].tried) == ("unreadable", 0), name
    summary = proof_summary(list(searches.values()), "")
    assert "held" not in summary and "schedules" not in summary
    assert "Set aside by the next run (written on other code, or counts that do not add up): on PostgreSQL set + set, " \
           "set + test, set + finish, test + test." in summary


def test_a_proof_run_to_its_end_everywhere_says_so_and_lists_nothing_as_begun_or_going():
    searches = [PairSearch(engine, pair, "finished", tried=3, held=3, traces=2)
                for engine in long_form.ENGINE_NAMES for pair in long_form.ALL_PAIRS]
    summary = proof_summary(searches, "2026-12-08 (abc1234)")
    assert summary.startswith("Run to its end on every pair of both engines, on the code of 2026-12-08 (abc1234), "
                              "every schedule held: on PostgreSQL set + set (2 traces), ")
    assert summary.count("Run to its end") == 1
    assert "Not one of the 90 schedules broke (60 traces and 30 runs the sleep sets cut short)." in summary
    assert "Not yet begun" not in summary and "As far as" not in summary and "Set aside" not in summary


def test_the_threat_models_counts_are_rewritten_between_their_markers_only(tmp_path):
    document = tmp_path / "THREAT-MODEL.md"
    before = "# Threats\n\n- Interleavings: the long form runs in pieces.\n  <!--proof-status:begin-->\n"
    after = "  <!--proof-status:end-->\n  Earlier, on older code: none.\n- Next item.\n"
    document.write_text(before + "  stale counts\n" + after)
    summary = "Where it stands. " + " ".join(f"pair {n} + {n * 7} ({n} traces)," for n in range(60)) + " done."
    rewrite_threat_model(document, summary)
    rewrite_threat_model(document, summary)
    text = document.read_text()
    assert text.startswith(before) and text.endswith(after)
    body = text[len(before):-len(after)].splitlines()
    assert len(body) > 2 and all(line.startswith("  ") and len(line) <= 100 for line in body)
    # A line that began with "+ " would start a nested list in the item.
    assert not any(line.startswith("  + ") for line in body)
    assert " ".join(line.strip() for line in body) == summary

    document.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        rewrite_threat_model(document, summary)


def test_the_threat_models_counts_are_not_rewritten_while_a_search_is_on_other_code(tmp_path, monkeypatch):
    document = tmp_path / "THREAT-MODEL.md"
    document.write_text("- Item.\n  <!--proof-status:begin-->\n  old\n  <!--proof-status:end-->\n")
    monkeypatch.setattr(long_form, "INTERLEAVINGS", tmp_path)
    monkeypatch.setattr(long_form, "code_digest", lambda: CODE)
    saved_search(tmp_path, "postgres-set+set", code="other", finished=True, tried=16, held=16, traces=4)
    assert long_form.main(["threat-model", str(document)]) == 1
    assert "  old\n" in document.read_text()
    saved_search(tmp_path, "postgres-set+set", finished=True, tried=16, held=16, traces=4)
    assert long_form.main(["threat-model", str(document)]) == 0
    assert "every schedule held: on PostgreSQL set + set (4 traces)." in " ".join(document.read_text().split())


# -- make chaos in pieces, on a repository of its own

RELIABILITY = """# Reliability

<!--chaos-run:begin-->
An older run.
<!--chaos-run:end-->

<!--attack-run:begin-->
An older run of the attacks.
<!--attack-run:end-->

<!-- chaos-table:begin -->
old
<!-- chaos-table:end -->

<!-- attack-table:begin -->
<!-- attack-table:end -->

<!-- downtime-table:begin -->
<!-- downtime-table:end -->
"""


@pytest.fixture
def repository(tmp_path, monkeypatch):
    """A repository (a git checkout) with a chaos set of small test files in pytests/suite; its
    code is named by the file `code`. The pieces count their runs outside it, in tmp_path/runs."""
    repo = tmp_path / "repo"
    (repo / "pytests" / "suite").mkdir(parents=True)
    (repo / "pytests" / "other").mkdir()
    (repo / "pytests" / "conftest.py").write_text("")
    (repo / "pytests" / "other" / "shared.py").write_text("LIMIT = 1\n")
    (repo / "pytests" / "suite" / "helper.sh").write_text("true\n")
    (repo / "hosts").mkdir()
    (repo / "hosts" / "flow.sh").write_text("true\n")
    (repo / "data.txt").write_text("one\n")
    (repo / "code").write_text("one")
    (repo / "RELIABILITY.md").write_text(RELIABILITY)
    (repo / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (repo / "workflows").mkdir()
    (repo / "workflows" / "ci.yml").write_text("")
    (tmp_path / "runs").mkdir()
    monkeypatch.setattr(long_form, "REPO", repo)
    monkeypatch.setattr(long_form, "code_digest", lambda: (repo / "code").read_text())
    monkeypatch.setattr(long_form, "stale_build", lambda: None)
    monkeypatch.setattr(long_form, "checkout", lambda: ("", True))
    return repo


ALL_KINDS = [("Kill points", 2, 2), ("Attacks: a swapped username", 1, 1), ("downtime", 0, 0)]


def piece(repository: Path, name: str, outcomes=ALL_KINDS, *, passes: bool = True, then: str = "", tests: int = 1) -> None:
    """A test file (tests test_0 ... of it) whose first test records `outcomes` in the chaos report
    as pytests/e2e/chaos.py does ("downtime": a downtime measurement), reads data.txt, globs
    workflows/, writes output.txt and reads it back, imports pytests/other/shared.py, counts its
    runs, passes or fails, and runs `then` at its end."""
    body = textwrap.dedent(f"""
        import json, os, pathlib, signal, sys
        sys.path.insert(0, "pytests/other")
        import shared

        def test_0():
            runs = pathlib.Path({str(repository.parent / "runs" / name)!r})
            runs.write_text(str(int(runs.read_text() if runs.exists() else 0) + 1))
            pathlib.Path("data.txt").read_text()
            sorted(pathlib.Path("workflows").glob("*.yml"))
            pathlib.Path("output.txt").write_text("made by the piece")
            pathlib.Path("output.txt").read_text()
            with open(os.environ["ROTATOR_CHAOS_REPORT"], "a") as report:
                for scenario, tried, held in {outcomes!r}:
                    line = {{"scenario": scenario, "tried": tried, "held": held, "detail": ""}}
                    if scenario == "downtime":
                        line = {{"kind": "downtime", "strategy": "single user", "engine": "postgres", "rotations": 2,
                                 "connections": 10, "failed": 0, "cache_s": 2}}
                    report.write(json.dumps(line) + "\\n")
            {then or "pass"}
            assert {passes}
        """)
    body += "".join(f"\ndef test_{n}():\n    assert shared.LIMIT\n" for n in range(1, tests))
    (repository / "pytests" / "suite" / f"{name}.py").write_text(body)


def runs(repository: Path, name: str) -> int:
    path = repository.parent / "runs" / name
    return int(path.read_text()) if path.exists() else 0


def chaos(repository: Path, only: list[str] | None = None) -> int:
    return long_form.chaos(["pytests/suite"], only or [], chaos_dir=repository / "docs" / "chaos",
                           document=repository / "RELIABILITY.md", interleavings=repository / "docs" / "interleavings")


def record_of(repository: Path, name: str) -> dict:
    return json.loads((repository / "docs" / "chaos" / f"suite-{name}.json").read_text())


def test_chaos_runs_each_piece_once_on_the_same_code_and_writes_the_tables_when_every_piece_has_run(repository):
    piece(repository, "test_a", tests=2)
    piece(repository, "test_b", [("AWS faults", 2, 1)], passes=False)
    document = repository / "RELIABILITY.md"

    # Some pieces in one run, the rest in another: the tables wait for the whole set.
    assert chaos(repository, only=["a"]) == 0
    assert (runs(repository, "test_a"), runs(repository, "test_b")) == (1, 0)
    assert document.read_text() == RELIABILITY
    record = record_of(repository, "test_a")
    assert (record["piece"], record["exit"], record["tests"]) == ("pytests/suite/test_a.py", 0, {
        "tests": 2, "passed": 2, "failed": 0, "error": 0, "skipped": 0, "xfail": 0, "collection errors": 0})
    assert [o.get("tried") for o in record["outcomes"]] == [2, 1, None]
    # What it ran on: what it read and imported, wherever it lies, what its subprocesses may run,
    # and the distributions it imported.
    assert {"pytests/suite/test_a.py", "pytests/other/shared.py", "data.txt", "pytests/suite/helper.sh", "hosts/flow.sh",
            "pytests/conftest.py", "pyproject.toml"} <= set(record["inputs"])
    assert "workflows" in record["listings"]
    # What it wrote itself is no input (or it could never be recorded: it changed while it ran).
    assert "output.txt" not in record["inputs"] and "code" not in record["inputs"]
    assert not any(name.startswith("docs/chaos") for name in record["inputs"])
    assert "pytest" in record["distributions"]

    # The next run takes up the set where it stood: the failed piece is recorded as failed.
    assert chaos(repository) == 1
    assert (runs(repository, "test_a"), runs(repository, "test_b")) == (1, 1)
    text = document.read_text()
    assert "| Kill points | 2 | 2 | 0 |" in text and "| AWS faults | 2 | 1 | 1 |" in text
    assert "| **all** | **4** | **3** | **1** |" in text and "| a swapped username | 1 | 1 | 0 |" in text
    assert "| single user | postgres | 2 | 10 | 0 | 2 |" in text
    assert "An older run." not in text and "old\n" not in text
    paragraph = " ".join(text.split("<!--chaos-run:begin-->")[1].split("<!--chaos-run:end-->")[0].split())
    assert "`make chaos` in 2 pieces" in paragraph
    assert "1 of the 2 pieces passed every one of their tests (3 tests in all; failed: pytests/suite/test_b.py)." in paragraph
    assert "An older run of the attacks." not in text and "the run of `make chaos` named above" in text

    report = long_form.status(["pytests/suite"], repository / "docs" / "chaos", repository / "docs" / "interleavings")
    assert "  pytests/suite/test_a.py: exit 0, 2 tests (0 failed), 3 outcomes (0 failed), 0 min, " in report
    assert "  pytests/suite/test_b.py: exit 1, 1 tests (1 failed), 1 outcomes (1 failed), 0 min, " in report
    assert "  postgres set + set" in report and "Not yet begun: on PostgreSQL set + set, " in " ".join(report.split())

    # Whatever the piece ran on changes, it runs again, alone: its test file, a module it imports
    # from elsewhere, a file it reads, a script beside it, the host scripts; then the code.
    piece(repository, "test_a", [("Kill points", 4, 4), *ALL_KINDS[1:]], tests=2)
    assert "pytests/suite/test_a.py: recorded on other code or files: to run again" in \
        long_form.status(["pytests/suite"], repository / "docs" / "chaos", repository / "docs" / "interleavings")
    assert chaos(repository) == 1
    assert (runs(repository, "test_a"), runs(repository, "test_b")) == (2, 1)
    assert "| Kill points | 4 | 4 | 0 |" in document.read_text()
    for changed, expected in [("pytests/other/shared.py", (3, 2)), ("data.txt", (4, 3)), ("pytests/suite/helper.sh", (5, 4)),
                              ("hosts/flow.sh", (6, 5)), ("pyproject.toml", (7, 6)), ("workflows/deploy.yml", (8, 7)),
                              ("code", (9, 8))]:
        path = repository / changed
        path.write_text((path.read_text() if path.exists() else "") + "\n")
        chaos(repository)
        assert (runs(repository, "test_a"), runs(repository, "test_b")) == expected, changed
    # And so does a piece run by another python3, or with distributions of other versions.
    for other in ({"python": "3.0.0"}, {"distributions": {"pytest": "0.0"}}):
        record = record_of(repository, "test_a")
        (repository / "docs" / "chaos" / "suite-test_a.json").write_text(json.dumps({**record, **other}))
        runs_before = runs(repository, "test_a")
        chaos(repository)
        assert runs(repository, "test_a") == runs_before + 1, other


def test_a_piece_that_did_not_run_every_test_to_its_end_is_not_recorded(repository, monkeypatch):
    chaos_dir = repository / "docs" / "chaos"
    cases = [("stopped by a signal", {"then": "os.kill(os.getpid(), signal.SIGKILL)"}),
             ("interrupted", {"then": "os.kill(os.getpid(), signal.SIGINT)"}),
             ("with its code changed under it", {"then": f"pathlib.Path({str(repository / 'code')!r}).write_text('changed')"}),
             # (by another process: what the piece's own process writes is its output)
             ("with a file it read changed under it", {"then": "import subprocess; subprocess.run(['sh', '-c', 'echo x >> data.txt'])"}),
             ("with a skipped test", {"then": "import pytest; pytest.skip('no tree-sitter')"})]
    for number, (case, options) in enumerate(cases, 1):
        piece(repository, "test_a", **options)
        if case == "interrupted":
            # After a test that passed: pytest's own counts then show one test, run and passed.
            piece(repository, "test_a")
            with (repository / "pytests" / "suite" / "test_a.py").open("a") as f:
                # As Ctrl-C would end it, in the last test's teardown: every test that ran passed, and
                # only pytest's exit status says the run was cut short. (Raised, not signalled: xdist's
                # workers, whose children the test's pieces are in `make test`, ignore SIGINT.)
                f.write("\nimport pytest\n\n@pytest.fixture\ndef stop():\n    yield\n    raise KeyboardInterrupt\n"
                        "\ndef test_1(stop):\n    pass\n")
        assert chaos(repository) == 1, case
        assert runs(repository, "test_a") == number and not (chaos_dir / "suite-test_a.json").exists(), case
    (repository / "pytests" / "suite" / "test_a.py").write_text("import no_such_module\n")
    assert chaos(repository) == 1 and not (chaos_dir / "suite-test_a.json").exists(), "not collected"

    # A caller's environment does not choose the piece's tests, nor its long form.
    monkeypatch.setenv("PYTEST_ADDOPTS", "-k test_1 -x")
    monkeypatch.setenv("ROTATOR_CHAOS", "")
    piece(repository, "test_a", tests=3, then="assert os.environ['ROTATOR_CHAOS'] == 'full'")
    assert chaos(repository) == 0 and chaos(repository) == 0
    assert runs(repository, "test_a") == len(cases) + 1
    assert record_of(repository, "test_a")["tests"]["tests"] == 3


def test_the_proofs_piece_waits_while_another_process_explores_a_pair_and_the_others_run(repository, monkeypatch):
    """make chaos may run beside make interleavings in one checkout (each local stack keeps its own
    state): the other pieces run, but the proof's piece, whose pairs would meet the other process's
    locks and fail, is left for a later run, not recorded as failed."""
    monkeypatch.setattr(long_form, "INTERLEAVING_PIECE", "test_proof.py")
    (repository / "docs" / "interleavings").mkdir(parents=True)
    piece(repository, "test_a")
    piece(repository, "test_proof")
    with open(repository / "docs" / "interleavings" / "postgres-set+set.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert chaos(repository) == 1
        assert (runs(repository, "test_a"), runs(repository, "test_proof")) == (1, 0)
        assert not (repository / "docs" / "chaos" / "suite-test_proof.json").exists()
    assert chaos(repository) == 0
    assert (runs(repository, "test_a"), runs(repository, "test_proof")) == (1, 1)


def test_a_check_failed_after_a_test_counts_as_a_failure_and_a_strict_xfail_as_no_try(repository):
    """A fixture's teardown holds the login's invariants and the leak sweep: a piece whose teardown
    check fails is recorded as failed, not left to run again until it passes."""
    piece(repository, "test_a", then="import pytest")
    with (repository / "pytests" / "suite" / "test_a.py").open("a") as f:
        f.write(textwrap.dedent("""
            import pytest

            @pytest.fixture
            def checked():
                yield
                assert False, "an invariant broken"

            def test_checked(checked):
                pass

            @pytest.mark.xfail(strict=True, reason="an open case")
            def test_open():
                assert False
            """))
    assert chaos(repository) == 1
    record = record_of(repository, "test_a")
    assert record["exit"] == 1
    assert {k: record["tests"][k] for k in ("tests", "passed", "failed", "xfail")} == {"tests": 3, "passed": 1, "failed": 1, "xfail": 1}
    assert chaos(repository) == 1 and runs(repository, "test_a") == 1


def test_the_makefiles_attack_tests_are_the_chaos_sets(repository):
    makefile = (Path(long_form.__file__).parent.parent / "Makefile").read_text()
    listed = makefile.split("HOST_ATTACK_TESTS :=", 1)[1].split("\nE2E_ATTACK_TESTS", 1)[0]
    assert listed.replace("\\", " ").split() == long_form.HOST_ATTACK_TESTS


def test_chaos_runs_nothing_on_a_build_older_than_its_sources(repository, monkeypatch):
    piece(repository, "test_a")
    monkeypatch.setattr(long_form, "stale_build", lambda: "Sources/x.swift is newer than .build/release/rotator")
    assert chaos(repository) == 2
    assert runs(repository, "test_a") == 0


def commits_on(repo: Path, days: list[str]) -> list[str]:
    """A commit of `repo` (a new git repository) dated each day, in that order; their short hashes."""
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    commits = []
    for day in days:
        env = {**os.environ, "GIT_COMMITTER_DATE": f"{day}T12:00:00Z", "GIT_AUTHOR_DATE": f"{day}T12:00:00Z"}
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", day], check=True, env=env)
        commits.append(subprocess.run([*git[:3], "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip())
    return commits


def test_the_earliest_commit_is_the_oldest_by_date(tmp_path, monkeypatch):
    monkeypatch.setattr(long_form, "REPO", tmp_path)
    commits = commits_on(tmp_path, ["2026-12-01", "2026-11-20", "2026-12-03"])
    assert long_form.earliest_commit(set(commits)) == f"2026-11-20 ({commits[1]})"
    assert long_form.earliest_commit({"0" * 40}) == ""


def test_the_run_names_every_commit_whose_tests_a_piece_ran(tmp_path, monkeypatch):
    """Pieces share the code, not always their tests: one mended after the others ran is recorded
    at a later commit, and the paragraph must name it, or reproducing the run at the commit named
    alone would run the old test."""
    monkeypatch.setattr(long_form, "REPO", tmp_path)
    older, newer = commits_on(tmp_path, ["2026-12-01", "2026-12-02"])

    def record(name: str, commit: str) -> dict:
        return {"piece": name, "exit": 0, "tests": {"tests": 1}, "seconds": 60, "ended": "2026-12-02T10:00:00Z",
                "cores": 2, "outcomes": [], "clean": True, "commit": commit}

    paragraph = long_form.run_paragraph([record("a", older), record("b", newer), record("c", newer)])
    assert f"on the code of 2026-12-01 ({older})" in paragraph
    assert f"Each piece ran the tests of the commit its record names: {older} (1 piece), {newer} (2 pieces)." \
        in paragraph
    assert "Each piece ran the tests" not in long_form.run_paragraph([record("a", newer), record("b", newer)])


def test_the_tables_are_left_as_they_were_when_the_pieces_feed_only_some_of_them(repository):
    """A table no outcome feeds would keep another run's figures beside this run's."""
    piece(repository, "test_a", ALL_KINDS[:2])
    assert chaos(repository) == 1
    assert (repository / "RELIABILITY.md").read_text() == RELIABILITY
