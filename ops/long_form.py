"""The long forms that outlast one session of the machines they run on: where they stand, and
`make chaos` run in pieces that a fresh clone of the same code takes up.

Each session here runs on a fresh machine for a few hours, and only the repository survives it. The
interleaving proof already keeps each pair's search in docs/interleavings (pytests/e2e/
test_interleavings.py, `SavedSearch`). The rest of `make chaos` (about two hours) is kept here the
same way: one piece per test file, run by itself in its own pytest process, and its outcomes written
to docs/chaos/<piece>.json when it has ended by itself, with what it ran on: the proof's code_digest
(the function, the host scripts, the local stack, the real parts' versions), every file of the
repository the piece's process read or imported (ops/piece_reads.py), the files its subprocesses may
run (its directory, the host scripts' sources), the versions of the distributions it imported, and
its command. A piece whose record still matches all of that is not run again; any other is. Once
every piece of the set is recorded, the tables of docs/RELIABILITY.md and the paragraph saying which
run they come from are rewritten from the records (local/reliability_report.py), so the committed
figures stay those of real runs, with the runs' own lines committed beside them.

    python3 -m ops.long_form status                        where the proof and the chaos pieces stand
    python3 -m ops.long_form chaos [--only NAME]...        make chaos: the pieces not yet run, then the tables
    python3 -m ops.long_form threat-model docs/THREAT-MODEL.md   rewrites the proof's counts there

The set is CHAOS_SET; `--only` runs the pieces named (test_kill_points or kill_points), the others
waiting for a later run.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from local import reliability_report

# What decides whether a search or a piece is taken up lives with the proof that needs it most
# (the test module's code_digest). It is imported from there rather than moved, because moving it
# changes the files the digest names and would start the committed searches afresh.
from pytests.e2e.test_interleavings import ALL_PAIRS, ENGINE_NAMES, checkout, code_digest, stale_build

REPO = Path(__file__).resolve().parent.parent
# Where ops/piece_reads.py is imported from by a piece's pytest process (this repository's ops).
OPS_ROOT = Path(__file__).resolve().parent.parent
INTERLEAVINGS = REPO / "docs" / "interleavings"
CHAOS = REPO / "docs" / "chaos"
RELIABILITY = REPO / "docs" / "RELIABILITY.md"
PROOF_BEGIN = "<!--proof-status:begin-->"
PROOF_END = "<!--proof-status:end-->"
RUN_BEGIN = "<!--chaos-run:begin-->"
RUN_END = "<!--chaos-run:end-->"
ATTACK_RUN_BEGIN = "<!--attack-run:begin-->"
ATTACK_RUN_END = "<!--attack-run:end-->"
ATTACK_RUN = "As committed, the table is from the run of `make chaos` named above the table of scenarios."
ENGINE_TITLES = {"postgres": "PostgreSQL", "mariadb": "MariaDB"}
# What a caller's environment must not hand a piece: options that deselect or stop tests
# (PYTEST_ADDOPTS), the suite's own knobs (ROTATOR_FUZZ_CASES, seeds), another import path.
DROPPED_ENV_PREFIXES = ("PYTEST_", "ROTATOR_", "CHAOS_")
DROPPED_ENV = ("PYTHONPATH", "PYTHONSTARTUP")
INTERLEAVING_PIECE = "test_interleavings.py"
# The set of `make chaos`: every end-to-end test file, and the attacks of docs/THREAT-MODEL.md that
# live elsewhere (the Makefile's HOST_ATTACK_TESTS, for `make attacks`, is the same list).
HOST_ATTACK_TESTS = ["pytests/hosts/test_secret_attacks.py", "pytests/hosts/test_mysql_attacks.py",
                     "pytests/hosts/test_killed_runs.py", "pytests/hosts/test_postgres_attacks.py",
                     "pytests/hosts/test_hostile_identifiers.py", "pytests/hosts/test_sqlserver_script.py",
                     "pytests/template/test_hardening.py"]
CHAOS_SET = ["pytests/e2e", *HOST_ATTACK_TESTS]


# -- the interleaving proof, as docs/interleavings holds it


def trace_count(count: int) -> str:
    return f"{count:,} trace{'' if count == 1 else 's'}"


@dataclass(frozen=True)
class PairSearch:
    engine: str
    pair: tuple[str, str]
    state: str    # "finished", "going", "unbegun", "other code", "unreadable"
    tried: int = 0
    held: int = 0
    traces: int = 0
    commit: str = ""
    clean: bool = False

    @property
    def name(self) -> str:
        return f"{self.pair[0]} + {self.pair[1]}"

    @property
    def begun(self) -> bool:
        return self.state in ("finished", "going")


def read_search(path: Path, code: str, engine: str, pair: tuple[str, str]) -> PairSearch:
    """A pair's file as the next run of the proof would take it: on other code, or with counts that
    do not add up (SavedSearch.load's checks: tried is the traces plus the cut-short runs, held plus
    the broken schedules is tried, a finished search has nothing left), it is set aside, so none of
    its schedules count here either. The broken ones are counted from the schedules listed."""
    if not path.exists():
        return PairSearch(engine, pair, "unbegun")
    try:
        saved = json.loads(path.read_text())
        if saved["code"] != code:
            return PairSearch(engine, pair, "other code")
        search, tried, broken = saved["search"], int(saved["tried"]), len(saved["broken"])
        if tried != int(search["schedules"]) + int(search["redundant"]) or int(saved["held"]) + broken != tried \
                or (saved["finished"] and search["path"]):
            return PairSearch(engine, pair, "unreadable")
        return PairSearch(engine, pair, "finished" if saved["finished"] else "going", tried=tried, held=tried - broken,
                          traces=int(search["schedules"]), commit=str(saved["commit"]), clean=bool(saved["clean"]))
    except (ValueError, KeyError, TypeError):
        return PairSearch(engine, pair, "unreadable")


def pair_searches(directory: Path, code: str) -> list[PairSearch]:
    """Every pair of every engine, in the test's order, as its file stands."""
    return [read_search(directory / f"{engine}-{pair[0]}+{pair[1]}.json", code, engine, pair)
            for engine in ENGINE_NAMES for pair in ALL_PAIRS]


