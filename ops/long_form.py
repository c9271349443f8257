"""The long forms that outlast one session of the machines they run on: where they stand, and
`make chaos` run in pieces that a fresh clone of the same code takes up.

Each session here runs on a fresh machine for a few hours, and only the repository survives it. The
interleaving proof already keeps each pair's search in docs/interleavings (pytests/e2e/
test_interleavings.py, `SavedSearch`). The rest of `make chaos` (about two hours) is kept here the same
way: one piece per test file, run by itself in its own pytest process, and its outcomes written to
docs/chaos/<piece>.json when it ends, with the digest of what it ran on. A piece recorded on the same
digest is not run again; one stopped part way is run again whole; one recorded on other code is run
again. Once every piece of the set is recorded on the current code, the tables of docs/RELIABILITY.md
are rewritten from their outcomes (local/reliability_report.py), so the committed figures stay those
of real runs, now with the runs' own lines committed beside them.

    python3 -m ops.long_form status PATH...                 where the proof and the chaos pieces stand
    python3 -m ops.long_form chaos [--only TEXT]... PATH... make chaos: the pieces not yet run, then the tables
    python3 -m ops.long_form threat-model docs/THREAT-MODEL.md   rewrites the proof's counts there

PATH: the chaos set, test files or directories of them (the Makefile's); `--only` runs the pieces
whose path contains one of the TEXTs, the others waiting for a later run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from local import reliability_report

# What decides whether a search or a piece is taken up lives with the proof that needs it most
# (the test module's code_digest). It is imported from there rather than moved, because moving it
# changes the files the digest names and would start the committed searches afresh.
from pytests.e2e.test_interleavings import ALL_PAIRS, ENGINE_NAMES, checkout, code_digest, stale_build

REPO = Path(__file__).resolve().parent.parent
INTERLEAVINGS = REPO / "docs" / "interleavings"
CHAOS = REPO / "docs" / "chaos"
RELIABILITY = REPO / "docs" / "RELIABILITY.md"
PROOF_BEGIN = "<!--proof-status:begin-->"
PROOF_END = "<!--proof-status:end-->"
ENGINE_TITLES = {"postgres": "PostgreSQL", "mariadb": "MariaDB"}


# -- the interleaving proof, as docs/interleavings holds it

@dataclass(frozen=True)
class PairSearch:
    engine: str
    pair: tuple[str, str]
    begun: bool
    on_this_code: bool
    finished: bool = False
    tried: int = 0
    held: int = 0
    traces: int = 0
    commit: str = ""
    clean: bool = False

    @property
    def name(self) -> str:
        return f"{self.pair[0]} + {self.pair[1]}"


def pair_searches(directory: Path, code: str) -> list[PairSearch]:
    """Every pair of every engine, in the test's order, as its file stands. A file written on other
    code counts as not begun (the next run sets it aside): its schedules prove nothing here."""
    searches = []
    for engine in ENGINE_NAMES:
        for pair in ALL_PAIRS:
            path = directory / f"{engine}-{pair[0]}+{pair[1]}.json"
            if not path.exists():
                searches.append(PairSearch(engine, pair, begun=False, on_this_code=True))
                continue
            saved = json.loads(path.read_text())
            if saved["code"] != code:
                searches.append(PairSearch(engine, pair, begun=False, on_this_code=False))
                continue
            searches.append(PairSearch(engine, pair, begun=True, on_this_code=True, finished=bool(saved["finished"]),
                                       tried=int(saved["tried"]), held=int(saved["held"]),
                                       traces=int(saved["search"]["schedules"]), commit=saved["commit"],
                                       clean=bool(saved["clean"])))
    return searches


def _by_engine(searches: list[PairSearch], describe) -> str:
    """"on PostgreSQL a + b (...), c + d (...); on MariaDB ...": the searches grouped by engine."""
    parts = []
    for engine in ENGINE_NAMES:
        mine = [describe(s) for s in searches if s.engine == engine]
        if mine:
            parts.append(f"on {ENGINE_TITLES.get(engine, engine)} " + ", ".join(mine))
    return "; ".join(parts)


def first_commit(searches: list[PairSearch]) -> str:
    """The oldest commit that wrote one of the files with the files the digest names as committed:
    a commit whose checkout is the code the proof runs on (every file has the same digest)."""
    commits = {s.commit for s in searches if s.begun and s.clean and s.commit}
    if not commits:
        return ""
    dated = []
    for commit in commits:
        run = subprocess.run(["git", "-C", str(REPO), "log", "-1", "--format=%ct %cs %h", commit], capture_output=True, text=True)
        if run.returncode == 0 and run.stdout.strip():
            seconds, day, short = run.stdout.split()
            dated.append((int(seconds), f"{day} ({short})"))
    return min(dated)[1] if dated else ""


def proof_summary(searches: list[PairSearch], code_of: str) -> str:
    """Where the proof stands, in the words of docs/THREAT-MODEL.md's Open section."""
    finished = [s for s in searches if s.finished]
    going = [s for s in searches if s.begun and not s.finished]
    unbegun = [s for s in searches if not s.begun]
    broken = [s for s in searches if s.held < s.tried]
    tried = sum(s.tried for s in searches)
    on = f", on the code of {code_of}" if code_of else ""
    sentences = [f"Run to its end on every pair of both engines{on}." if not going and not unbegun else f"Where it stands{on}."]
    if finished:
        held = "" if any(s in broken for s in finished) else ", every schedule held"
        sentences.append(f"Run to its end{held}: {_by_engine(finished, lambda s: f'{s.name} ({s.traces} traces)')}.")
    if going:
        held = "" if any(s in broken for s in going) else ", held"
        sentences.append(f"As far as they went{held}: {_by_engine(going, lambda s: f'{s.name} ({s.tried} schedules)')}.")
    if broken:
        sentences.append(f"Broke: {_by_engine(broken, lambda s: f'{s.name} ({s.tried - s.held} of {s.tried})')}; "
                         f"{sum(s.tried - s.held for s in broken)} of the {tried:,} schedules in all.")
    else:
        sentences.append(f"Not one of the {tried:,} schedules broke.")
    if unbegun:
        sentences.append(f"Not yet begun: {_by_engine(unbegun, lambda s: s.name)}.")
    return " ".join(sentences)


