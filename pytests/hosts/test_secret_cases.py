"""The validation-case table (hosts/secret-cases.json) through the Linux host helper: secret.py
with each engine's Rules, fed the version as the AWS CLI prints it. The Swift tests run the same
table through the function's parser (Tests/RotationTests/SecretCaseTableTests.swift), so the two
cannot drift apart."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hosts" / "linux"))
import mysql  # noqa: E402
import postgres  # noqa: E402
import secret  # noqa: E402

TABLE = json.loads((REPO / "hosts" / "secret-cases.json").read_text(encoding="utf-8"))
HELPERS = {"postgres": postgres, "postgresql": postgres, "mysql": mysql, "mariadb": mysql}


def case_text(case: dict) -> str:
    if "raw" in case:
        return case["raw"]
    value = {**TABLE["base"], **case.get("set", {})}
    for name in case.get("unset", []):
        value.pop(name, None)
    return json.dumps(value)


def case_engine(case: dict) -> str:
    if "raw" in case:
        return "postgres"
    return {**TABLE["base"], **case.get("set", {})}.get("engine", TABLE["base"]["engine"])


HOST_CASES = [c for c in TABLE["cases"] if "host" in c.get("checkedBy", ["function", "host"])
              and case_engine(c) in HELPERS]


def test_the_table_is_worth_running():
    names = [c["name"] for c in TABLE["cases"]]
    assert len(names) == len(set(names)), "two cases share a name"
    assert len(HOST_CASES) >= 40
    assert {True, False} == {c["valid"] for c in HOST_CASES}
    assert all(c["valid"] or c.get("error") for c in TABLE["cases"]), "a refusal without an expected message"


@pytest.mark.parametrize("case", HOST_CASES, ids=[c["name"] for c in HOST_CASES])
def test_the_host_helper_decides_as_the_table_says(case, monkeypatch, capsys):
    helper = HELPERS[case_engine(case)]
    envelope = json.dumps([["AWSPENDING"], case_text(case)])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(envelope.encode("utf-8")), encoding="utf-8"))
    status = 0
    try:
        secret.parse("set", helper.RULES)
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    if case["valid"]:
        assert status == 0, err
        lines = out.split("\n")  # as the shell's read splits them (not at U+2028 and the like)
        value = json.loads(case_text(case))
        assert len(lines) == 7 and lines[6] == "" and lines[0] == value["username"] and lines[4] == value["password"]
    else:
        assert status == 4, (status, out, err)
        assert case["error"] in err, err
        assert out == "", "a refused version's fields were printed"