def _by_engine(searches: list[PairSearch], describe) -> str:
    """"on PostgreSQL a + b (...), c + d (...); on MariaDB ...": the searches grouped by engine."""
    parts = []
    for engine in ENGINE_NAMES:
        mine = [describe(s) for s in searches if s.engine == engine]
        if mine:
            parts.append(f"on {ENGINE_TITLES.get(engine, engine)} " + ", ".join(mine))
    return "; ".join(parts)


def dated_commits(commits: set[str]) -> list[tuple[str, str, str]]:
    """The commits the history knows, oldest first, each as (commit, its date, its short hash)."""
    dated = []
    for commit in commits:
        run = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%ct %cs %h", commit, "--"],
                             capture_output=True, text=True)
        if run.returncode == 0 and run.stdout.strip():
            seconds, day, short = run.stdout.split()
            dated.append((int(seconds), commit, day, short))
    return [(commit, day, short) for _, commit, day, short in sorted(dated)]


def earliest_commit(commits: set[str]) -> str:
    """The oldest of the commits, as "date (short hash)"; "" for none the history knows."""
    return oldest(dated_commits(commits))


def oldest(dated: list[tuple[str, str, str]]) -> str:
    """The first of dated_commits' answer, as "date (short hash)"; "" for none."""
    return f"{dated[0][1]} ({dated[0][2]})" if dated else ""


def first_commit(searches: list[PairSearch]) -> str:
    """The oldest commit that wrote one of the files with the files the digest names as committed:
    a commit whose checkout is the code the proof runs on (every file has the same digest)."""
    return earliest_commit({s.commit for s in searches if s.begun and s.clean and s.commit})


def proof_summary(searches: list[PairSearch], code_of: str) -> str:
    """Where the proof stands, in the words of docs/THREAT-MODEL.md's Open section."""
    finished = [s for s in searches if s.state == "finished"]
    going = [s for s in searches if s.state == "going"]
    unbegun = [s for s in searches if s.state == "unbegun"]
    aside = [s for s in searches if s.state in ("other code", "unreadable")]
    broken = [s for s in searches if s.held < s.tried]
    tried = sum(s.tried for s in searches)
    on = f", on the code of {code_of}" if code_of else ""
    everywhere = bool(finished) and len(finished) == len(searches)
    sentences = [] if everywhere else [f"Where it stands{on}."]
    if finished:
        where = f" on every pair of both engines{on}" if everywhere else ""
        held = "" if any(s in broken for s in finished) else ", every schedule held"
        sentences.append(f"Run to its end{where}{held}: {_by_engine(finished, lambda s: f'{s.name} ({trace_count(s.traces)})')}.")
    if going:
        held = "" if any(s in broken for s in going) else ", held"
        sentences.append(f"As far as they went{held}: {_by_engine(going, lambda s: f'{s.name} ({s.tried} schedules)')}.")
    if broken:
        sentences.append(f"Broke: {_by_engine(broken, lambda s: f'{s.name} ({s.tried - s.held} of {s.tried})')}; "
                         f"{sum(s.tried - s.held for s in broken)} of the {tried:,} schedules in all.")
    elif tried:
        # The table counts every run; a reader adding up the traces above should find the rest.
        traces = sum(s.traces for s in searches)
        rest = f" ({trace_count(traces)} and {tried - traces:,} runs the sleep sets cut short)" if tried > traces else ""
        sentences.append(f"Not one of the {tried:,} schedules broke{rest}.")
    if unbegun:
        sentences.append(f"Not yet begun: {_by_engine(unbegun, lambda s: s.name)}.")
    if aside:
        sentences.append(f"Set aside by the next run (written on other code, or counts that do not add up): "
                         f"{_by_engine(aside, lambda s: s.name)}.")
    return " ".join(sentences)


