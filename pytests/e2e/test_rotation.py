"""End to end, on the real binary: Secrets Manager (moto) -> Runtime API -> ./bootstrap -> SSM ->
the template's scripts -> real PostgreSQL / MariaDB. Every scenario runs for both engines.

After every scenario (the `login` fixture) the invariants hold: AWSCURRENT logs in, the function
did not crash or break the Runtime API protocol, moto accepted every request it signed, and no
password, credential or RotationToken reached its log.
"""

from __future__ import annotations

import uuid

import botocore.exceptions
import pytest

from local.stack import LocalStack

from .helpers import (
    STEPS,
    Login,
    alerts_since,
    assert_alert,
    commands_for,
    describe_rotation,
    dump,
    leaks,
    make_login,
    no_pending,
    random_password,
    rotate_with_cli,
    run_cli,
)


# --------------------------------------------------------------------------------- happy path
def test_rotation_through_the_aws_cli(function: LocalStack, login: Login):
    stack = function
    old_version = stack.version_with(login.arn, "AWSCURRENT")
    before_value = login.value()
    first_command = len(stack.commands)

    token, rec = rotate_with_cli(stack, login)

    assert rec.ok, describe_rotation(rec)
    assert [s.step for s in rec.steps] == STEPS
    stages = stack.stages(login.arn)
    assert stages[token] == ["AWSCURRENT"], stages
    assert stages[old_version] == ["AWSPREVIOUS"], stages
    assert no_pending(stages), stages
    after_value = login.value()
    new_password = after_value["password"]
    assert new_password != login.password
    assert {k: v for k, v in after_value.items() if k != "password"} == \
        {k: v for k, v in before_value.items() if k != "password"}, "createSecret must copy every other field"
    assert login.can_login(new_password), "the new AWSCURRENT password does not log in"
    assert not login.can_login(login.password), "the old password still logs in"

    # What went to the hosts: identifiers only, the engine's document, set then verify, then
    # finishSecret's settle (a set of the version it made AWSCURRENT).
    cmds = commands_for(stack, login.arn, first_command)
    assert [c.action for c in cmds] == ["set", "verify", "set"], dump([c.parameters for c in cmds])
    for c in cmds:
        assert c.instance_ids == [login.db.instance_id]
        assert set(c.parameters) == {"Action", "SecretId", "VersionId"}
        assert c.parameters["VersionId"] == [token]
        assert not leaks(dump(c.parameters) + c.comment, login.passwords)
    if login.db.name == "postgres":
        assert not leaks(login.db.server.server_log(), [new_password]), "clear text in the PostgreSQL log"

    log = stack.function_log()
    assert not leaks(log, login.passwords + stack.secrets_in_play())
    assert rec.rotation_token and rec.rotation_token not in log


# --------------------------------------------------------------------------------- idempotence
def test_every_step_twice(function: LocalStack, login: Login):
    stack = function
    old_version = stack.version_with(login.arn, "AWSCURRENT")
    token = stack.begin_rotation(login.arn)
    assert stack.stages(login.arn)[token] == ["AWSPENDING"]
    with pytest.raises(botocore.exceptions.ClientError) as e:   # as AWS: the new version is empty
        stack.client("secretsmanager").get_secret_value(SecretId=login.arn, VersionId=token,
                                                        VersionStage="AWSPENDING")
    assert e.value.response["Error"]["Code"] == "ResourceNotFoundException"

    first_command = len(stack.commands)
    pending = None
    for step in STEPS:
        for attempt in (1, 2):
            r = stack.invoke(stack.rotation_event(step, login.arn, token))
            assert r.ok, f"{step} attempt {attempt}: {r.error}"
            if step == "createSecret":
                value = login.pending_password()
                pending = pending or value
                assert value == pending, "a second createSecret changed the pending password"
            if step == "setSecret":
                assert login.can_login(pending)
                assert not login.can_login(login.password)

    stages = stack.stages(login.arn)
    assert stages[token] == ["AWSCURRENT"] and stages[old_version] == ["AWSPREVIOUS"], stages
    assert no_pending(stages), stages
    assert login.current_password() == pending
    # The second setSecret found the work done and changed nothing on the host.
    sets = [c for c in commands_for(stack, login.arn, first_command) if c.comment == "rotator setSecret: set"]
    assert len(sets) == 2, dump([c.parameters for c in sets])
    outcomes = [inv.stdout.strip().splitlines()[-1] for c in sets for inv in c.invocations.values()]
    assert outcomes[0].endswith("outcome=changed") and outcomes[1].endswith("outcome=unchanged"), outcomes


