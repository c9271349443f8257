"""SSM faults, end to end: a host (of two) whose SSM invocation ends Failed, TimedOut, Cancelled or
Undeliverable, never answers, answers Success without its result line, prints past the 24,000
characters SSM keeps, or is unknown to SSM for a while.

Both hosts point at the same database server (one login), so a host that changed the password and
then reported a failure is the worst case: the other host's rollback must still leave the database
and AWSCURRENT agreeing. Each scenario checks: the step fails with an error naming the instance and
what SSM said (or, for an invocation unknown for a while, waits and succeeds); the rollback to
AWSCURRENT was sent to every host; AWSPENDING is removed only when every host proved it accepts
AWSCURRENT again; an SNS alert went out; the invariants (the `pair` fixture); and the retry with the
same token, or the next rotation, completes once the fault is gone.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import pytest

from local.ssm_emulator import STDOUT_LIMIT
from local.ssm_runner import OUTPUT_TRUNCATED_SUFFIX
from local.stack import LocalStack

from . import chaos
from .helpers import (
    STEPS,
    Login,
    assert_alert,
    assert_invariants,
    commands_for,
    describe_rotation,
    make_login,
    no_pending,
    rotate_with_cli,
)

ACTION = {"setSecret": "set", "testSecret": "verify"}
# A Lambda timeout short enough that a host that never answers costs seconds, not minutes, and
# long enough for a step, its rollback and the alert on this (slow, shared) machine.
TIMEOUT_S = 40.0


@dataclass(frozen=True)
class SSMFault:
    name: str                       # the scenario, as in the report
    fault: dict[str, Any]           # local.ssm_emulator.Fault fields
    says: str                       # what the step's error must say about the faulty instance
    applied: str                    # how the emulator records that it told this lie
    short: list[tuple[str, str, bool]] = field(default_factory=list)   # (engine, step, persistent) for make test
    also: str = ""                  # and what else the error must say


FAULTS = [
    SSMFault("Failed", {"end_as": "Failed"}, "Failed, exit code 1", "Failed",
             [("postgres", "setSecret", False)]),
    SSMFault("TimedOut", {"end_as": "TimedOut"}, "TimedOut, exit code 137", "TimedOut",
             [("mariadb", "setSecret", False)]),
    SSMFault("Cancelled", {"end_as": "Cancelled"}, "Cancelled, exit code -1", "Cancelled",
             [("postgres", "testSecret", False)]),
    SSMFault("Undeliverable", {"end_as": "Undeliverable"}, "Failed, exit code -1: Undeliverable", "Undeliverable",
             [("postgres", "setSecret", True)]),
    SSMFault("DeliveryTimedOut", {"end_as": "DeliveryTimedOut"}, "TimedOut, exit code -1: DeliveryTimedOut",
             "DeliveryTimedOut", [("mariadb", "testSecret", False)]),
    # Short form of these two: test_rotation.py (test_host_that_never_answers, test_success_without_result_line).
    SSMFault("agent never answers", {"never_answer": True, "run_before_hanging": True}, "NoAnswer",
             "never_answer", []),
    SSMFault("Success without the result line", {"strip_result_line": True},
             "Success, exit code 0, but no ROTATOR-RESULT line", "strip_result_line", []),
    SSMFault("output past 24,000 characters", {"extra_stdout": 30_000},
             "Success, exit code 0, but no ROTATOR-RESULT line", "extra_stdout",
             also="SSM cut the output at 24,000 characters"),       # short form: the test after
]


def fault_cases():
    for f in FAULTS:
        if chaos.FULL:
            plan = [(e, s, p) for e in ("postgres", "mariadb") for s in ACTION for p in (False, True)]
        else:
            plan = f.short
        for engine, step, persistent in plan:
            yield pytest.param(engine, f, step, persistent,
                               id=f"{f.name}-{step}-{'persistent' if persistent else 'once'}-{engine}",
                               marks=pytest.mark.chaos(f"SSM faults: {f.name}"))


def second_instance(db) -> str:
    """Another instance id for the same database server (a second host of one login)."""
    return "i-0f" + db.instance_id[4:]


@pytest.fixture
def pair(function, db):
    """A fresh login whose secret names two hosts of the same database: (login, the host that
    will misbehave). The invariants are checked after, as for `login`."""
    stack = function
    faulty = second_instance(db)
    stack.register_instance(faulty, "Linux", db.server.host_env())
    since = time.time()
    lg = make_login(stack, db, extra={"instanceIds": [db.instance_id, faulty]})
    try:
        yield lg, faulty
    finally:
        stack.clear_faults()
    assert_invariants(stack, lg, since)


def run_until(stack: LocalStack, login: Login, token: str, step: str) -> None:
    """The steps before `step`, each succeeding."""
    for before in STEPS[:STEPS.index(step)]:
        r = stack.invoke(stack.rotation_event(before, login.arn, token), timeout_s=TIMEOUT_S)
        assert r.ok, f"{before}: {r.error}"


def finish(stack: LocalStack, login: Login, token: str, after: str) -> None:
    for step in STEPS[STEPS.index(after) + 1:]:
        r = stack.invoke(stack.rotation_event(step, login.arn, token), timeout_s=TIMEOUT_S)
        assert r.ok, f"{step}: {r.error}"


def faulty_invocations(stack: LocalStack, login: Login, faulty: str, since: int):
    return [c.invocations[faulty] for c in commands_for(stack, login.arn, since) if faulty in c.invocations]


@pytest.mark.parametrize("db, f, step, persistent", list(fault_cases()), indirect=["db"])
def test_ssm_fault(function: LocalStack, pair, f: SSMFault, step: str, persistent: bool):
    stack = function
    login, faulty = pair
    fine = login.db.instance_id
    current_version = stack.version_with(login.arn, "AWSCURRENT")
    n_alerts = len(stack.alerts())
    token = stack.begin_rotation(login.arn)
    run_until(stack, login, token, step)
    pending = login.password_of(token)
    # Once: this command only. Persistent: every command to that host, the rollback's too.
    stack.set_fault(faulty, **f.fault, **({} if persistent else {"actions": {ACTION[step]}, "times": 1}))
    first_command = len(stack.commands)

    r = stack.invoke(stack.rotation_event(step, login.arn, token), timeout_s=TIMEOUT_S)

    assert not r.ok, f"{step} succeeded although {faulty} answered {f.name}"
    assert r.error_type == "HostCommandFailed", r.error      # not a Lambda timeout or a crash
    assert f"{faulty}: {f.says}" in r.error_message and f.also in r.error_message, r.error_message
    assert fine not in r.error_message, "the host that succeeded is reported as failed"
    told = faulty_invocations(stack, login, faulty, first_command)
    assert told and f.applied in told[0].faults, [(i.status, i.faults) for i in told]

    # The rollback: AWSCURRENT set again on both hosts, after the failed command; once AWSPENDING
    # is removed (the restore proven on both), set once more: the settle undoes a late set.
    cmds = commands_for(stack, login.arn, first_command)
    settle = [] if persistent else [[current_version]]
    assert [c.parameters["VersionId"] for c in cmds] == [[token], [current_version], *settle], \
        [(c.action, c.parameters["VersionId"]) for c in cmds]
    assert all(c.action == "set" and c.instance_ids == [fine, faulty] for c in cmds[1:])
    assert stack.version_with(login.arn, "AWSCURRENT") == current_version
    assert login.can_login(login.password), "the rollback to AWSCURRENT did not hold"
    assert not login.can_login(pending)
    stages = stack.stages(login.arn)
    if persistent:
        # The faulty host could not prove the rollback: it may hold the pending password.
        assert stages.get(token) == ["AWSPENDING"], stages
    else:
        assert no_pending(stages), stages
    alerts = stack.alerts()[n_alerts:]
    assert_alert(alerts, login, step)
    assert faulty in " ".join(a["message"] for a in alerts)

    # The fault is gone: Secrets Manager's retry (same token) or the next rotation completes.
    stack.clear_faults()
    if persistent:
        for retry in STEPS:
            r = stack.invoke(stack.rotation_event(retry, login.arn, token), timeout_s=TIMEOUT_S)
            assert r.ok, f"retry {retry}: {r.error}"
        assert stack.version_with(login.arn, "AWSCURRENT") == token
    else:
        _, rec = rotate_with_cli(stack, login)
        assert rec.ok, describe_rotation(rec)
    assert login.can_login(login.current_password())
    assert not login.can_login(login.password)


@pytest.mark.chaos("SSM faults: InvocationDoesNotExist for a while")
@pytest.mark.parametrize("db, step, views", [
    pytest.param("postgres", "setSecret", {"get", "list"}, id="set-both-views-postgres"),
    pytest.param("mariadb", "testSecret", {"get"}, id="test-get-only-mariadb"),
] + ([
    pytest.param("mariadb", "setSecret", {"get", "list"}, id="set-both-views-mariadb"),
    pytest.param("postgres", "testSecret", {"get"}, id="test-get-only-postgres"),
] if chaos.FULL else []), indirect=["db"])
def test_invocation_unknown_for_a_while(function: LocalStack, pair, step: str, views: set[str]):
    """SSM does not know the invocation for its first reads (eventual consistency): the step
    waits, does not fail, and the rotation completes."""
    stack = function
    login, faulty = pair
    token = stack.begin_rotation(login.arn)
    run_until(stack, login, token, step)
    stack.set_fault(faulty, unknown_reads=4, unknown_views=views, actions={ACTION[step]}, times=1)
    first_command = len(stack.commands)

    r = stack.invoke(stack.rotation_event(step, login.arn, token), timeout_s=TIMEOUT_S)

    assert r.ok, r.error
    told = faulty_invocations(stack, login, faulty, first_command)
    assert len(told) == 1 and told[0].unknown_reads == 0, "the fault was not read through"
    assert len(commands_for(stack, login.arn, first_command)) == 1, "a second command was sent"
    finish(stack, login, token, step)
    assert stack.version_with(login.arn, "AWSCURRENT") == token
    assert login.can_login(login.current_password()) and not login.can_login(login.password)


@pytest.mark.chaos("SSM faults: output past 24,000 characters")
@pytest.mark.parametrize("db", ["postgres"], indirect=True)
def test_oversized_output_is_cut_as_ssm_cuts_it(function: LocalStack, pair):
    """What SSM answers for a chatty host: the first 24,000 characters, ending in the agent's
    marker, so the result line printed last is gone; and the host scripts themselves print
    nothing but their result line, so only such a host can push it out."""
    stack = function
    login, faulty = pair
    token = stack.begin_rotation(login.arn)
    run_until(stack, login, token, "setSecret")
    stack.set_fault(faulty, extra_stdout=30_000, actions={"set"}, times=1)
    first_command = len(stack.commands)
    r = stack.invoke(stack.rotation_event("setSecret", login.arn, token), timeout_s=TIMEOUT_S)
    assert not r.ok

    cmd = commands_for(stack, login.arn, first_command)[0]
    inv = cmd.invocations[faulty]
    answer = stack.client("ssm").get_command_invocation(CommandId=cmd.command_id, InstanceId=faulty)
    out = answer["StandardOutputContent"]
    assert answer["Status"] == "Success" and answer["ResponseCode"] == 0
    assert len(out.encode()) == STDOUT_LIMIT == 24_000
    assert out.endswith(OUTPUT_TRUNCATED_SUFFIX) and "ROTATOR-RESULT" not in out
    assert "ROTATOR-RESULT" in inv.full_stdout.splitlines()[-1], "the script did report; SSM cut it"
    assert out[:-len(OUTPUT_TRUNCATED_SUFFIX)] == inv.full_stdout[:STDOUT_LIMIT - len(OUTPUT_TRUNCATED_SUFFIX)]

    # Every invocation of the host scripts so far that no fault touched printed exactly one line.
    clean = [i for c in stack.commands for i in c.invocations.values()
             if not i.faults and i.status == "Success" and i.document_name in stack.documents]
    assert clean
    chatty = [(i.instance_id, i.full_stdout[:200]) for i in clean
              if len(i.full_stdout.splitlines()) != 1 or not i.full_stdout.startswith("ROTATOR-RESULT ")]
    assert not chatty, chatty