def wrap_item(text: str) -> list[str]:
    """`text` as continuation lines of a Markdown list item (two spaces in, 100 columns), never
    starting a line with "+ ", which would begin a nested list: "a + b" is kept together before its
    "+" (textwrap breaks at ASCII whitespace only, so a no-break space holds it)."""
    lines = textwrap.wrap(text.replace(" + ", "\u00a0+ "), width=98, break_on_hyphens=False, break_long_words=False)
    return ["  " + line.replace("\u00a0", " ") for line in lines]


def replace_lines_between(text: str, begin: str, end: str, lines: list[str], where: str) -> str:
    """`text` with the lines between the markers (each a line of its own) replaced by `lines`."""
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        raise SystemExit(f"{where}: the markers {begin} / {end} are missing or out of order")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    indent = head[head.rfind("\n") + 1:]
    return f"{head}{begin}\n" + "".join(f"{line}\n" for line in lines) + f"{indent}{end}{tail}"


def rewrite_threat_model(document: Path, summary: str) -> None:
    """Replaces the lines between the proof-status markers with `summary`, wrapped as the rest of
    the list item that holds them. Each marker is a line of its own: an HTML comment ends the
    item's paragraph, so the summary reads as a paragraph of the item."""
    document.write_text(replace_lines_between(document.read_text(), PROOF_BEGIN, PROOF_END, wrap_item(summary), str(document)))


# -- make chaos, in pieces

def pieces_of(paths: list[str]) -> list[Path]:
    """The chaos set's test files, in order: each directory's test_*.py, then the files named, and
    the interleaving proof, the longest, last."""
    pieces: list[Path] = []
    for given in paths:
        path = (REPO / given).resolve()
        pieces += sorted(path.glob("test_*.py")) if path.is_dir() else [path]
    pieces = list(dict.fromkeys(pieces))
    return sorted(pieces, key=lambda p: p.name == INTERLEAVING_PIECE)


def piece_name(piece: Path) -> str:
    return str(piece.relative_to(REPO))


def piece_record(piece: Path, chaos_dir: Path) -> Path:
    return chaos_dir / (piece_name(piece).removeprefix("pytests/").removesuffix(".py").replace("/", "-") + ".json")


def selected(piece: Path, only: list[str]) -> bool:
    return not only or any(piece.stem in (name, f"test_{name}", name.removesuffix(".py")) for name in only)


def subprocess_inputs(piece: Path) -> list[Path]:
    """What a piece's subprocesses may run that its own process never reads: every file under its
    directory that is no other test (scripts, fixtures), pytests' conftest, and the host scripts'
    sources (hosts/, which host tests run directly). The rest is what the process read
    (ops/piece_reads.py) and the proof's code_digest."""
    beside = [p for p in piece.parent.rglob("*")
              if p.is_file() and not p.name.startswith("test_") and "__pycache__" not in p.parts]
    hosts = [p for p in (REPO / "hosts").rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return sorted({piece, *beside, REPO / "pytests" / "conftest.py", *hosts})


def command(piece: Path, interleavings: Path) -> dict:
    """The piece's python3 arguments and the variables set for it, as recorded (paths relative to
    the repository; its chaos report, junit and reads files are given beside them)."""
    return {"arguments": ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist", "-p", "ops.piece_reads",
                          piece_name(piece)],
            "variables": {"ROTATOR_CHAOS": "full", "ROTATOR_INTERLEAVING_STATE": os.path.relpath(interleavings, REPO)}}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def listing(directory: Path) -> str:
    """A directory's entries by name, as a glob would find them (a fresh clone has no bytecode caches
    yet): the glob's result changes with them."""
    names = sorted(p.name for p in directory.iterdir() if p.name != "__pycache__" and p.suffix != ".pyc")
    return hashlib.sha256("\0".join(names).encode()).hexdigest()


