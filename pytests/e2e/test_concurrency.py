"""Concurrency, end to end: a second rotation of a secret while one is pending, the same step run
twice at once (Lambda may run two copies when Secrets Manager retries), and ten secrets rotated at
once by separate function processes (the stack's FunctionPool, like Lambda's concurrency).

Whatever the interleaving: nothing is lost, and the database and AWSCURRENT agree (the invariants
of the `login` fixture, plus each test's own checks).
"""

from __future__ import annotations

import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import botocore.exceptions
import pytest

from local.stack import LocalStack

from . import chaos
from .helpers import STEPS, Login, assert_invariants, describe_rotation, make_login, no_pending

TIMEOUT_S = 60.0


def function_log_of(stack: LocalStack, request_id: str) -> str:
    """The function's log lines of one invocation (they hold no secret: the leak sweep proves it)."""
    return "\n".join(line for line in stack.function_log().splitlines() if request_id in line)


def invoke_together(stack: LocalStack, events: list[dict]) -> list:
    """Invokes the function with every event at the same moment, each in its own thread."""
    start = threading.Barrier(len(events))

    def one(event: dict):
        start.wait()
        return stack.invoke(event, timeout_s=TIMEOUT_S)

    with ThreadPoolExecutor(len(events)) as pool:
        return list(pool.map(one, events))


@pytest.mark.chaos("Concurrency: RotateSecret while a rotation is pending")
def test_rotate_secret_while_a_rotation_is_pending(function: LocalStack, login: Login):
    """Secrets Manager refuses a second RotateSecret while AWSPENDING is on another version, and the
    function refuses a token that is not the pending version: the first rotation is untouched and
    completes."""
    stack = function
    token = stack.begin_rotation(login.arn)
    for step in ("createSecret", "setSecret"):
        r = stack.invoke(stack.rotation_event(step, login.arn, token))
        assert r.ok, f"{step}: {r.error}"
    pending = login.pending_password()
    before = stack.stages(login.arn)
    rotations = len(stack.rotations)

    with pytest.raises(botocore.exceptions.ClientError) as refused:
        stack.client("secretsmanager").rotate_secret(SecretId=login.arn)
    assert refused.value.response["Error"]["Code"] == "InvalidRequestException"
    assert "previous rotation isn't complete" in refused.value.response["Error"]["Message"]
    assert len(stack.rotations) == rotations, "the refused RotateSecret invoked the function"

    # The function with other tokens: a stranger, and the current version (nothing to do).
    current = stack.version_with(login.arn, "AWSCURRENT")
    commands = len(stack.commands)
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        r = stack.invoke(stack.rotation_event(step, login.arn, str(uuid.uuid4())))
        assert not r.ok and "is not a version of" in r.error_message, (step, r.error)
        r = stack.invoke(stack.rotation_event(step, login.arn, current))
        assert r.ok, (step, r.error)
    assert len(stack.commands) == commands, "a refused or empty step reached a host"
    assert stack.stages(login.arn) == before
    assert login.can_login(pending), "another token's step changed the database"

    for step in ("testSecret", "finishSecret"):
        r = stack.invoke(stack.rotation_event(step, login.arn, token))
        assert r.ok, f"{step}: {r.error}"
    assert stack.version_with(login.arn, "AWSCURRENT") == token
    assert login.current_password() == pending and login.can_login(pending)


@pytest.mark.chaos("Concurrency: the same step twice at once")
def test_every_step_twice_at_once(function: LocalStack, login: Login):
    """Each step invoked twice at the same moment with the same token, in two function processes:
    both copies succeed (whichever stores the pending password or moves the stages first, the
    other finds the work done), and the state after both is the state after one."""
    stack = function
    old_version = stack.version_with(login.arn, "AWSCURRENT")
    token = stack.begin_rotation(login.arn)
    outcomes = []
    for step in STEPS:
        event = stack.rotation_event(step, login.arn, token)
        results = invoke_together(stack, [event, dict(event)])
        outcomes.append(f"{step}: " + ", ".join("ok" if r.ok else f"{r.error_type}: {r.error_message}" for r in results))
        failed = [r for r in results if not r.ok]
        assert not failed, "\n".join([outcomes[-1], *(function_log_of(stack, r.request_id) for r in failed)])
        ids = {r.request_id for r in results}
        assert len({i.pid for i in stack.runtime.invocations if i.request_id in ids}) == 2, "both copies ran in one process"
        if step == "createSecret":
            pending = login.pending_password()
        if step == "setSecret":
            assert login.can_login(pending), outcomes
    stages = stack.stages(login.arn)
    assert stages[token] == ["AWSCURRENT"] and stages[old_version] == ["AWSPREVIOUS"], (stages, outcomes)
    assert no_pending(stages), stages
    assert login.current_password() == pending and login.can_login(pending)
    assert not login.can_login(login.password)


