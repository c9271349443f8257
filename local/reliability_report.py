"""Writes the scenario table of docs/RELIABILITY.md from a `make chaos` report.

The report (tests/e2e/chaos.py) holds one JSON line per outcome: {scenario, tried, held, detail}.
The table sums them by scenario and replaces what stands between the two markers of the document,
so the committed figures are always those of a real run.

    python3 -m local.reliability_report .local-state/chaos.jsonl docs/RELIABILITY.md
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BEGIN = "<!-- chaos-table:begin -->"
END = "<!-- chaos-table:end -->"


def table(lines: list[dict]) -> str:
    totals: dict[str, list[int]] = {}
    for line in lines:
        t = totals.setdefault(line["scenario"], [0, 0])
        t[0] += int(line["tried"])
        t[1] += int(line["held"])
    rows = ["| scenario | tried | held | failed |", "|---|---:|---:|---:|"]
    rows += [f"| {name} | {tried} | {held} | {tried - held} |" for name, (tried, held) in totals.items()]
    tried = sum(t[0] for t in totals.values())
    held = sum(t[1] for t in totals.values())
    rows.append(f"| **all** | **{tried}** | **{held}** | **{tried - held}** |")
    return "\n".join(rows)


def main(argv: list[str]) -> int:
    report, document = Path(argv[0]), Path(argv[1])
    lines = [json.loads(x) for x in report.read_text().splitlines() if x.strip()] if report.exists() else []
    if not lines:
        print(f"{report}: no scenario was recorded", file=sys.stderr)
        return 1
    text = document.read_text()
    if BEGIN not in text or END not in text:
        print(f"{document}: the markers {BEGIN} / {END} are missing", file=sys.stderr)
        return 1
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    document.write_text(f"{head}{BEGIN}\n{table(lines)}\n{END}{tail}")
    failed = sum(int(x["tried"]) - int(x["held"]) for x in lines)
    print(f"{document}: {len(lines)} outcomes, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
