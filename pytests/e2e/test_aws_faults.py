"""AWS faults: errors, resets and slow answers injected per call between the function and moto
(the fault proxy, local/fault_proxy.py), once and persistently, on representative calls.

- once: the client's retry absorbs the fault and the rotation completes (for SNS Publish: the
  alert of a failing step still arrives);
- persistent: the step fails with a clear error naming the call, before the invocation deadline
  (the runtime reports no timeout); an alert is sent unless SNS itself is the faulted service;
  the version holding the password the database accepts keeps its label; once the fault is
  cleared, Secrets Manager's retry (the steps again, same token) completes the rotation, or found
  it cleanly abandoned and the next rotation completes.
Then the usual invariants (the `login` fixture): AWSCURRENT logs in, no crash, no leak.

The short form (`make test`) tries a fixed sample; `make chaos` the whole matrix, both engines.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from local.fault_proxy import FAULTS
from local.stack import LocalStack

from . import chaos
from .helpers import Login, assert_working_password_labelled, describe_steps, leaks, no_pending, rotation_outcome, run_steps

SCENARIO = "AWS faults"
# The invocation timeout of a faulted rotation: short (template.yaml says 300 s) so that a
# persistent slow answer runs into the deadline, not into the client's last attempt. A fault that
# happens once gets room for one attempt cut at the client's 20 s limit plus the rest of its step
# (the first host command of a step may use half of the time left).
TIMEOUT_S = {"once": 60.0, "persistent": 30.0}


@dataclass(frozen=True)
class Target:
    operation: str
    service: str
    step: str                 # the first step that makes the call


TARGETS = [
    Target("PutSecretValue", "secretsmanager", "createSecret"),
    Target("SendCommand", "ssm", "setSecret"),
    Target("ListCommandInvocations", "ssm", "setSecret"),          # polling a host command
    Target("UpdateSecretVersionStage", "secretsmanager", "finishSecret"),
    Target("Publish", "sns", "testSecret"),                        # only a failing step alerts
]
MODES = {"once": 1, "persistent": None}

SHORT_SAMPLE = {
    ("PutSecretValue", "503", "once"),
    ("SendCommand", "reset", "persistent"),
    ("ListCommandInvocations", "slow", "persistent"),
    ("UpdateSecretVersionStage", "throttle", "persistent"),
    ("Publish", "429", "once"),
}

# make chaos: every fault on both engines; make test: the sample, each fault on one engine in turn
# (the function's handling of an AWS fault does not depend on the engine behind the host).
_FAULTS = [(t, kind, mode) for t in TARGETS for kind in FAULTS for mode in MODES if chaos.FULL or (t.operation, kind, mode) in SHORT_SAMPLE]
_ENGINES = ("postgres", "mariadb")
CASES = [pytest.param(engine, t, kind, mode, id=f"{engine}-{t.operation}-{kind}-{mode}")
         for engine in _ENGINES  # one engine's cases together: each engine's database starts once
         for i, (t, kind, mode) in enumerate(_FAULTS) if chaos.FULL or _ENGINES[i % 2] == engine]


def assert_alert_names(alerts: list[dict], login: Login, step: str) -> None:
    text = " ".join(f"{a['subject']}\n{a['message']}" for a in alerts)
    assert login.arn in text and step in text, f"no alert for {step} of {login.arn}: {text!r}"
    assert not leaks(text, login.passwords), "a password is in the alert"


# The calls that follow a host command after SendCommand.
FOLLOWING = {"ListCommandInvocations", "GetCommandInvocation"}


@pytest.mark.chaos(SCENARIO)
@pytest.mark.parametrize("db, target, kind, mode", CASES, indirect=["db"])
def test_aws_fault(function: LocalStack, login: Login, target: Target, kind: str, mode: str):
    stack = function
    old_version = stack.version_with(login.arn, "AWSCURRENT")
    alerts_before = len(stack.alerts())
    log_before = len(stack.function_log())
    if target.service == "sns":
        # A step must fail for the function to publish: the host's verification loses its result line.
        stack.set_fault(login.db.instance_id, strip_result_line=True, actions={"verify"}, times=1)
    token = stack.begin_rotation(login.arn)
    rule = stack.faults.fail(target.operation, kind, times=MODES[mode], delay_s=TIMEOUT_S[mode] + 10)
    try:
        results = run_steps(stack, login.arn, token, TIMEOUT_S[mode])
    finally:
        stack.clear_faults()
    alerts = stack.alerts()[alerts_before:]
    failed = [(step, r) for step, r in results if not r.ok]
    assert rule.hits >= 1, f"{target.operation} was never called: {describe_steps(results)}"
    timed_out = [step for step, r in failed if r.error_type == "Sandbox.Timedout"]
    assert not timed_out, f"the function ran past its deadline: {describe_steps(results)}"

    if target.service == "sns":
        assert [(s, r.error_type) for s, r in failed] == [("testSecret", "HostCommandFailed")], describe_steps(results)
        if mode == "once" or kind == "slow":
            # A slow answer comes after SNS did publish: the alert arrives (maybe more than once).
            assert_alert_names(alerts, login, "testSecret")
        else:
            assert not alerts, "SNS failed every attempt, yet an alert arrived"
        if mode == "persistent":
            assert "could not publish the alert" in stack.function_log()[log_before:]
    elif mode == "once":
        assert rule.hits == 1
        assert not failed, f"one {kind} on {target.operation} was not absorbed: {describe_steps(results)}"
        assert rotation_outcome(login, token, old_version) == "completed"
        return
    else:
        assert [s for s, _ in failed] == [target.step], describe_steps(results)
        error_type, message = failed[0][1].error
        # A command that was sent but cannot be followed is cancelled and rolled back: a host failure.
        expected = "HostCommandFailed" if target.operation in FOLLOWING else "AWSError"
        assert error_type == expected and target.operation in message, f"{error_type}: {message}"
        assert_alert_names(alerts, login, target.step)

    # The fault is cleared: Secrets Manager retries the same version.
    assert_working_password_labelled(login)
    retry = run_steps(stack, login.arn, token)
    if rotation_outcome(login, token, old_version) == "abandoned":
        # Cleanly abandoned (every host back on AWSCURRENT): the next rotation starts afresh.
        assert not retry[0][1].ok, "the retry of an abandoned version must fail its guard"
        new_token = stack.begin_rotation(login.arn)
        retry = run_steps(stack, login.arn, new_token)
        assert all(r.ok for _, r in retry), describe_steps(retry)
        assert no_pending(stack.stages(login.arn))
        assert stack.version_with(login.arn, "AWSCURRENT") == new_token
    else:
        assert all(r.ok for _, r in retry), f"the retry failed: {describe_steps(retry)}"