# --------------------------------------------------------------------------------- failures
def test_failing_set_missing_login(function: LocalStack, login: Login):
    stack = function
    current_version = stack.version_with(login.arn, "AWSCURRENT")
    n_alerts = len(stack.alerts())
    deaths = len(stack.runtime.deaths)
    login.db.server.drop_login(login.username)

    token, rec = rotate_with_cli(stack, login)

    assert not rec.ok
    failed = rec.failed_step
    assert failed.step == "setSecret", describe_rotation(rec)
    assert [s.step for s in rec.steps] == ["createSecret", "setSecret"], "steps after a failure must not run"
    # The failure came back through the Runtime API's /error with a proper body.
    inv = next(i for i in stack.runtime.invocations if i.request_id == failed.request_id)
    assert inv.result.error_body and inv.result.error_body["errorType"] == failed.error_type
    assert failed.error_type == "HostCommandFailed", failed
    assert login.db.instance_id in failed.error_message
    stages = stack.stages(login.arn)
    assert stack.version_with(login.arn, "AWSCURRENT") == current_version
    assert login.current_password() == login.password
    # No host can be proven to accept AWSCURRENT (the login is gone): AWSPENDING must stay.
    assert stages.get(token) == ["AWSPENDING"], stages
    login.password_of(token)   # remember it, so the leak checks look for it too
    assert_alert(alerts_since(stack, n_alerts), login, "setSecret")
    assert len(stack.runtime.deaths) == deaths

    # The host is fixed; Secrets Manager retries with the same token; the warm function serves it.
    login.db.server.create_login(login.username, login.password)
    for step in STEPS:
        r = stack.invoke(stack.rotation_event(step, login.arn, token))
        assert r.ok, f"retry {step}: {r.error}"
        assert not r.cold_start
    assert stack.stages(login.arn)[token] == ["AWSCURRENT"]
    assert login.can_login(login.current_password())


def test_failing_verify_after_a_good_set(function: LocalStack, login: Login):
    stack = function
    current_version = stack.version_with(login.arn, "AWSCURRENT")
    n_alerts = len(stack.alerts())
    token = stack.begin_rotation(login.arn)
    for step in ("createSecret", "setSecret"):
        r = stack.invoke(stack.rotation_event(step, login.arn, token))
        assert r.ok, f"{step}: {r.error}"
    pending = login.pending_password()
    assert login.can_login(pending)

    drift = random_password()               # someone changes the password out of band
    login.passwords.append(drift)
    login.db.server.set_password(login.username, drift)

    r = stack.invoke(stack.rotation_event("testSecret", login.arn, token))
    assert not r.ok
    assert r.error_type == "HostCommandFailed", r.error
    assert stack.version_with(login.arn, "AWSCURRENT") == current_version
    assert login.can_login(login.password), "the rollback to AWSCURRENT did not hold"
    assert not login.can_login(drift) and not login.can_login(pending)
    # Every host accepts AWSCURRENT again: the abandoned pending version may lose its label.
    stages = stack.stages(login.arn)
    assert no_pending(stages), stages
    assert_alert(alerts_since(stack, n_alerts), login, "testSecret")


