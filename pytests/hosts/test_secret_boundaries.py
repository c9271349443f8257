"""The host helper's limits at their edges, in-process (secret.py with each engine's Rules): where the
case table (hosts/secret-cases.json) holds one example of a rule, these walk its boundary, so a
limit moved by one is noticed (the mutation gate, ops/mutate/hosts.py, found such moves unseen)."""

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

HELPERS = {"postgres": postgres, "mariadb": mysql}
BASE = {"host": "db.internal.example", "username": "app", "password": "Start-Pass-1234",
        "instanceIds": ["i-0123456789abcdef0"]}


def parse(engine: str, value: dict, monkeypatch, capsys, stages=("AWSPENDING",)) -> tuple[int, str, str]:
    """secret.parse("set") of the version holding `value` as the AWS CLI prints it: (exit status, out, err)."""
    envelope = json.dumps([list(stages), json.dumps({"engine": engine, **value})])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(envelope.encode("utf-8")), encoding="utf-8"))
    status = 0
    try:
        secret.parse("set", HELPERS[engine].RULES)
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


# The control characters the function's parser refuses (DatabaseSecret: below U+0020 and U+007F): the
# host must refuse exactly those, no more (a C1 character or U+00A0 is a password's to hold), no fewer.
@pytest.mark.parametrize("engine", sorted(HELPERS))
@pytest.mark.parametrize("code", [0x00, 0x01, 0x09, 0x0A, 0x1E, 0x1F, 0x20, 0x21, 0x7E, 0x7F, 0x80, 0x9F, 0xA0])
def test_exactly_c0_and_del_are_control_characters(engine, code, monkeypatch, capsys):
    password = "Start" + chr(code) + "Pass-1234"
    status, out, err = parse(engine, {**BASE, "password": password}, monkeypatch, capsys)
    if code < 0x20 or code == 0x7F:
        assert (status, out) == (4, ""), (status, err)
        assert "'password' contains control characters" in err
    else:
        assert status == 0, err
        assert out.split("\n")[4] == password
