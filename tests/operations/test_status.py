"""`make rotate` and `make status` (ops/status.py) against the local stack: the real function, the
template's PostgreSQL document, a real PostgreSQL, moto with signature and IAM checks.

A finished rotation reads as not stuck (exit 0); a rotation whose setSecret fails (the login was
dropped on the database, so the host cannot set it and the restore cannot prove AWSCURRENT) leaves
AWSPENDING on the new version, which `make status` reports as stuck, exiting non-zero.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time

import pytest

from local.databases import PostgresServer
from local.stack import REPO, LocalStack, binary_problem

INSTANCE = "i-0ab5000000000000a"


@pytest.fixture(scope="module")
def stack():
    problem = binary_problem()
    if problem:
        pytest.fail(f"{problem}: run `make build` first (these tests run the real binary)", pytrace=False)
    with LocalStack() as s:
        yield s


@pytest.fixture(scope="module")
def pg(stack):
    with PostgresServer() as server:
        stack.register_instance(INSTANCE, "Linux", server.host_env())
        yield server


def new_login(stack, pg):
    name = "ops_" + secrets.token_hex(4)
    password = "Init-" + secrets.token_hex(12)
    pg.create_login(name, password)
    arn = stack.create_db_secret(f"ops/{name}", "postgres", pg, name, password, [INSTANCE], dbname="postgres")
    return name, password, arn


def make(stack, *args):
    """The Makefile target as an operator runs it: the aws CLI and boto3 pointed at the stack."""
    env = stack.cli_env()
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(["make", "--no-print-directory", "-C", str(REPO), *args, f"PYTHON={sys.executable}"],
                          env=env, capture_output=True, text=True, timeout=300)


def status(stack, arn, *extra):
    return make(stack, "status", f"SECRET_ID={arn}", *extra)


def status_json(stack, arn):
    env = stack.cli_env()
    env["PYTHONPATH"] = str(REPO)
    p = subprocess.run([sys.executable, "-m", "ops.status", "--json", arn], env=env, cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    return p.returncode, json.loads(p.stdout)


def test_a_finished_rotation_is_not_stuck(stack, pg):
    name, password, arn = new_login(stack, pg)
    p = status(stack, arn)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "last rotated    never" in p.stdout and "not stuck" in p.stdout

    started = time.monotonic()
    p = make(stack, "rotate", f"SECRET_ID={arn}")
    assert p.returncode == 0, p.stdout + p.stderr
    token = json.loads(p.stdout[p.stdout.index("{"):])["VersionId"]
    rec = stack.wait_rotation(arn)
    assert rec.ok, [(s.step, s.error_message) for s in rec.steps]
    print(f"rotation: {time.monotonic() - started:.1f} s")

    p = status(stack, arn)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert arn in out
    assert "rotation        enabled" in out and stack.function_arn in out
    assert "last rotated    never" not in out and "next rotation   20" in out
    lines = {l.split()[0]: l for l in out.splitlines() if l.startswith("  ")}
    assert "AWSCURRENT" in lines[token] and "created 20" in lines[token]
    assert "creation dates unavailable" not in out
    assert sum("AWSPREVIOUS" in l for l in lines.values()) == 1
    assert "STUCK" not in out and "state           OK" in out

    code, state = status_json(stack, arn)
    assert code == 0 and state["Stuck"] is False and state["CurrentVersion"] == token
    assert state["PendingVersion"] is None and state["RotationEnabled"] is True
    assert pg.can_login(name, stack.secret_value(arn)["password"]) and not pg.can_login(name, password)


def test_a_failed_rotation_is_stuck_and_exits_non_zero(stack, pg):
    name, password, arn = new_login(stack, pg)
    current = stack.version_with(arn, "AWSCURRENT")
    pg.drop_login(name)                    # setSecret fails; no host can prove AWSCURRENT either

    p = make(stack, "rotate", f"SECRET_ID={arn}")
    assert p.returncode == 0, p.stdout + p.stderr
    rec = stack.wait_rotation(arn)
    assert not rec.ok and rec.failed_step.step == "setSecret"
    token = rec.token

    p = status(stack, arn)
    assert p.returncode != 0, p.stdout
    assert f"STUCK: version {token} holds AWSPENDING but not AWSCURRENT" in p.stdout
    assert "then make rotate" in p.stdout and "retry this same version" in p.stdout
    code, state = status_json(stack, arn)
    assert code == 1
    assert state["Stuck"] is True and state["PendingVersion"] == token and state["CurrentVersion"] == current
    assert {v["VersionId"]: v["Stages"] for v in state["Versions"]}[token] == ["AWSPENDING"]

    # And once the rotation is finished (the host fixed, the same version retried), it is not.
    pg.create_login(name, password)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        r = stack.invoke(stack.rotation_event(step, arn, token))
        assert r.ok, (step, r.error)
    p = status(stack, arn)
    assert p.returncode == 0 and "not stuck" in p.stdout, p.stdout


def test_an_unreadable_secret_is_an_error_not_a_state(stack):
    p = status(stack, "arn:aws:secretsmanager:us-east-1:123456789012:secret:no-such-secret-AbCdEf")
    assert p.returncode != 0
    assert "cannot read" in p.stderr and "ResourceNotFoundException" in p.stderr
