"""Writes the scenario, attack and downtime tables of docs/RELIABILITY.md from a chaos report.

The report (pytests/e2e/chaos.py) holds one JSON line per outcome: {scenario, tried, held, detail},
and one per downtime measurement: {kind: "downtime", strategy, engine, rotations, connections,
failed, cache_s}. The scenario table sums the outcomes by scenario, the attack table those whose
scenario begins with "Attacks: " (docs/THREAT-MODEL.md), the downtime table lists the
measurements; each replaces what stands between its two markers in the document, so the committed
figures are always those of a real run. A report without lines for a table leaves that table as
it was; `--attacks-only` (`make attacks`) rewrites the attack table alone.

    python3 -m local.reliability_report .local-state/chaos.jsonl docs/RELIABILITY.md [--attacks-only]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BEGIN = "<!-- chaos-table:begin -->"
END = "<!-- chaos-table:end -->"
ATTACKS_BEGIN = "<!-- attack-table:begin -->"
ATTACKS_END = "<!-- attack-table:end -->"
ATTACK_PREFIX = "Attacks: "
DOWNTIME_BEGIN = "<!-- downtime-table:begin -->"
DOWNTIME_END = "<!-- downtime-table:end -->"


def table(lines: list[dict], prefix: str = "") -> str:
    totals: dict[str, list[int]] = {}
    for line in lines:
        t = totals.setdefault(line["scenario"].removeprefix(prefix), [0, 0])
        t[0] += int(line["tried"])
        t[1] += int(line["held"])
    rows = ["| scenario | tried | held | failed |", "|---|---:|---:|---:|"]
    rows += [f"| {name} | {tried} | {held} | {tried - held} |" for name, (tried, held) in totals.items()]
    tried = sum(t[0] for t in totals.values())
    held = sum(t[1] for t in totals.values())
    rows.append(f"| **all** | **{tried}** | **{held}** | **{tried - held}** |")
    return "\n".join(rows)


def downtime_table(lines: list[dict]) -> str:
    rows = ["| strategy | engine | rotations | connections | failed | cache (s) |", "|---|---|---:|---:|---:|---:|"]
    rows += [f"| {x['strategy']} | {x['engine']} | {x['rotations']} | {x['connections']} | {x['failed']} | {x['cache_s']:g} |"
             for x in lines]
    return "\n".join(rows)


def replace_between(text: str, begin: str, end: str, content: str) -> str:
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{content}\n{end}{tail}"


def main(argv: list[str]) -> int:
    report, document = Path(argv[0]), Path(argv[1])
    attacks_only = argv[2:] == ["--attacks-only"]
    records = [json.loads(x) for x in report.read_text().splitlines() if x.strip()] if report.exists() else []
    lines = [x for x in records if x.get("kind") != "downtime"]
    attacks = [x for x in lines if x["scenario"].startswith(ATTACK_PREFIX)]
    scenarios = [x for x in lines if not x["scenario"].startswith(ATTACK_PREFIX)]
    downtime = [x for x in records if x.get("kind") == "downtime"]
    if attacks_only:
        lines, scenarios, downtime = attacks, [], []
    if not lines:
        print(f"{report}: no scenario was recorded", file=sys.stderr)
        return 1
    text = document.read_text()
    for begin, end in ((BEGIN, END), (ATTACKS_BEGIN, ATTACKS_END), (DOWNTIME_BEGIN, DOWNTIME_END)):
        if begin not in text or end not in text:
            print(f"{document}: the markers {begin} / {end} are missing", file=sys.stderr)
            return 1
    if scenarios:
        text = replace_between(text, BEGIN, END, table(scenarios))
    if attacks:
        text = replace_between(text, ATTACKS_BEGIN, ATTACKS_END, table(attacks, ATTACK_PREFIX).replace("| scenario |", "| attack |", 1))
    if downtime:
        text = replace_between(text, DOWNTIME_BEGIN, DOWNTIME_END, downtime_table(downtime))
    document.write_text(text)
    failed = sum(int(x["tried"]) - int(x["held"]) for x in lines)
    print(f"{document}: {len(lines)} outcomes, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