@pytest.mark.chaos("SSM faults: Success without the result line")
@pytest.mark.parametrize("fault", ["first-set-only", "every-set"])
def test_success_without_result_line(function: LocalStack, login: Login, fault: str):
    """SSM says Success, exit code 0, but the ROTATOR-RESULT line is missing: not a success."""
    stack = function
    current_version = stack.version_with(login.arn, "AWSCURRENT")
    n_alerts = len(stack.alerts())
    stack.set_fault(login.db.instance_id, strip_result_line=True, actions={"set"},
                    times=1 if fault == "first-set-only" else None)
    first_command = len(stack.commands)

    token, rec = rotate_with_cli(stack, login)

    assert not rec.ok and rec.failed_step.step == "setSecret", describe_rotation(rec)
    stripped = [inv for c in commands_for(stack, login.arn, first_command) for inv in c.invocations.values()
                if "strip_result_line" in inv.faults]
    assert stripped and all(i.status == "Success" and i.response_code == 0 for i in stripped)
    assert stack.version_with(login.arn, "AWSCURRENT") == current_version
    assert login.current_password() == login.password
    assert login.can_login(login.password)
    login.password_of(token)
    stages = stack.stages(login.arn)
    if fault == "first-set-only":
        assert no_pending(stages), stages              # the rollback was proven
    else:
        assert stages.get(token) == ["AWSPENDING"], stages   # not proven: the label must stay
    assert_alert(alerts_since(stack, n_alerts), login, "setSecret")


@pytest.mark.chaos("SSM faults: agent never answers")
def test_host_that_never_answers(function: LocalStack, login: Login):
    """The host changes the password but its answer never comes: the function must stop waiting
    before its deadline, cancel the command, put AWSCURRENT back, and say so."""
    stack = function
    n_alerts = len(stack.alerts())
    token = stack.begin_rotation(login.arn)
    assert stack.invoke(stack.rotation_event("createSecret", login.arn, token)).ok
    login.pending_password()
    stack.set_fault(login.db.instance_id, never_answer=True, run_before_hanging=True, actions={"set"}, times=1)
    first_command = len(stack.commands)
    timeout = 30.0                      # a short Lambda timeout, so the test does not wait 300 s
    r = stack.invoke(stack.rotation_event("setSecret", login.arn, token), timeout_s=timeout)
    assert not r.ok
    assert r.error_type == "HostCommandFailed", r.error     # not a Lambda timeout: it stopped in time
    assert r.duration_s < timeout
    hung = [inv for c in commands_for(stack, login.arn, first_command) for inv in c.invocations.values()
            if "never_answer" in inv.faults]
    assert hung and all(inv.status == "Cancelled" for inv in hung), [(i.status, i.faults) for i in hung]
    assert stack.version_with(login.arn, "AWSCURRENT") != token
    assert login.can_login(login.password), "the rollback after a silent host did not hold"
    assert_alert(alerts_since(stack, n_alerts), login, "setSecret")


def test_rotate_immediately_false_runs_only_test_secret(function: LocalStack, login: Login):
    """RotateImmediately=false: Secrets Manager only tries testSecret on a copy of AWSCURRENT."""
    stack = function
    _, first = rotate_with_cli(stack, login)            # the trial must use the *current* value
    assert first.ok, describe_rotation(first)
    current_password = login.current_password()
    before = stack.stages(login.arn)
    p = run_cli(stack, "secretsmanager", "rotate-secret", "--secret-id", login.arn, "--no-rotate-immediately")
    assert p.returncode == 0, p.stderr
    rec = stack.wait_rotation(login.arn)
    assert [s.step for s in rec.steps] == ["testSecret"]
    assert rec.ok, describe_rotation(rec)
    assert stack.stages(login.arn) == before, "the trial must leave the versions as they were"
    assert login.current_password() == current_password


# --------------------------------------------------------------------------------- bad input
def _bad_secret(stack: LocalStack, login: Login, **kw) -> tuple[str, str]:
    """A secret with bad content, rotation configured, and an (empty) pending version."""
    name = f"{login.db.name}/bad-{uuid.uuid4().hex[:8]}"
    arn = stack.create_db_secret(name, login.db.engine, login.db.server, login.username, login.password,
                                 [login.db.instance_id], dbname=login.db.dbname, **kw)
    return arn, stack.begin_rotation(arn)