def distribution_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return ""


def load_record(piece: Path, chaos_dir: Path) -> dict | None:
    path = piece_record(piece, chaos_dir)
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        if isinstance(record, dict) and isinstance(record.get("inputs"), dict):
            return record
    except ValueError:
        pass
    print(f"{path.relative_to(REPO)} cannot be read: its piece runs again", file=sys.stderr)
    return None


def current(record: dict | None, piece: Path, code: str, interleavings: Path) -> bool:
    """Whether the record is of a run on what is here now: the same code, command, python3, files
    (every one it read, and every one its subprocesses may run), directory listings and
    distributions."""
    if record is None or record.get("code") != code or record.get("command") != command(piece, interleavings) \
            or record.get("python") != sys.version:
        return False
    inputs = record["inputs"]
    if any(str(p.relative_to(REPO)) not in inputs for p in subprocess_inputs(piece)):
        return False
    if any(not (REPO / name).is_file() or sha256(REPO / name) != digest for name, digest in inputs.items()):
        return False
    if any(not (REPO / name).is_dir() or listing(REPO / name) != digest for name, digest in record.get("listings", {}).items()):
        return False
    return all(distribution_version(name) == version for name, version in record.get("distributions", {}).items())


def piece_env(variables: dict[str, str], report: Path, reads: Path) -> dict[str, str]:
    """The caller's environment without what could change what a piece runs, with its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(DROPPED_ENV_PREFIXES) and k not in DROPPED_ENV}
    return {**env, **variables, "ROTATOR_INTERLEAVING_STATE": str(REPO / variables["ROTATOR_INTERLEAVING_STATE"]),
            "ROTATOR_CHAOS_REPORT": str(report), "CHAOS_PIECE_READS": str(reads), "PYTHONPATH": str(OPS_ROOT)}


def run_piece(piece: Path, code: str, chaos_dir: Path, interleavings: Path) -> dict | None:
    """Runs one piece in its own pytest process, long form, and records its outcomes once it has
    ended by itself with every test run (passed or failed, a failed check in a fixture's teardown
    counting as failed). Not recorded, so run again whole: a piece stopped by a signal or
    interrupted, one pytest could not collect or run (exit 2 to 5), one with a test skipped or
    whose setup failed (it never ran), one whose code or files changed while it ran."""
    name = piece_name(piece)
    chaos_dir.mkdir(parents=True, exist_ok=True)
    target = piece_record(piece, chaos_dir)
    with open(target.with_name(f".{target.stem}.lock"), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"another run runs {name}: left to it", file=sys.stderr)
            return None
        run = command(piece, interleavings)
        with tempfile.TemporaryDirectory(prefix="chaos-piece-") as scratch:
            report, reads = Path(scratch) / "report.jsonl", Path(scratch) / "reads.json"
            started = time.time()
            status = subprocess.run([sys.executable, *run["arguments"]], cwd=REPO,
                                    env=piece_env(run["variables"], report, reads)).returncode
            took = round(time.time() - started)
            if status not in (0, 1):
                print(f"{name} did not run to its end (pytest exit {status}): not recorded", file=sys.stderr)
                return None
            read = json.loads(reads.read_text())
            counts = read["tests"]
            if counts["tests"] == 0 or counts["error"] or counts["skipped"] or counts["collection errors"]:
                print(f"{name} did not run every test ({counts}): not recorded", file=sys.stderr)
                return None
            outcomes = [json.loads(line) for line in report.read_text().splitlines() if line.strip()] if report.exists() else []
        # What the piece wrote itself is its output, not an input.
        files = sorted({*read["files"], *(str(p.relative_to(REPO)) for p in subprocess_inputs(piece))} - set(read["written"]))
        changed = [f for f in files if not (REPO / f).is_file() or (REPO / f).stat().st_mtime > started]
        if changed or code_digest() != code or stale_build() is not None:
            print(f"the code changed while {name} ran ({(changed or ['the code digest'])[0]}): not recorded", file=sys.stderr)
            return None
        commit, clean = checkout()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", *files], capture_output=True, text=True).stdout
        record = {"piece": name, "code": code, "command": run,
                  "inputs": {f: sha256(REPO / f) for f in files}, "listings": {d: listing(REPO / d) for d in read["listings"]},
                  "distributions": read["distributions"], "python": read["python"], "cores": os.cpu_count(),
                  "commit": commit, "clean": clean and not dirty.strip(), "exit": status, "tests": counts,
                  "seconds": took, "ended": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "outcomes": outcomes}
        fd, partial = tempfile.mkstemp(dir=chaos_dir, prefix=f".{target.stem}.", suffix=".part")
        os.fchmod(fd, 0o644)    # a file of the repository, not a private one
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(record, indent=1) + "\n")
        os.replace(partial, target)
        return record


def proof_runs(interleavings: Path) -> bool:
    """Whether another process explores a pair there now (holds a SavedSearch lock)."""
    for path in interleavings.glob("*.lock"):
        with open(path, "a") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
    return False


def run_paragraph(records: list[dict]) -> str:
    """Which run the tables come from, for docs/RELIABILITY.md (between the chaos-run markers)."""
    failed = [r["piece"] for r in records if r["exit"] != 0]
    tests = sum(r["tests"]["tests"] for r in records)
    seconds = sum(r["seconds"] for r in records)
    ends = sorted(r["ended"][:16].replace("T", " ") for r in records)
    cores = sorted({r["cores"] for r in records})
    sweeps = sum(1 for r in records for o in r["outcomes"] if o.get("scenario", "").startswith("Leaks:"))
    unclean = [r["piece"] for r in records if not r["clean"]]
    # The pieces share the code (their digest), not always their own tests: a piece mended after
    # others ran is recorded at a later commit, and reproducing it takes that commit's tests.
    commits = dated_commits({r["commit"] for r in records if r["clean"]})
    on = oldest(commits)
    pieces = Counter(r["commit"] for r in records)
    pieces_at = [f"{short} ({pieces[commit]} piece{'' if pieces[commit] == 1 else 's'})" for commit, _, short in commits]
    return " ".join([
        f"As committed, the tables hold the **long form**: `make chaos` in {len(records)} pieces"
        f"{f' on the code of {on}' if on else ''}, each piece's outcomes committed in docs/chaos.",
        *([f"Each piece ran the tests of the commit its record names: {', '.join(pieces_at)}."]
          if len(commits) > 1 else []),
        f"The pieces ended between {ends[0]} and {ends[-1]} UTC, after {seconds // 3600} h {seconds % 3600 // 60} min of "
        f"running in all, on machines of {' or '.join(map(str, cores))} cores with other work beside them; the interleaving "
        "proof's pairs are counted from docs/interleavings, where `make interleavings` ran them before (their time is not "
        "in that figure).",
        f"{len(records) - len(failed)} of the {len(records)} pieces passed every one of their tests ({tests:,} tests in all"
        f"{'; failed: ' + ', '.join(failed) if failed else ''}).",
        *([f"Run with uncommitted changes to what they ran on: {', '.join(unclean)}."] if unclean else []),
        f"The leak sweep ran at the end of each piece that started the local stack ({sweeps} sweeps), over what that piece "
        "produced."])


def rewrite_reliability(records: list[dict], document: Path) -> int:
    """The tables of docs/RELIABILITY.md (local/reliability_report.py) over the records' outcomes,
    in the set's order, and the paragraphs saying which run they come from. Refused unless the
    records feed every table: a table no line feeds would keep another run's figures."""
    outcomes = [o for r in records for o in r["outcomes"]]
    kinds = {"downtime" if o.get("kind") == "downtime" else
             "attack" if o["scenario"].startswith(reliability_report.ATTACK_PREFIX) else "scenario" for o in outcomes}
    if kinds != {"downtime", "attack", "scenario"}:
        print(f"the pieces recorded no {', '.join(sorted({'downtime', 'attack', 'scenario'} - kinds))} outcome: "
              f"{document.name} is left as it was", file=sys.stderr)
        return 1
    text = document.read_text()
    for begin, end in ((reliability_report.BEGIN, reliability_report.END), (reliability_report.ATTACKS_BEGIN,
                       reliability_report.ATTACKS_END), (reliability_report.DOWNTIME_BEGIN, reliability_report.DOWNTIME_END)):
        if begin not in text or end not in text:
            raise SystemExit(f"{document}: the markers {begin} / {end} are missing")
    paragraph = textwrap.wrap(run_paragraph(records), width=100, break_on_hyphens=False, break_long_words=False)
    text = replace_lines_between(text, RUN_BEGIN, RUN_END, paragraph, str(document))
    text = replace_lines_between(text, ATTACK_RUN_BEGIN, ATTACK_RUN_END, [ATTACK_RUN], str(document))
    fd, report = tempfile.mkstemp(prefix="chaos-", suffix=".jsonl")
    with os.fdopen(fd, "w") as f:
        f.writelines(json.dumps(outcome) + "\n" for outcome in outcomes)
    try:
        document.write_text(text)
        return reliability_report.main([report, str(document)])
    finally:
        os.unlink(report)


