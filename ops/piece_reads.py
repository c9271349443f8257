"""A pytest plugin for the pieces of `make chaos` (ops/long_form.py): what the piece's pytest process
read of the repository, and which installed distributions it imported, written as JSON to the file
CHAOS_PIECE_READS names when pytest ends. A piece's record is current only while every one of those
files and versions is unchanged: whatever a test imports from another directory, and whatever data
file it reads (a document, a workflow, pyproject.toml), counts without anyone listing it.

Files are seen through Python's audit hook for `open` (every read, in any thread) and through the
modules loaded (an import from a cached .pyc opens no .py). Scripts that a subprocess runs are not
seen; ops/long_form.py names those itself (the host scripts' sources, the piece's directory)."""

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
_root = ""


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
    if event != "open" or not args:
        return
    mode, flags = (args[1], args[2]) if len(args) >= 3 else (None, 0)
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return
    if mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR):
        return
    if (relative := _relative(args[0])) is not None:
        _read.add(relative)


def pytest_configure(config) -> None:
    global _root
    if os.environ.get("CHAOS_PIECE_READS"):
        # The repository is where ops/long_form.py starts the piece.
        _root = os.getcwd() + os.sep
        sys.addaudithook(_audit)


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
    existing = sorted(f for f in files if os.path.isfile(_root + f))
    Path(target).write_text(json.dumps({"files": existing, "distributions": versions}))
