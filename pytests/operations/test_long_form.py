"""ops/long_form.py: where the long forms stand, and `make chaos` in pieces that a later run (a fresh
clone of the same code) takes up. The pieces are real pytest processes on small test files; what
names the code (the proof's code_digest, the checkout) is a stand-in, as a unit test of one module."""

from __future__ import annotations

import json
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
    assert (other.begun, other.on_this_code, other.tried) == (False, False, 0)

    summary = proof_summary(searches, "2026-12-06 (dda9ae1)")
    assert summary.startswith("Where it stands, on the code of 2026-12-06 (dda9ae1). ")
    assert "Run to its end, every schedule held: on PostgreSQL set + set (4 traces)." in summary
    # A pair that broke is not said to have held, nor are the pairs beside it.
    assert "As far as they went: on PostgreSQL set + test (5 schedules); on MariaDB rollback + rollback (10 schedules)." in summary
    assert "Broke: on PostgreSQL set + test (1 of 5); 1 of the 31 schedules in all." in summary
    unbegun = summary.split("Not yet begun: ", 1)[1]
    assert unbegun.startswith("on PostgreSQL set + rollback, set + finish, set + cancel, rollback + rollback, ")
    assert "test + test" in unbegun.split("; on MariaDB")[0]
    assert unbegun.endswith("finish + cancel, cancel + cancel.")
    assert "rollback + rollback" not in unbegun.split("; on MariaDB ")[1]


def test_a_proof_run_to_its_end_everywhere_says_so_and_lists_nothing_as_begun_or_going():
    searches = [PairSearch(engine, pair, begun=True, on_this_code=True, finished=True, tried=3, held=3, traces=2)
                for engine in long_form.ENGINE_NAMES for pair in long_form.ALL_PAIRS]
    summary = proof_summary(searches, "2026-12-08 (abc1234)")
    assert summary.startswith("Run to its end on every pair of both engines, on the code of 2026-12-08 (abc1234). ")
    assert "Not one of the 90 schedules broke." in summary
    assert "Not yet begun" not in summary and "As far as" not in summary


def test_the_threat_models_counts_are_rewritten_between_their_markers_only(tmp_path):
    document = tmp_path / "THREAT-MODEL.md"
    before = "# Threats\n\n- Interleavings: the long form runs in pieces.\n  <!--proof-status:begin-->\n"
    after = "  <!--proof-status:end-->\n  Earlier, on older code: none.\n- Next item.\n"
    document.write_text(before + "  stale counts\n" + after)
    summary = "Where it stands. " + " ".join(f"pair {n} + {n} ({n} traces)," for n in range(30)) + " done."
    rewrite_threat_model(document, summary)
    rewrite_threat_model(document, summary)
    text = document.read_text()
    assert text.startswith(before) and text.endswith(after)
    body = text[len(before):-len(after)].splitlines()
    assert len(body) > 2 and all(line.startswith("  ") and len(line) <= 100 for line in body)
    assert " ".join(line.strip() for line in body) == summary

    document.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        rewrite_threat_model(document, summary)


# -- make chaos in pieces, on a repository of its own

@pytest.fixture
def repository(tmp_path, monkeypatch):
    """A repository with a chaos set of small test files; its code is named by the file `code`."""
    (tmp_path / "pytests" / "suite").mkdir(parents=True)
    (tmp_path / "pytests" / "conftest.py").write_text("")
    (tmp_path / "hosts").mkdir()
    (tmp_path / "hosts" / "flow.sh").write_text("true\n")
    (tmp_path / "code").write_text("one")
    (tmp_path / "RELIABILITY.md").write_text("# Reliability\n\n<!-- chaos-table:begin -->\nold\n<!-- chaos-table:end -->\n\n"
                                             "<!-- attack-table:begin -->\n<!-- attack-table:end -->\n\n"
                                             "<!-- downtime-table:begin -->\n<!-- downtime-table:end -->\n")
    monkeypatch.setattr(long_form, "REPO", tmp_path)
    monkeypatch.setattr(long_form, "code_digest", lambda: (tmp_path / "code").read_text())
    monkeypatch.setattr(long_form, "stale_build", lambda: None)
    monkeypatch.setattr(long_form, "checkout", lambda: ("abc1234", True))
    return tmp_path


