"""Least privilege, on the real binary: the function's requests are evaluated against template.yaml's
own statements for its role, with their resources and conditions (local/iam_policy.py, through the
local stack). A full rotation passes with exactly that policy; then each statement is withheld in
turn (and in `make chaos` each action too) and something must break. What is withheld goes through
a ladder of scenarios until a request is denied: a rotation; a rotation whose setSecret fails (a
host loses its result line once); a setSecret on a host that never answers. What breaks must show:
the step fails naming the action, or no alert arrives (sns:Publish), or the silent host's command
is not cancelled (ssm:CancelCommand); the database and AWSCURRENT still agree afterwards (or, where
the host had already changed, AWSPENDING labels what it holds and a retry completes the rotation).
What breaks nothing in any scenario is not needed: the test says so.

One engine (PostgreSQL) is enough: the policy does not depend on it. The policy is swapped in the
package's one stack (`LocalStack.function_policy_without`), not a new stack per statement.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from local.cfn import load_template, policy_actions, role_policy_statements
from local.databases import PostgresServer
from local.stack import REPO, TEMPLATE_POLICY, LocalStack

from . import chaos
from .helpers import DBHost, Login, assert_invariants, assert_working_password_labelled, describe_rotation, make_login

INSTANCE_ID = "i-0e2e000000000a001"     # this module's own database host


def _actions(statement: dict) -> list[str]:
    acts = statement.get("Action", [])
    return [acts] if isinstance(acts, str) else list(acts)


_TEMPLATE = load_template(REPO / "template.yaml")
# A statement under `!If [Cond, statement, AWS::NoValue]` counts as its granted branch.
_STATEMENTS = [st.get("Fn::If", [None, st])[1] for st in role_policy_statements(_TEMPLATE, "RotationFunction")]
# Lambda itself writes the function's log with these (the code never calls CloudWatch Logs, and the
# local stack does not emulate the delivery): they cannot be shown needed here.
LAMBDAS_OWN = [st["Sid"] for st in _STATEMENTS if all(a.startswith("logs:") for a in _actions(st))]
SIDS = [st["Sid"] for st in _STATEMENTS if st["Sid"] not in LAMBDAS_OWN]
# The short form withholds the one action a statement test cannot single out (its statement is
# needed for the polling actions beside it); `make chaos` withholds every action.
ACTIONS = policy_actions(_TEMPLATE, "RotationFunction") if chaos.FULL else ["ssm:CancelCommand"]
# Denied actions after which the host may hold the pending password while AWSCURRENT is the old
# one. finishSecret's by the protocol (the hosts change first; Secrets Manager retries the step).
# Following a host command: the function cancels the command it cannot see and sends the current
# password back, but with CancelCommand denied too, the two scripts race. Either way the function
# promises that AWSPENDING still labels the pending password, so the retry completes the rotation.
HOST_MAY_HOLD_PENDING = {"secretsmanager:UpdateSecretVersionStage", "ssm:ListCommandInvocations",
                         "ssm:GetCommandInvocation"}
SILENT_HOST_TIMEOUT_S = 30.0        # a short Lambda timeout, so a silent host costs 30 s, not 300


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
    stack.runtime.cold_start()          # so the function reads its document (once per process) here
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
    assert [r.resources for r in by_action["ssm:GetDocument"]] == [[f"arn:aws:ssm:us-east-1:123456789012:document/{document}"]]
    sends = by_action["ssm:SendCommand"]
    assert sends and all(r.resources == [f"arn:aws:ssm:us-east-1:123456789012:document/{document}",
                                         f"arn:aws:ec2:us-east-1:123456789012:instance/{INSTANCE_ID}"]
                         for r in sends), sends
    assert_invariants(stack, login, since)


# ----------------------------------------------------------------------------- the scenario ladder
@dataclass
class Result:
    as_expected: bool           # what the scenario does under the template's policy
    failure: str = ""           # the failed step's error message
    silent_host_statuses: list[str] = field(default_factory=list)


def a_rotation(stack: LocalStack, host: DBHost, login: Login) -> Result:
    rec = rotate(stack, login)
    return Result(rec.ok, (rec.failed_step.error_message or "") if rec.failed_step else describe_rotation(rec))


def a_rotation_failing_at_set(stack: LocalStack, host: DBHost, login: Login) -> Result:
    stack.set_fault(host.instance_id, strip_result_line=True, actions={"set"}, times=1)
    rec = rotate(stack, login)
    failed = rec.failed_step
    return Result(failed is not None and failed.step == "setSecret" and failed.error_type == "HostCommandFailed",
                  (failed.error_message or "") if failed else describe_rotation(rec))


def a_set_on_a_silent_host(stack: LocalStack, host: DBHost, login: Login) -> Result:
    token = stack.begin_rotation(login.arn)
    r = stack.invoke(stack.rotation_event("createSecret", login.arn, token))
    if not r.ok:
        return Result(False, r.error_message or "")
    login.pending_password()                 # remembered for the leak checks
    stack.set_fault(host.instance_id, never_answer=True, actions={"set"}, times=1)
    first_command = len(stack.commands)
    try:
        r = stack.invoke(stack.rotation_event("setSecret", login.arn, token), timeout_s=SILENT_HOST_TIMEOUT_S)
        statuses = [inv.status for c in stack.commands[first_command:] for inv in c.invocations.values()
                    if "never_answer" in inv.faults]
    finally:
        stack.ssm.cancel_all()               # whatever the function could not cancel
    return Result(r.error_type == "HostCommandFailed" and bool(statuses) and set(statuses) == {"Cancelled"},
                  r.error_message or "", statuses)


SCENARIOS: list[Callable[[LocalStack, DBHost, Login], Result]] = [
    a_rotation, a_rotation_failing_at_set, a_set_on_a_silent_host]


def show_needed(stack: LocalStack, host: DBHost, *sids: str, actions: list[str] = ()) -> None:
    """Withholds `sids` / `actions` and climbs the ladder until a request is denied; then checks
    that only what was withheld was denied, that the break shows, and the invariants."""
    withheld = {a for st in stack.function_policy() if st["Sid"] in sids for a in _actions(st)} | set(actions)
    # A fresh process: what the function proves once per process (its documents) is proven again
    # under the reduced policy.
    stack.runtime.cold_start()
    login = make_login(stack, host)
    since = time.time()
    for scenario in SCENARIOS:
        log_start, alerts_before = stack.log_path.stat().st_size, len(stack.alerts())
        current_before = stack.version_with(login.arn, "AWSCURRENT")
        try:
            with stack.function_policy_without(*sids, actions=actions):
                result = scenario(stack, host, login)
        finally:
            stack.clear_faults()
        denied = [r for r in function_requests_since(stack, since) if not r.ok]
        if denied:
            break
        assert result.as_expected, f"{scenario.__name__} went wrong with no denial: {result}"
    else:
        pytest.fail(f"withholding {sorted(withheld)} broke nothing in any scenario: not needed")

    denied_actions = {f"{r.service}:{r.action}" for r in denied}
    # Only what was withheld was denied: the rest of the policy still allowed everything else.
    assert denied_actions <= withheld, [(r.action, r.denied_resource) for r in denied]
    assert all(r.error == "AccessDenied" and r.denied_by_withholding for r in denied), denied
    log = log_since(stack, log_start)
    if denied_actions == {"sns:Publish"}:
        assert not alerts_for(stack, login, alerts_before), "an alert arrived although Publish was denied"
        assert "could not publish the alert" in log and "sns:Publish" in log
    elif denied_actions == {"ssm:CancelCommand"}:
        assert result.silent_host_statuses and "Cancelled" not in result.silent_host_statuses, result
        assert "could not cancel the command" in log and "ssm:CancelCommand" in log
    else:
        assert not result.as_expected, result
        assert any(a in result.failure for a in denied_actions), \
            f"the failure does not name the denied action: {result.failure}"
    # The rotation did not complete: AWSCURRENT is where it was.
    assert stack.version_with(login.arn, "AWSCURRENT") == current_before
    if denied_actions & HOST_MAY_HOLD_PENDING:
        assert_working_password_labelled(login)
        pending = stack.version_with(login.arn, "AWSPENDING")
        assert pending, "AWSPENDING was removed although no host was proven to accept AWSCURRENT"
        # Secrets Manager's retry, with the template's policy back: the rotation completes.
        for step in ("setSecret", "testSecret", "finishSecret"):
            r = stack.invoke(stack.rotation_event(step, login.arn, pending))
            assert r.ok, f"retried {step}: {r.error}"
        assert stack.version_with(login.arn, "AWSCURRENT") == pending
    assert_invariants(stack, login, since)


@pytest.mark.chaos("Least privilege: every statement of the function's policy is needed")
@pytest.mark.parametrize("sid", SIDS)
def test_each_statement_is_needed(function: LocalStack, host: DBHost, sid: str):
    show_needed(function, host, sid)


@pytest.mark.chaos("Least privilege: every action of the function's policy is needed")
@pytest.mark.parametrize("action", ACTIONS)
def test_each_action_is_needed(function: LocalStack, host: DBHost, action: str):
    show_needed(function, host, actions=[action])


def test_the_templates_policy_as_resolved_allows_only_its_own_resources(stack: LocalStack, host: DBHost):
    """What the stack evaluates the function against is as narrow as the template: the database
    secrets and no other, its own documents, tagged instances only, its own topic."""
    from local.iam_policy import Resource, evaluate
    arn = "arn:aws:{}:us-east-1:123456789012:{}"
    login = make_login(stack, host)
    policy = stack.function_policy()        # resolved now: the login's secret is one of the database's
    other_secret = stack.client("secretsmanager").create_secret(Name=f"not-a-database-{time.time_ns()}",
                                                                SecretString="{}")["ARN"]
    document = Resource(arn.format("ssm", f"document/{stack.document_names['PostgresRotationDocument']}"))
    tagged = Resource(arn.format("ec2", f"instance/{INSTANCE_ID}"),
                      {"ssm:resourceTag/RotatorDatabase": "rotator-local"})

    def allowed(action: str, *resources: Resource) -> bool:
        return evaluate(policy, action, resources).allowed

    assert allowed("secretsmanager:PutSecretValue", Resource(login.arn))
    assert not allowed("secretsmanager:PutSecretValue", Resource(other_secret))
    assert not allowed("secretsmanager:DeleteSecret", Resource(login.arn))
    assert allowed("ssm:SendCommand", document, tagged)
    assert not allowed("ssm:SendCommand", Resource(arn.format("ssm", "document/AWS-RunShellScript")), tagged)
    assert allowed("ssm:GetDocument", document)
    assert not allowed("ssm:GetDocument", Resource(arn.format("ssm", "document/AWS-RunShellScript")))
    for tags in ({}, {"ssm:resourceTag/RotatorDatabase": "another-stack"}):
        assert not allowed("ssm:SendCommand", document, Resource(tagged.arn, tags)), tags
    assert allowed("sns:Publish", Resource(stack.topic_arn))
    assert not allowed("sns:Publish", Resource(arn.format("sns", "someone-elses-topic")))
    assert allowed("logs:PutLogEvents", Resource(arn.format("logs", "log-group:/aws/lambda/rotator:log-stream:x")))


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
