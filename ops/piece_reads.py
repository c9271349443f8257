"""A pytest plugin for the pieces of `make chaos` (ops/long_form.py): what the piece's pytest process
read of the repository (files, and directories it listed), what it wrote there, which installed
distributions it imported, the python3 that ran it, and how each test ended, written as JSON to the
file CHAOS_PIECE_READS names when pytest ends. A piece's record is current only while every one of
those files, listings and versions is unchanged: whatever a test imports from another directory,
whatever data file it reads (a document, a workflow, pyproject.toml), and whatever directory it
globs, counts without anyone listing it.

Files are seen through Python's audit hooks for `open`, `os.listdir` and `os.scandir` (in any
thread) and through the modules loaded (an import from a cached .pyc opens no .py). Scripts that
a subprocess runs are not seen; ops/long_form.py names those itself (the host scripts' sources,
the piece's directory)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
from pathlib import Path

# What a run writes or keeps as state, and build output: not what the piece's outcome depends on
# as read (the build is named by the proof's code_digest and checked by stale_build). The two
# documents whose counts the long forms rewrite are left out too: a piece that reads them (their
# tables of tests, say) would otherwise be run again for every count written.
NOT_INPUTS = (".git", ".build", ".build-tools", ".build-curl", ".local-state", "docs/chaos", "docs/interleavings",
              "docs/RELIABILITY.md", "docs/THREAT-MODEL.md")
_read: set[str] = set()
_listed: set[str] = set()
_written: set[str] = set()
_root = ""
# How each test ended (see _verdict) and how many files could not be collected.
_tests: dict[str, dict] = {}
_collection_errors = 0


def _relative(path: object) -> str | None:
    if isinstance(path, int):
        return None
    try:
        full = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return None
    if not _root or not full.startswith(_root):
        return None
    relative = full[len(_root):]
    if "__pycache__" in relative.split(os.sep) or any(relative == p or relative.startswith(p + os.sep) for p in NOT_INPUTS):
        return None
    return relative


def _audit(event: str, args: tuple) -> None:
    if event in ("os.listdir", "os.scandir"):
        if args and (relative := _relative(args[0] if args[0] is not None else ".")) is not None:
            _listed.add(relative)
        return
    if event != "open" or not args:
        return
    mode, flags = (args[1], args[2]) if len(args) >= 3 else (None, 0)
    writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
        (mode is None and isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR)))
    if (relative := _relative(args[0])) is not None:
        (_written if writes else _read).add(relative)


def pytest_runtest_logreport(report) -> None:
    _tests.setdefault(report.nodeid, {})[report.when] = report


def pytest_collectreport(report) -> None:
    global _collection_errors
    _collection_errors += int(report.failed)


def _verdict(phases: dict) -> str:
    """One test: "xfail" (a strict xfail or xpass: a known open case), "error" (its setup failed: it
    never ran), "skipped", "failed" (its call or teardown failed: the teardown holds the checks
    fixtures make after a test), or "passed"."""
    if any(hasattr(r, "wasxfail") for r in phases.values()):
        return "xfail"
    if "setup" in phases and phases["setup"].failed:
        return "error"
    if any(r.skipped for r in phases.values()) or "call" not in phases:
        return "skipped"
    return "failed" if any(r.failed for r in phases.values()) else "passed"


def pytest_configure(config) -> None:
    global _root
    if os.environ.get("CHAOS_PIECE_READS"):
        # The repository is where ops/long_form.py starts the piece.
        _root = os.getcwd() + os.sep
        sys.addaudithook(_audit)
        # pytest read its configuration before this hook was added.
        if config.inipath is not None and (relative := _relative(config.inipath)) is not None:
            _read.add(relative)


def pytest_unconfigure(config) -> None:
    target = os.environ.get("CHAOS_PIECE_READS")
    if not target:
        return
    files = set(_read)
    top_level: set[str] = set()
    for module in list(sys.modules.values()):
        top_level.add(getattr(module, "__name__", "").partition(".")[0])
        if (relative := _relative(getattr(module, "__file__", None) or "")) is not None:
            files.add(relative)
    owners = importlib.metadata.packages_distributions()
    distributions = sorted({d for name in top_level for d in owners.get(name, [])})
    versions = {}
    for name in distributions:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    verdicts = [_verdict(phases) for phases in _tests.values()]
    counts = {kind: verdicts.count(kind) for kind in ("passed", "failed", "error", "skipped", "xfail")}
    Path(target).write_text(json.dumps({
        "files": sorted(f for f in files if os.path.isfile(_root + f)),
        "listings": sorted(d for d in _listed if os.path.isdir(_root + d)),
        "written": sorted(_written), "distributions": versions, "python": sys.version,
        "tests": {"tests": len(verdicts), **counts, "collection errors": _collection_errors}}))