def _bad_cases(stack: LocalStack, login: Login):
    good_token = str(uuid.uuid4())
    ev = stack.rotation_event("createSecret", login.arn, good_token)
    yield "not JSON", b"{this is not json", login.arn
    yield "JSON array", ["createSecret"], login.arn
    yield "JSON string", "createSecret", login.arn
    yield "JSON null", None, login.arn
    yield "empty object", {}, login.arn
    yield "Step is a number", dict(ev, Step=1), login.arn
    yield "SecretId is a list", dict(ev, SecretId=[login.arn]), login.arn
    yield "token is a number", dict(ev, ClientRequestToken=12345678901234567890123456789012345), login.arn
    yield "RotationToken is an object", dict(ev, RotationToken={"a": 1}), login.arn
    yield "unknown step", dict(ev, Step="deleteSecret"), login.arn
    yield "token too short", dict(ev, ClientRequestToken="abc"), login.arn
    yield "token with a quote", dict(ev, ClientRequestToken="'" + "a" * 40), login.arn
    yield "token not a version", ev, login.arn
    yield "unknown secret", dict(ev, SecretId=login.arn + "x"), login.arn
    for label, kw in [
        ("secret without instanceIds", {"drop": ["instanceIds"]}),
        ("secret without username", {"drop": ["username"]}),
        ("secret without password", {"drop": ["password"]}),
        ("secret not JSON", {"secret_string": "password=hunter2"}),
        ("unknown engine", {"extra": {"engine": "oracle"}}),
        ("instance id with a command", {"extra": {"instanceIds": ["i-0123456789abcdef0; reboot"]}}),
        ("instance id not hex", {"extra": {"instanceIds": ["i-0123456789ABCDEFG"]}}),
        ("51 instances", {"extra": {"instanceIds": ["i-%017x" % n for n in range(51)]}}),
        ("no instances", {"extra": {"instanceIds": []}}),
    ]:
        arn, token = _bad_secret(stack, login, **kw)
        yield label, stack.rotation_event("createSecret", arn, token), arn
    arn, token = _bad_secret(stack, login)
    stack.configure_rotation(arn, enabled=False)
    yield "rotation disabled", stack.rotation_event("createSecret", arn, token), arn


def test_bad_input_is_refused_and_changes_nothing(function: LocalStack, login: Login):
    stack = function
    failures = []
    for label, event, arn in _bad_cases(stack, login):
        before = stack.stages(arn)
        commands, rejected = len(stack.commands), len(stack.ssm.rejected)
        r = stack.invoke(event)
        problems = []
        if r.ok:
            problems.append(f"answered OK: {r.payload!r}")
        elif not (isinstance(r.error_body, dict) and r.error_body.get("errorType") and r.error_body.get("errorMessage")):
            problems.append(f"no proper /error body: {r.error}")
        if stack.stages(arn) != before:
            problems.append(f"stages changed: {before} -> {stack.stages(arn)}")
        if len(stack.commands) != commands or len(stack.ssm.rejected) != rejected:
            problems.append("a SendCommand was made")
        if problems:
            failures.append(f"{label}: {'; '.join(problems)}")
    assert not failures, "\n".join(failures)
    assert not leaks(stack.function_log(), login.passwords + ["hunter2"])

    # The same warm process still rotates.
    starts = len(stack.runtime.starts)
    token, rec = rotate_with_cli(stack, login)
    assert rec.ok, describe_rotation(rec)
    assert len(stack.runtime.starts) == starts
    assert login.can_login(login.current_password()) and not login.can_login(login.password)


# --------------------------------------------------------------------------------- signatures
def test_every_function_request_was_signed_and_allowed(function: LocalStack, db):
    stack = function
    if not stack.function_requests():          # run alone: make the function call AWS
        lg = make_login(stack, db)
        _, rec = rotate_with_cli(stack, lg)
        assert rec.ok, describe_rotation(rec)
    reqs = stack.function_requests()
    assert reqs, "the function made no request"
    rejected = [r for r in reqs if not r.ok and not r.denied_by_withholding]   # test_least_privilege's
    assert not rejected, rejected
    assert all(r.session_token for r in reqs), "a request without the session token"
    assert {r.service for r in reqs} <= {"secretsmanager", "ssm", "sns"}
    strangers = [r for r in stack.auth_log if r.principal.startswith(("unknown", "anonymous"))
                 and not r.access_key_id.startswith("AKIAPROBE")]    # test_local_stack's own probe
    assert not strangers, strangers
    log = stack.function_log_under_template_policy()
    for word in ("InvalidSignature", "SignatureDoesNotMatch", "UnrecognizedClient", "IncompleteSignature",
                 "AccessDenied", "MissingAuthenticationToken"):
        assert word not in log, word