def rewrite_threat_model(document: Path, summary: str) -> None:
    """Replaces the lines between the proof-status markers with `summary`, wrapped as the rest of
    the list item that holds them (two spaces in, 100 columns). Each marker is a line of its own: an
    HTML comment ends the item's paragraph, so the summary reads as a paragraph of the item."""
    text = document.read_text()
    if PROOF_BEGIN not in text or PROOF_END not in text:
        raise SystemExit(f"{document}: the markers {PROOF_BEGIN} / {PROOF_END} are missing")
    head, rest = text.split(PROOF_BEGIN, 1)
    _, tail = rest.split(PROOF_END, 1)
    lines = textwrap.wrap(summary, width=98, break_on_hyphens=False, break_long_words=False)
    document.write_text(f"{head}{PROOF_BEGIN}\n" + "".join(f"  {line}\n" for line in lines) + f"  {PROOF_END}{tail}")


# -- make chaos, in pieces

def pieces_of(paths: list[str]) -> list[Path]:
    """The chaos set's test files, in order: each directory's test_*.py (the interleaving proof, the
    longest, last), then the files named."""
    pieces: list[Path] = []
    for given in paths:
        path = (REPO / given).resolve()
        if path.is_dir():
            found = sorted(path.glob("test_*.py"), key=lambda p: (p.name == "test_interleavings.py", p.name))
            pieces += found
        else:
            pieces.append(path)
    return list(dict.fromkeys(pieces))


def piece_record(piece: Path, chaos_dir: Path = CHAOS) -> Path:
    relative = piece.relative_to(REPO / "pytests")
    return chaos_dir / ("-".join(relative.with_suffix("").parts) + ".json")