def peak_overlap(spans: list[tuple[float, float]]) -> int:
    """The largest number of (start, end) spans open at one moment."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    peak = open_now = 0
    for _, delta in edges:
        open_now += delta
        peak = max(peak, open_now)
    return peak


@pytest.mark.parametrize("db", ["postgres", "mariadb"] if chaos.FULL else ["postgres"], indirect=True)
def test_ten_secrets_rotated_at_once(function: LocalStack, db):
    stack = function
    n = 10
    assert stack.max_concurrency >= n, "the stack must allow ten function processes"
    since = time.time()
    logins = [make_login(stack, db) for _ in range(n)]
    invocations_before = len(stack.runtime.invocations)
    commands_before = len(stack.commands)
    go = threading.Barrier(n)

    def rotate(login: Login) -> None:
        go.wait()
        stack.client("secretsmanager").rotate_secret(SecretId=login.arn)

    # The host holds each setSecret command until all ten are waiting: ten invocations in flight at
    # one moment however slow this machine is, so the pool must run ten processes.
    stack.set_fault(db.instance_id, hold_until=threading.Barrier(n), actions={"set"}, times=n)
    try:
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(rotate, logins))
        records = [stack.wait_rotation(lg.arn) for lg in logins]
    finally:
        stack.clear_faults()

    failed = [describe_rotation(r) for r in records if not r.ok]
    mine = [i for i in stack.runtime.invocations[invocations_before:] if i.delivered_at and i.finished_at]
    pids = {i.pid for i in mine}
    peak = peak_overlap([(i.delivered_at, i.finished_at) for i in mine])
    held_commands = [inv for c in stack.commands[commands_before:] for inv in c.invocations.values() if "held" in inv.faults]
    # The pool starts a process only when every one it has is busy: ten processes, ten at once.
    at_once = len(held_commands) == n and peak == n and len(pids) == n
    # Rotations that did not run at once did not try the scenario: none of them counts as held.
    chaos.record("Concurrency: ten secrets rotated at once", n, n - len(failed) if at_once else 0,
                 f"{db.name}: {len(pids)} function processes, up to {peak} invocations at once")
    assert not failed, failed
    assert at_once, (f"{len(held_commands)} setSecret commands held, {len(pids)} function processes, "
                     f"up to {peak} invocations at once: not ten")
    for lg in logins:
        assert [s.step for s in stack.wait_rotation(lg.arn).steps] == STEPS
        assert lg.current_password() != lg.password
        assert_invariants(stack, lg, since)
        assert not lg.can_login(lg.password)


@pytest.mark.chaos("Attacks: a late set after another copy's rollback (rollback race)")
def test_a_late_set_after_a_rollback_changes_nothing(function: LocalStack, login: Login):
    """Two setSecret copies of one rotation: copy B's host command is delivered late (held by the
    host), copy A's fails, restores AWSCURRENT on the host and removes AWSPENDING; then B's command
    runs. Whatever the interleaving, the host must end on a password a label holds: B's set finds
    its version no longer pending (under the host's lock) and changes nothing (exit 8)."""
    stack = function
    iid = login.db.instance_id
    token = stack.begin_rotation(login.arn)
    assert stack.invoke(stack.rotation_event("createSecret", login.arn, token)).ok
    pending = login.pending_password()
    commands_before = len(stack.commands)
    late = threading.Barrier(2)
    stack.set_fault(iid, hold_until=late, actions={"set"}, times=1)
    event = stack.rotation_event("setSecret", login.arn, token)
    with ThreadPoolExecutor(1) as pool:
        copy_b = pool.submit(stack.invoke, event, TIMEOUT_S)
        deadline = time.monotonic() + 30
        while not any("held" in inv.faults for c in stack.commands[commands_before:] for inv in c.invocations.values()):
            assert time.monotonic() < deadline, "copy B's command never reached the host"
            time.sleep(0.05)
        # Copy A: its set runs and changes the password, but the host reports a failure.
        stack.set_fault(iid, end_as="Failed", actions={"set"}, times=1)
        copy_a = stack.invoke(dict(event), timeout_s=TIMEOUT_S)
        assert not copy_a.ok, "copy A was meant to fail"
        assert no_pending(stack.stages(login.arn)), "copy A's rollback did not abandon the rotation"
        assert login.can_login(login.password), "copy A's rollback did not restore AWSCURRENT"
        late.wait(timeout=30)   # now copy B's command runs
        result_b = copy_b.result(timeout=TIMEOUT_S + 30)
    stack.clear_faults()
    stack.ssm.wait_idle(30)
    late_runs = [inv for c in stack.commands[commands_before:] for inv in c.invocations.values() if "held" in inv.faults]
    assert len(late_runs) == 1 and late_runs[0].response_code == 8, [(i.response_code, i.stderr) for i in late_runs]
    assert not result_b.ok and "no longer AWSPENDING" in result_b.error_message, result_b.error
    assert login.can_login(login.password) and not login.can_login(pending), \
        "the host holds the pending password, which no label holds any more"
    assert login.current_password() == login.password and no_pending(stack.stages(login.arn))
