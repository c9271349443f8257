"""Least privilege, on the real binary: the function's requests are evaluated against template.yaml's
own statements for its role, with their resources and conditions (local/iam_policy.py, through the
local stack). A full rotation passes with exactly that policy; then each statement is withheld in
turn and something must break: the rotation, or (for a statement used only when a rotation fails)
its alert, driven by a host fault. Every denial names the action; the database and AWSCURRENT
still agree afterwards. A statement whose removal breaks nothing is not needed: the test says so.

One engine (PostgreSQL) is enough: the policy does not depend on it. The policy is swapped in the
package's one stack (`LocalStack.function_policy_without`), not a new stack per statement.
"""

from __future__ import annotations

import time

import pytest

from local.cfn import load_template, role_policy_statements
from local.databases import PostgresServer
from local.stack import REPO, TEMPLATE_POLICY, LocalStack

from .helpers import DBHost, Login, assert_invariants, describe_rotation, make_login

INSTANCE_ID = "i-0e2e000000000a001"     # this module's own database host


def _actions(statement: dict) -> list[str]:
    acts = statement.get("Action", [])
    return [acts] if isinstance(acts, str) else list(acts)


_STATEMENTS = [st.get("Fn::If", [None, st])[1] for st in
               role_policy_statements(load_template(REPO / "template.yaml"), "RotationFunction")]
# Lambda itself writes the function's log with these (the code never calls CloudWatch Logs, and the
# local stack does not emulate the delivery): they cannot be shown needed here.
LAMBDAS_OWN = [st["Sid"] for st in _STATEMENTS if all(a.startswith("logs:") for a in _actions(st))]
SIDS = [st["Sid"] for st in _STATEMENTS if st["Sid"] not in LAMBDAS_OWN]
# Statements needed, but whose removal leaves the database and AWSCURRENT disagreeing: a gap in the
# function, not in the policy. Each is shown needed all the same, then reported as an expected failure.
KNOWN_GAPS = {
    "FollowHostCommands": (
        "the function cannot follow the set command it sent (ListCommandInvocations denied) and "
        "fails setSecret without a rollback: the host keeps the pending password while AWSCURRENT "
        "is the old one (AWSPENDING keeps its label, so nothing is lost; a retried setSecret repairs it)"),
}


@pytest.fixture(scope="module")
def host(function: LocalStack):
    with PostgresServer() as server:
        function.register_instance(INSTANCE_ID, "Linux", server.host_env())
        yield DBHost("postgres", server, "postgres", INSTANCE_ID, "postgres")


def rotate(stack: LocalStack, login: Login):
    stack.client("secretsmanager").rotate_secret(SecretId=login.arn)
    return stack.wait_rotation(login.arn)


def function_requests_since(stack: LocalStack, since: float):
    return [r for r in stack.function_requests() if r.at >= since]


def log_since(stack: LocalStack, offset: int) -> str:
    return stack.log_path.read_bytes()[offset:].decode("utf-8", errors="replace")


def alerts_for(stack: LocalStack, login: Login, since_count: int) -> list[dict]:
    return [a for a in stack.alerts()[since_count:] if login.arn in a["message"]]


@pytest.mark.chaos("Least privilege: a rotation with exactly the template's policy")
def test_a_rotation_passes_with_exactly_the_templates_policy(function: LocalStack, host: DBHost):
    stack = function
    since = time.time()
    login = make_login(stack, host)
    rec = rotate(stack, login)
    assert rec.ok, describe_rotation(rec)
    assert login.can_login(login.current_password()) and not login.can_login(login.password)

    reqs = function_requests_since(stack, since)
    assert reqs and all(r.ok and r.policy == TEMPLATE_POLICY for r in reqs), reqs
    # Evaluated on their resources, not on "*": the secret, and SendCommand on the document and
    # the (tagged) instance both.
    by_action: dict[str, list] = {}
    for r in reqs:
        by_action.setdefault(f"{r.service}:{r.action}", []).append(r)
    for action in ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue",
                   "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"):
        assert by_action.get(action), f"the rotation made no {action}"
        assert all(r.resources == [login.arn] for r in by_action[action]), by_action[action]
    document = stack.document_names["PostgresRotationDocument"]
    sends = by_action["ssm:SendCommand"]
    assert sends and all(r.resources == [f"arn:aws:ssm:us-east-1:123456789012:document/{document}",
                                         f"arn:aws:ec2:us-east-1:123456789012:instance/{INSTANCE_ID}"]
                         for r in sends), sends
    assert_invariants(stack, login, since)