def piece_files(piece: Path) -> list[Path]:
    """What a piece's outcome depends on besides the code of `code_digest`: the test file, what its
    directory shares with it (conftest, helpers, fixtures: every file there that is no other test),
    pytests' own conftest, and the host scripts' sources (hosts/, which the host tests run directly)."""
    beside = sorted(p for p in piece.parent.iterdir() if p.is_file() and not p.name.startswith("test_") and p.suffix != ".pyc")
    hosts = sorted(p for p in (REPO / "hosts").rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    return [piece, *beside, REPO / "pytests" / "conftest.py", *hosts]


def piece_digest(piece: Path, code: str) -> str:
    digest = hashlib.sha256(code.encode())
    for path in piece_files(piece):
        digest.update(f"{path.relative_to(REPO)}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def recorded(piece: Path, digest: str, chaos_dir: Path = CHAOS) -> dict | None:
    """The piece's record when it ran to its end on this digest, else None."""
    path = piece_record(piece, chaos_dir)
    if not path.exists():
        return None
    saved = json.loads(path.read_text())
    return saved if saved.get("digest") == digest else None


def run_piece(piece: Path, digest: str, code: str, chaos_dir: Path = CHAOS, interleavings: Path = INTERLEAVINGS) -> dict | None:
    """Runs one piece in its own pytest process, long form, and records its outcomes once it has
    ended by itself (whatever its tests' verdict). A piece stopped by a signal, or one the code
    changed under, is not recorded: it runs again whole."""
    fd, report = tempfile.mkstemp(prefix="chaos-piece-", suffix=".jsonl")
    os.close(fd)
    env = {**os.environ, "ROTATOR_CHAOS": "full", "ROTATOR_CHAOS_REPORT": report, "ROTATOR_INTERLEAVING_STATE": str(interleavings)}
    started = time.time()
    try:
        status = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(piece)],
                                cwd=REPO, env=env).returncode
        outcomes = [json.loads(line) for line in Path(report).read_text().splitlines() if line.strip()]
    finally:
        os.unlink(report)
    if status < 0:
        print(f"{piece.relative_to(REPO)} was stopped (signal {-status}): not recorded", file=sys.stderr)
        return None
    if piece_digest(piece, code_digest()) != digest or stale_build() is not None:
        print(f"the code changed while {piece.relative_to(REPO)} ran: not recorded", file=sys.stderr)
        return None
    commit, clean = checkout()
    record = {"piece": str(piece.relative_to(REPO)), "digest": digest, "code": code, "commit": commit, "clean": clean,
              "exit": status, "seconds": round(time.time() - started), "ended": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "outcomes": outcomes}
    chaos_dir.mkdir(parents=True, exist_ok=True)
    target = piece_record(piece, chaos_dir)
    partial = target.with_name(f".{target.name}.part")
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.replace(target)
    return record


def rewrite_tables(records: list[dict], document: Path) -> int:
    """local/reliability_report.py over the pieces' outcomes, in the set's order."""
    fd, report = tempfile.mkstemp(prefix="chaos-", suffix=".jsonl")
    with os.fdopen(fd, "w") as f:
        for record in records:
            f.writelines(json.dumps(outcome) + "\n" for outcome in record["outcomes"])
    try:
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
    failed = False
    for piece in pieces:
        name = str(piece.relative_to(REPO))
        digest = piece_digest(piece, code)
        if (record := recorded(piece, digest, chaos_dir)) is None:
            if only and not any(text in name for text in only):
                continue
            print(f"== {name}", flush=True)
            record = run_piece(piece, digest, code, chaos_dir, interleavings)
            if record is None:
                return 1
        failed |= record["exit"] != 0
    records = [recorded(piece, piece_digest(piece, code), chaos_dir) for piece in pieces]
    waiting = [str(p.relative_to(REPO)) for p, r in zip(pieces, records, strict=True) if r is None]
    if waiting:
        print(f"{len(waiting)} of {len(pieces)} pieces still to run on this code: {', '.join(waiting)}")
        return 1 if failed else 0
    status = rewrite_tables([r for r in records if r is not None], document)
    return 1 if failed or status else 0


# -- status

def status(paths: list[str], chaos_dir: Path = CHAOS, interleavings: Path = INTERLEAVINGS) -> str:
    code = code_digest()
    searches = pair_searches(interleavings, code)
    lines = ["The interleaving proof (docs/interleavings):"]
    for s in searches:
        if s.begun:
            state = "finished" if s.finished else "under way"
        else:
            state = "not begun" if s.on_this_code else "on other code: starts afresh"
        counts = f"  {s.tried} tried, {s.held} held, {s.traces} traces" if s.begun else ""
        lines.append(f"  {s.engine:8} {s.name:22} {state}{counts}")
    lines.append(f"  {proof_summary(searches, first_commit(searches))}")
    if paths:
        lines.append("make chaos, by piece (docs/chaos):")
        for piece in pieces_of(paths):
            record = recorded(piece, piece_digest(piece, code), chaos_dir)
            if record is None:
                state = "to run"
            else:
                failed = sum(int(o.get("tried", 0)) - int(o.get("held", 0)) for o in record["outcomes"])
                state = (f"exit {record['exit']}, {len(record['outcomes'])} outcomes, {failed} failed, "
                         f"{record['seconds'] // 60} min, {record['ended']}")
            lines.append(f"  {piece.relative_to(REPO)}: {state}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m ops.long_form", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status").add_argument("paths", nargs="*")
    run = commands.add_parser("chaos")
    run.add_argument("--only", action="append", default=[])
    run.add_argument("paths", nargs="+")
    commands.add_parser("threat-model").add_argument("document", type=Path)
    args = parser.parse_args(argv)
    if args.command == "status":
        print(status(args.paths))
        return 0
    if args.command == "chaos":
        return chaos(args.paths, args.only)
    searches = pair_searches(INTERLEAVINGS, code_digest())
    rewrite_threat_model(args.document, proof_summary(searches, first_commit(searches)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