def chaos(paths: list[str], only: list[str], chaos_dir: Path = CHAOS, document: Path = RELIABILITY,
          interleavings: Path = INTERLEAVINGS) -> int:
    if (why := stale_build()) is not None:
        print(why, file=sys.stderr)
        return 2
    code = code_digest()
    pieces = pieces_of(paths)
    unfinished = False
    # Each piece's record on this code: the one found current, or the one its run just wrote.
    records: dict[Path, dict | None] = {}
    for piece in pieces:
        record = load_record(piece, chaos_dir)
        if not current(record, piece, code, interleavings):
            record = None
            if selected(piece, only) and piece.name == INTERLEAVING_PIECE and proof_runs(interleavings):
                # Its pairs would meet the other process's locks and fail: it waits for a later run.
                print(f"== {piece_name(piece)}: make interleavings explores pairs in {interleavings}; this piece waits", flush=True)
                unfinished = True
            elif selected(piece, only):
                print(f"== {piece_name(piece)}", flush=True)
                record = run_piece(piece, code, chaos_dir, interleavings)
                unfinished |= record is None
        records[piece] = record
    waiting = [piece_name(p) for p, r in records.items() if r is None]
    failed = [r["piece"] for r in records.values() if r is not None and r["exit"] != 0]
    if failed:
        print(f"pieces that failed: {', '.join(failed)}", file=sys.stderr)
    if waiting:
        print(f"{len(waiting)} of {len(pieces)} pieces still to run on this code: {', '.join(waiting)}")
        return 1 if failed or unfinished else 0
    status = rewrite_reliability([r for r in records.values() if r is not None], document)
    return 1 if failed or unfinished or status else 0