def piece(repository: Path, name: str, outcomes: list[tuple[str, int, int]], *, passes: bool = True, then: str = "") -> None:
    """A test file that records `outcomes` in the chaos report, as pytests/e2e/chaos.py does, counts
    its runs in runs-<name>, passes or fails, and runs `then` at its end."""
    (repository / "pytests" / "suite" / f"{name}.py").write_text(textwrap.dedent(f"""
        import json, os, pathlib, signal

        def test_it():
            runs = pathlib.Path({str(repository)!r}) / "runs-{name}"
            runs.write_text(str(int(runs.read_text() if runs.exists() else 0) + 1))
            with open(os.environ["ROTATOR_CHAOS_REPORT"], "a") as report:
                for scenario, tried, held in {outcomes!r}:
                    report.write(json.dumps({{"scenario": scenario, "tried": tried, "held": held, "detail": ""}}) + "\\n")
            {then or "pass"}
            assert {passes}
        """))


def runs(repository: Path, name: str) -> int:
    path = repository / f"runs-{name}"
    return int(path.read_text()) if path.exists() else 0


def chaos(repository: Path, only: list[str] | None = None) -> int:
    return long_form.chaos(["pytests/suite"], only or [], chaos_dir=repository / "docs" / "chaos",
                           document=repository / "RELIABILITY.md", interleavings=repository / "docs" / "interleavings")


def test_chaos_runs_each_piece_once_on_the_same_code_and_writes_the_tables_when_every_piece_has_run(repository):
    piece(repository, "test_a", [("Kill points", 2, 2), ("Kill points", 1, 1)])
    piece(repository, "test_b", [("AWS faults", 2, 1)], passes=False)
    document = repository / "RELIABILITY.md"
    untouched = document.read_text()

    # Some pieces in one run, the rest in another: the tables wait for the whole set.
    assert chaos(repository, only=["test_a"]) == 0
    assert (runs(repository, "test_a"), runs(repository, "test_b")) == (1, 0)
    assert document.read_text() == untouched
    record = json.loads((repository / "docs" / "chaos" / "suite-test_a.json").read_text())
    assert (record["piece"], record["exit"], record["commit"]) == ("pytests/suite/test_a.py", 0, "abc1234")
    assert [o["tried"] for o in record["outcomes"]] == [2, 1]

    # The next run takes up the set where it stood: the failed piece is recorded as failed.
    assert chaos(repository) == 1
    assert (runs(repository, "test_a"), runs(repository, "test_b")) == (1, 1)
    table = document.read_text()
    assert "| Kill points | 3 | 3 | 0 |" in table and "| AWS faults | 2 | 1 | 1 |" in table
    assert "| **all** | **5** | **4** | **1** |" in table and "old" not in table

    # A piece whose test file changed runs again, alone; once the code changes, every piece does.
    piece(repository, "test_a", [("Kill points", 4, 4)])
    assert chaos(repository) == 1
    assert (runs(repository, "test_a"), runs(repository, "test_b")) == (2, 1)
    assert "| Kill points | 4 | 4 | 0 |" in document.read_text()
    (repository / "code").write_text("two")
    chaos(repository)
    assert (runs(repository, "test_a"), runs(repository, "test_b")) == (3, 2)
    (repository / "hosts" / "flow.sh").write_text("false\n")
    chaos(repository)
    assert (runs(repository, "test_a"), runs(repository, "test_b")) == (4, 3)


def test_a_piece_stopped_or_run_on_code_that_changed_under_it_is_not_recorded(repository):
    chaos_dir = repository / "docs" / "chaos"
    piece(repository, "test_a", [("Kill points", 1, 1)], then="os.kill(os.getpid(), signal.SIGKILL)")
    assert chaos(repository) == 1
    assert runs(repository, "test_a") == 1 and not (chaos_dir / "suite-test_a.json").exists()

    piece(repository, "test_a", [("Kill points", 1, 1)], then=f"pathlib.Path({str(repository / 'code')!r}).write_text('changed')")
    assert chaos(repository) == 1
    assert runs(repository, "test_a") == 2 and not (chaos_dir / "suite-test_a.json").exists()

    # On the changed code, run to its end: recorded, and not run again.
    piece(repository, "test_a", [("Kill points", 1, 1)])
    assert chaos(repository) == 0
    assert chaos(repository) == 0
    assert runs(repository, "test_a") == 3 and (chaos_dir / "suite-test_a.json").exists()
