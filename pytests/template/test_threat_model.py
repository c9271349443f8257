"""docs/THREAT-MODEL.md: every attack names the tests that prove its defence, and they exist."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "THREAT-MODEL.md").read_text(encoding="utf-8")


def attack_rows() -> list[list[str]]:
    table = DOC.split("## Attacks, defences, tests", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if re.match(r"^\| \d+ \|", line)]
    return [[cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]] for row in rows]


def test_every_attack_names_existing_tests():
    rows = attack_rows()
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1)), "attacks are numbered 1, 2, 3, ..."
    for number, attack, defence, proof in rows:
        assert attack and defence, number
        paths = re.findall(r"`((?:pytests|Tests)/[^`:]+?)(?:::([A-Za-z_0-9]+))?`", proof)
        assert paths or proof.startswith("as "), f"attack {number} names no test: {proof}"
        for path, name in paths:
            file = REPO / path
            assert file.exists(), f"attack {number}: {path} does not exist"
            if name:
                text = file.read_text(encoding="utf-8") if file.is_file() else ""
                assert re.search(rf"\b(def|func) {re.escape(name)}", text), f"attack {number}: no test {name} in {path}"
        for name in re.findall(r"`([a-z][A-Za-z]+)`", proof):
            if name[0].islower() and any(c.isupper() for c in name):   # a Swift test named alone
                assert any(name in p.read_text(encoding="utf-8") for p in (REPO / "Tests").rglob("*.swift")), \
                    f"attack {number}: no Swift test {name}"