# -- status

def status(paths: list[str], chaos_dir: Path = CHAOS, interleavings: Path = INTERLEAVINGS) -> str:
    code = code_digest()
    searches = pair_searches(interleavings, code)
    lines = ["The interleaving proof (docs/interleavings):"]
    for s in searches:
        counts = f"  {s.tried} tried, {s.held} held, {trace_count(s.traces)}" if s.begun else ""
        lines.append(f"  {s.engine:8} {s.name:22} {s.state}{counts}")
    lines += wrap_item(proof_summary(searches, first_commit(searches)))
    if paths:
        lines.append("make chaos, by piece (docs/chaos):")
        for piece in pieces_of(paths):
            record = load_record(piece, chaos_dir)
            if record is None:
                state = "to run"
            elif not current(record, piece, code, interleavings):
                state = "recorded on other code or files: to run again"
            else:
                failed = sum(int(o.get("tried", 0)) - int(o.get("held", 0)) for o in record["outcomes"])
                state = (f"exit {record['exit']}, {record['tests']['tests']} tests ({record['tests']['failed']} failed), "
                         f"{len(record['outcomes'])} outcomes ({failed} failed), {record['seconds'] // 60} min, {record['ended']}")
            lines.append(f"  {piece_name(piece)}: {state}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m ops.long_form", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status")
    commands.add_parser("chaos").add_argument("--only", action="append", default=[])
    commands.add_parser("threat-model").add_argument("document", type=Path)
    args = parser.parse_args(argv)
    # Always the whole set: tables rewritten from a part of it would drop the rest's rows.
    if args.command == "status":
        print(status(CHAOS_SET))
        return 0
    if args.command == "chaos":
        return chaos(CHAOS_SET, args.only)
    searches = pair_searches(INTERLEAVINGS, code_digest())
    if aside := [f"{s.engine} {s.name}" for s in searches if s.state in ("other code", "unreadable")]:
        print(f"not rewritten: {', '.join(aside)} would be set aside by the next run of the proof (written on other code "
              "than this checkout's, or counts that do not add up); run it first (make interleavings)", file=sys.stderr)
        return 1
    rewrite_threat_model(args.document, proof_summary(searches, first_commit(searches)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