@pytest.mark.chaos("Least privilege: every statement of the function's policy is needed")
@pytest.mark.parametrize("sid", SIDS)
def test_each_statement_is_needed(function: LocalStack, host: DBHost, sid: str):
    stack = function
    statement = next(st for st in stack.function_policy() if st.get("Sid") == sid)
    actions = set(_actions(statement))
    since, log_start = time.time(), stack.log_path.stat().st_size
    login = make_login(stack, host)
    alerts_before = len(stack.alerts())
    initial_version = stack.version_with(login.arn, "AWSCURRENT")

    def denials() -> list:
        return [r for r in function_requests_since(stack, since) if not r.ok]

    try:
        with stack.function_policy_without(sid):
            rec = rotate(stack, login)
            if not denials():
                # Not needed by a rotation that succeeds: it must be by one that fails. The host
                # loses the result line of its first set: setSecret fails, AWSCURRENT is put back.
                assert rec.ok, f"failed without a denial: {describe_rotation(rec)}"
                alerts_before = len(stack.alerts())
                initial_version = stack.version_with(login.arn, "AWSCURRENT")
                stack.set_fault(host.instance_id, strip_result_line=True, actions={"set"}, times=1)
                rec = rotate(stack, login)
                assert not rec.ok and rec.failed_step.step == "setSecret", describe_rotation(rec)
    finally:
        stack.clear_faults()
    denied = denials()
    assert denied, f"withholding {sid} broke nothing, with or without a host fault: the statement is not needed"
    # Only the withheld statement's actions were denied: the rest of the policy still allowed all.
    assert {f"{r.service}:{r.action}" for r in denied} <= actions, [(r.action, r.denied_resource) for r in denied]
    assert all(r.error == "AccessDenied" and r.denied_by_withheld_statement for r in denied), denied

    denied_actions = sorted({f"{r.service}:{r.action}" for r in denied})
    log = log_since(stack, log_start)
    if denied_actions == ["sns:Publish"]:
        # The alert is what broke: none arrived, and the function logged why.
        assert not alerts_for(stack, login, alerts_before), "an alert arrived although Publish was denied"
        assert "could not publish the alert" in log and "sns:Publish" in log
    else:
        assert not rec.ok, describe_rotation(rec)
        message = rec.failed_step.error_message or ""
        assert any(a in message for a in denied_actions), f"the failure does not name the denied action: {message}"
    # The rotation did not complete: AWSCURRENT is where it was, and it is what the database holds.
    assert stack.version_with(login.arn, "AWSCURRENT") == initial_version
    if sid in KNOWN_GAPS:
        stack.ssm.wait_idle(30)
        assert not login.can_login(login.current_password()), \
            f"the database and AWSCURRENT agree now without {sid}: remove it from KNOWN_GAPS"
        # What the function does promise still holds: the password the database holds is labelled.
        pending = stack.version_with(login.arn, "AWSPENDING")
        assert pending and login.can_login(login.password_of(pending)), "the working password lost its label"
        # The operator's repair (the host given AWSCURRENT again), then every other invariant.
        login.db.server.set_password(login.username, login.current_password())
        assert_invariants(stack, login, since)
        pytest.xfail(KNOWN_GAPS[sid])
    assert_invariants(stack, login, since)


@pytest.mark.chaos("Least privilege: ssm:CancelCommand, on a host that never answers")
def test_cancel_command_is_needed_for_a_host_that_never_answers(function: LocalStack, host: DBHost):
    """FollowHostCommands is needed on every rotation for its polling actions; its CancelCommand
    only when a host never answers. Without it the function cannot stop the command it gave up on."""
    stack = function
    since, log_start = time.time(), stack.log_path.stat().st_size
    login = make_login(stack, host)
    token = stack.begin_rotation(login.arn)
    assert stack.invoke(stack.rotation_event("createSecret", login.arn, token)).ok
    login.pending_password()
    stack.set_fault(host.instance_id, never_answer=True, actions={"set"}, times=1)
    first_command = len(stack.commands)
    try:
        with stack.function_policy_without(actions=["ssm:CancelCommand"]):
            # A short Lambda timeout, so the test does not wait 300 s.
            r = stack.invoke(stack.rotation_event("setSecret", login.arn, token), timeout_s=30.0)
        hung = [inv for c in stack.commands[first_command:] for inv in c.invocations.values()
                if "never_answer" in inv.faults]
        statuses = [inv.status for inv in hung]
    finally:
        stack.clear_faults()
        stack.ssm.cancel_all()       # what the function could not do

    assert not r.ok and r.error_type == "HostCommandFailed", r.error
    denied = [x for x in function_requests_since(stack, since) if not x.ok]
    assert [(x.action, x.error) for x in denied] == [("CancelCommand", "AccessDenied")], denied
    assert hung and "Cancelled" not in statuses, f"the command was cancelled all the same: {statuses}"
    log = log_since(stack, log_start)
    assert "could not cancel the command" in log and "ssm:CancelCommand" in log
    # The restore still ran on the host: AWSCURRENT is what the database holds.
    assert stack.version_with(login.arn, "AWSCURRENT") != token
    assert_invariants(stack, login, since)


def test_only_what_the_policy_grants_can_be_withheld(stack: LocalStack):
    for kw in ({"sids": ["NoSuchStatement"]}, {"actions": ["ssm:StartSession"]}):
        with pytest.raises(KeyError):
            with stack.function_policy_without(*kw.get("sids", []), actions=kw.get("actions", [])):
                pass
    assert stack.function_policy_name == TEMPLATE_POLICY
    with stack.function_policy_without("PublishAlerts", actions=["ssm:CancelCommand"]):
        policy = stack.function_policy()
        assert "PublishAlerts" not in {st["Sid"] for st in policy}
        assert "ssm:CancelCommand" not in {a for st in policy for a in st["Action"]}
        assert "ssm:ListCommandInvocations" in {a for st in policy for a in st["Action"]}
    assert stack.function_policy_name == TEMPLATE_POLICY and len(stack.function_policy()) == len(_STATEMENTS)
