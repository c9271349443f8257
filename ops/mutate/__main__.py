"""python3 -m ops.mutate: run the mutation runners, record the outcomes, write docs/MUTATION.md, gate.

    python3 -m ops.mutate                      every runner, every covered file (make mutate)
    python3 -m ops.mutate --runner swift       one runner
    python3 -m ops.mutate --only PATH ...      these files only (their earlier outcomes are replaced)
    python3 -m ops.mutate --short              the runners' short_mutants(), each must get its expected status
    python3 -m ops.mutate --report-only        no run: the report and the gate from the recorded outcomes
    python3 -m ops.mutate --list               the mutants, not run

Outcomes are appended to the state file as they come (`.local-state/mutation.jsonl`), so an
interrupted run keeps what it measured; the report takes, for each file, the outcomes of the last
run that started it. A mutant whose key is in equivalents.json is equivalent, whenever that entry
was written. Exit status: 0 when every covered file was run to the end and scores at least
THRESHOLD, 1 otherwise (and for --short, 1 unless each short mutant got its expected status).
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib
import json
import signal
import sys
from pathlib import Path

from .core import EQUIVALENTS, REPO, REPORT, STATE, THRESHOLD, Outcome, load_equivalents

SCRATCH = REPO / ".build-mutate"
RUNNER_NAMES = ("swift", "hosts")


def log(message: str) -> None:
    print(f"[mutate {datetime.datetime.now(datetime.UTC):%H:%M:%S}] {message}", flush=True)


def load_runners(names: list[str]) -> list:
    """The runner modules asked for; one that does not exist (yet) is skipped, and said so."""
    runners = []
    for name in names:
        try:
            runners.append(importlib.import_module(f"ops.mutate.{name}"))
        except ModuleNotFoundError as error:
            if error.name != f"ops.mutate.{name}":
                raise
            log(f"runner {name}: ops/mutate/{name}.py is absent, skipped (its files are not gated)")
    return runners


def file_digest(path: str) -> str:
    return hashlib.sha256((REPO / path).read_bytes()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------
# State: one JSON object per line. {"kind": "file", "run", "path", "mutants", "digest", "at"} starts
# a file's run; {"kind": "outcome", "run", "path", "key", ...Outcome.to_json()} is one mutant's result.

def append(state: Path, record: dict) -> None:
    state.parent.mkdir(parents=True, exist_ok=True)
    with state.open("a", encoding="utf-8") as out:
        out.write(json.dumps(record, sort_keys=True) + "\n")


def merged(state: Path) -> dict[str, dict]:
    """path -> {"start": its file record, "outcomes": [the outcome records of that run]}: the last run
    of the file that ran to the end, or, when none did, the last one. (An interrupted rerun does not
    erase a finished measurement; the report then says a later run was cut short.)"""
    if not state.exists():
        return {}
    records = [json.loads(line) for line in state.read_text(encoding="utf-8").splitlines() if line.strip()]
    runs: dict[str, list[dict]] = {}
    for record in records:
        if record["kind"] == "file":
            runs.setdefault(record["path"], []).append({"start": record, "outcomes": []})
    by_run = {(entry["start"]["path"], entry["start"]["run"]): entry for entries in runs.values() for entry in entries}
    for record in records:
        entry = by_run.get((record["path"], record["run"]))
        if record["kind"] == "outcome" and entry:
            entry["outcomes"].append(record)
    files = {}
    for path, entries in runs.items():
        finished = [e for e in entries if len(e["outcomes"]) >= e["start"]["mutants"]]
        files[path] = finished[-1] if finished else entries[-1]
        files[path]["interrupted_later"] = bool(finished) and finished[-1] is not entries[-1]
    return files


# ---------------------------------------------------------------------------------------------
# Running

def run_files(runner, paths: list[str], state: Path, equivalents: dict[str, str], scratch: Path) -> None:
    run_id = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") + f"/{runner.NAME}"
    planned = {path: runner.mutants(path) for path in paths}
    total = sum(len(m) for m in planned.values())
    log(f"runner {runner.NAME}: {total} mutants in {len(paths)} files")
    with runner.Session(scratch, log) as session:
        done = 0
        for path, mutants in planned.items():
            # Read again for each file: an equivalent written while an hour-long run goes on spares
            # the files still to come from running it (a survivor on a line every test executes
            # costs minutes).
            equivalents = {**equivalents, **load_equivalents()}
            if hasattr(session, "begin_file"):
                session.begin_file(path)
            append(state, {"kind": "file", "run": run_id, "path": path, "runner": runner.NAME, "mutants": len(mutants),
                           "digest": file_digest(path), "at": run_id.split("/")[0]})
            for mutant in mutants:
                done += 1
                key = mutant.key
                if key in equivalents:
                    outcome = Outcome(mutant, "equivalent", reason=equivalents[key])
                else:
                    outcome = session.run(mutant)
                append(state, {"kind": "outcome", "run": run_id, "path": path, "key": key, **outcome.to_json()})
                detail = outcome.killer or outcome.reason
                log(f"{done}/{total} {outcome.status:<11} {path}:{mutant.line} {mutant.original.strip()!r} -> "
                    f"{mutant.replacement.strip()!r} ({mutant.operator}) {outcome.seconds:.0f}s {detail[:100]}")


def run_short(runners: list, scratch: Path) -> int:
    failures = 0
    for runner in runners:
        chosen = runner.short_mutants()
        with runner.Session(scratch, log) as session:
            for mutant, expected in chosen:
                outcome = session.run(mutant)
                verdict = "as expected" if outcome.status == expected else f"EXPECTED {expected}"
                failures += outcome.status != expected
                log(f"short {runner.NAME}: {outcome.status} {mutant.path}:{mutant.line} {mutant.original.strip()!r} -> "
                    f"{mutant.replacement.strip()!r}: {verdict} {outcome.killer or outcome.reason}")
    return 1 if failures else 0


# ---------------------------------------------------------------------------------------------
# The report and the gate

def score(entry: dict, equivalents: dict[str, str]) -> dict:
    counts = {"killed": 0, "survived": 0, "equivalent": 0, "unbuildable": 0, "error": 0}
    for outcome in entry["outcomes"]:
        status = "equivalent" if outcome["key"] in equivalents and outcome["status"] != "killed" else outcome["status"]
        counts[status] = counts.get(status, 0) + 1
    counted = sum(counts.values()) - counts["equivalent"] - counts["unbuildable"]
    counts["run"] = len(entry["outcomes"])
    counts["planned"] = entry["start"]["mutants"]
    counts["score"] = counts["killed"] / counted if counted else 1.0
    return counts


def verdict(path: str, entry: dict | None, equivalents: dict[str, str]) -> tuple[str, dict | None]:
    if entry is None:
        return "never run", None
    counts = score(entry, equivalents)
    if counts["run"] < counts["planned"]:
        return f"partial ({counts['run']} of {counts['planned']} run)", counts
    if entry["start"]["digest"] != file_digest(path):
        return "stale (the file changed since)", counts
    later = " (a later run was cut short)" if entry.get("interrupted_later") else ""
    return ("ok" if counts["score"] >= THRESHOLD else "under threshold") + later, counts


def edit(mutant: dict) -> str:
    return f"`{mutant['original'].strip()}` -> `{mutant['replacement'].strip()}`".replace("|", "\\|")


def line_text(path: str, line: int) -> str:
    lines = (REPO / path).read_text(encoding="utf-8").split("\n")
    return lines[line - 1].strip() if line <= len(lines) else ""


def write_report(report: Path, covered: list[str], files: dict[str, dict], equivalents: dict[str, str]) -> bool:
    """Writes the report; True when every covered file passes the gate."""
    passed = True
    out = [
        "# Mutation testing: do the tests fail when the code that decides safety is wrong?",
        "",
        "Generated by `make mutate` (`python3 -m ops.mutate`, ops/mutate/) from the outcomes it recorded;",
        "do not edit by hand. Each mutant is one edit a real bug could make in a file that decides whether a",
        "password is changed, kept or rolled back (a comparison's boundary moved, a check dropped, a bound off",
        "by one, a stage name swapped: the rules are in ops/mutate/swift.py and ops/mutate/hosts.py). Every",
        "mutant is built in a scratch copy and run against the tests that cover its file (a host script's",
        "mutant: those of them that execute its line, measured by tracing the tests once):",
        "",
        "- **killed**: a test failed (the first failing test is named): the suite notices this bug;",
        "- **survived**: every test passed (or, for a host script, no test executes the line; the",
        "  status then says so): a bug no test notices. Each is listed below until a test",
        "  kills it or a person has read it and written down why no test can tell it from the original;",
        "- **equivalent**: that written reason, in ops/mutate/equivalents.json (listed below);",
        "- **unbuildable**: the edit does not compile or parse; not a bug the tests could meet, not counted;",
        "- **error**: the runner could not judge it (counted as not killed).",
        "",
        f"Score = killed / (mutants - equivalent - unbuildable). The gate (`make mutate` exits 1) is at least "
        f"{THRESHOLD:.0%} in every covered file, each run to the end on its current text.",
        "",
        "| file | run at (UTC) | mutants | killed | survived | equivalent | unbuildable | error | score | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for path in covered:
        entry = files.get(path)
        status, counts = verdict(path, entry, equivalents)
        passed &= status.startswith("ok")
        if counts is None:
            out.append(f"| {path} | | | | | | | | | {status} |")
            continue
        out.append(f"| {path} | {entry['start']['at']} | {counts['planned']} | {counts['killed']} | {counts['survived']} | "
                   f"{counts['equivalent']} | {counts['unbuildable']} | {counts['error']} | {counts['score']:.0%} | {status} |")

    out += ["", "## Survivors", "", "Bugs no test notices yet: each needs a test, or a reviewed reason in equivalents.json.", ""]
    survivors = [(path, o) for path in covered for o in (files.get(path) or {}).get("outcomes", [])
                 if o["status"] in ("survived", "error") and o["key"] not in equivalents]
    if survivors:
        out += ["| where | rule | edit | line | status |", "|---|---|---|---|---|"]
        for path, o in survivors:
            m = o["mutant"]
            # A file changed since its run no longer has the mutated text at that line number.
            fresh = files[path]["start"]["digest"] == file_digest(path)
            text = f"`{line_text(path, m['line'])}`".replace("|", "\\|") if fresh else "(the file changed since the run)"
            out.append(f"| {path}:{m['line']} | {m['operator']} | {edit(m)} | {text} | {o['status']} {o['reason']} |")
    else:
        out.append("None.")

    out += ["", "## Equivalent mutants", "", "Read by a person, who wrote why no test can tell each from the original.", ""]
    entries = json.loads(EQUIVALENTS.read_text(encoding="utf-8")) if EQUIVALENTS.exists() else []
    entries = [e for e in entries if e["path"] in covered]
    if entries:
        out += ["| where | line | edit | reason |", "|---|---|---|---|"]
        for e in entries:
            out.append(f"| {e['path']} | `{e['line']}` | `{e['edit']}` | {e['reason']} |".replace("\n", " "))
    else:
        out.append("None.")

    out += ["", "## Killed, and by which test", ""]
    for path in covered:
        killed = [o for o in (files.get(path) or {}).get("outcomes", []) if o["status"] == "killed"]
        if not killed:
            continue
        out += [f"<details><summary>{path}: {len(killed)} killed</summary>", "",
                "| line | rule | edit | first failing test |", "|---|---|---|---|"]
        for o in killed:
            m = o["mutant"]
            out.append(f"| {m['line']} | {m['operator']} | {edit(m)} | {o['killer'].replace('|', '/')[:140]} |")
        out += ["", "</details>", ""]

    unbuildable = [(path, o) for path in covered for o in (files.get(path) or {}).get("outcomes", [])
                   if o["status"] == "unbuildable"]
    if unbuildable:
        out += ["", "## Unbuildable (not counted)", ""]
        for path, o in unbuildable:
            out.append(f"- {path}:{o['mutant']['line']} {edit(o['mutant'])}")
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text("\n".join(out).rstrip() + "\n", encoding="utf-8")
    return passed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m ops.mutate", description=__doc__.split("\n")[0])
    parser.add_argument("--runner", action="append", choices=RUNNER_NAMES, help="run only this runner (repeatable)")
    parser.add_argument("--only", action="append", metavar="PATH", help="run only this covered file (repeatable)")
    parser.add_argument("--short", action="store_true", help="the short form: a few known mutants, no report")
    parser.add_argument("--report-only", action="store_true", help="write the report and gate without running")
    parser.add_argument("--list", action="store_true", help="print the mutants without running them")
    parser.add_argument("--state", type=Path, default=STATE, help=argparse.SUPPRESS)
    parser.add_argument("--report", type=Path, default=REPORT, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, default=SCRATCH, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    # Stopped by a signal (nohup leaves SIGINT ignored; kill sends SIGTERM), the runners still restore
    # their scratch copy and stop their builds and tests on the way out.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    available = load_runners(list(RUNNER_NAMES))
    runners = [runner for runner in available if not args.runner or runner.NAME in args.runner]
    if args.short:
        return run_short(runners, args.scratch)

    equivalents = load_equivalents()
    covered = [path for runner in available for path in runner.targets()]
    for path in args.only or []:
        if path not in covered:
            parser.error(f"{path} is not a covered file")
    if args.list:
        for runner in runners:
            for path in runner.targets():
                if not args.only or path in args.only:
                    for m in runner.mutants(path):
                        print(f"{path}:{m.line} {m.operator}: {m.original.strip()!r} -> {m.replacement.strip()!r}")
        return 0
    if not args.report_only:
        for runner in runners:
            # In the order --only names them, so a run cut short has the files asked for first.
            paths = [p for p in args.only if p in runner.targets()] if args.only else runner.targets()
            if paths:
                run_files(runner, paths, args.state, equivalents, args.scratch)
    passed = write_report(args.report, covered, merged(args.state), load_equivalents())
    log(f"report: {args.report} ({'every covered file passes' if passed else 'the gate fails'})")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

