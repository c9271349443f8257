"""What every mutation runner shares: the mutant, its outcome, the equivalents file and the report."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
EQUIVALENTS = Path(__file__).resolve().parent / "equivalents.json"
REPORT = REPO / "docs" / "MUTATION.md"
# Every outcome recorded, one JSON object a line (python3 -m ops.mutate appends; not committed).
STATE = REPO / ".local-state" / "mutation.jsonl"
# The gate: in every covered file, at least this share of the mutants that are not equivalent is killed.
THRESHOLD = 0.90


@dataclass(frozen=True)
class Mutant:
    """One edit of one line: `original` (a substring of that line) becomes `replacement`.

    `path` is relative to the repository; `line` is 1-based; `occurrence` says which match of
    `original` on that line (0 = the first), so two identical operators on one line are two mutants.
    `operator` names the rule that made it (e.g. "relational: >= to >", "remove guard").
    """

    path: str
    line: int
    occurrence: int
    original: str
    replacement: str
    operator: str

    @property
    def key(self) -> str:
        """Stable across runs while the mutated line's text stays the same (not its line number),
        so a reviewed equivalent stays reviewed when unrelated lines move."""
        lines = [line.strip() for line in (REPO / self.path).read_text(encoding="utf-8").splitlines()]
        source = lines[self.line - 1]
        parts = [self.path, source, str(self.occurrence), self.original, self.replacement]
        # A line whose text appears earlier in the file too (flow.sh's `verify || status=$?`) is
        # told apart by which copy it is, so marking one copy equivalent leaves the others to run;
        # the first copy's key is as it always was.
        copy = lines[:self.line - 1].count(source)
        if copy:
            parts.append("copy %d" % copy)
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]

    def apply(self, text: str) -> str:
        """`text` (the whole file) with this mutant's edit; raises ValueError when it no longer applies."""
        lines = text.split("\n")
        line = lines[self.line - 1]
        start = -1
        for _ in range(self.occurrence + 1):
            start = line.find(self.original, start + 1)
            if start < 0:
                raise ValueError(f"{self.path}:{self.line}: {self.original!r} not found")
        lines[self.line - 1] = line[:start] + self.replacement + line[start + len(self.original):]
        return "\n".join(lines)


@dataclass
class Outcome:
    """What happened to one mutant. status: killed, survived, equivalent, or error (it did not build
    for a reason that is not the mutation's: a runner bug, reported and counted as not killed)."""

    mutant: Mutant
    status: str
    killer: str = ""       # the first failing test, for killed
    reason: str = ""       # why, for equivalent (from equivalents.json) or error
    seconds: float = 0.0
    extra: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"mutant": asdict(self.mutant), "status": self.status, "killer": self.killer,
                "reason": self.reason, "seconds": round(self.seconds, 1)}


def load_equivalents(path: Path = EQUIVALENTS) -> dict[str, str]:
    """key -> the reviewed reason it is equivalent. The file is a list of objects with key, path,
    line text, edit and reason, so a reader can review it without running anything."""
    if not path.exists():
        return {}
    entries = json.loads(path.read_text(encoding="utf-8"))
    return {entry["key"]: entry["reason"] for entry in entries}
