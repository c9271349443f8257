"""The operator commands (`rotator status|doctor|cancel`, `make status|doctor|cancel`) run as the real
binary against the local stack: moto with signature and IAM checks, the real function rotating a
real PostgreSQL login through the template's document, the host scripts run for real.

Every output of every command is kept and checked at the end for any password the secrets held.
"""

from __future__ import annotations

import json
import secrets

import pytest
from botocore.exceptions import ClientError

from local.databases import PostgresServer
from local.stack import FUNCTION_NAME, LocalStack, binary_problem

from .cli import OperatorCLI

INSTANCE = "i-0ab5000000000000a"
WINDOWS_INSTANCE = "i-0ab5000000000000b"
UNREGISTERED_INSTANCE = "i-0ab500000000dead0"
PASSWORDS: list[str] = []
CLI = OperatorCLI()
OUTPUTS = CLI.outputs
rotator, make = CLI.rotator, CLI.make


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
        stack.register_instance(WINDOWS_INSTANCE, "Windows", server.host_env())
        yield server


def new_login(stack, pg, *, secret_password=None, instances=(INSTANCE,), **secret_kw):
    """A login on the database and its secret; `secret_password` makes the secret disagree with it."""
    name = "ops_" + secrets.token_hex(4)
    password = "Init-" + secrets.token_hex(12)
    pg.create_login(name, password)
    stored = secret_password or password
    PASSWORDS.extend([password, stored])
    arn = stack.create_db_secret(f"ops/{name}", "postgres", pg, name, stored, list(instances), dbname="postgres",
                                 **secret_kw)
    return name, password, arn




def rotator_json(stack, *args):
    p = rotator(stack, *args, "--json")
    try:
        return p.returncode, json.loads(p.stdout)
    except ValueError:
        pytest.fail(f"--json printed no JSON document: {p.stdout!r} {p.stderr!r}")


def rotate_and_wait(stack, arn):
    p = make(stack, "rotate", f"SECRET_ID={arn}")
    assert p.returncode == 0, p.stdout + p.stderr
    return stack.wait_rotation(arn)


def remember_values(stack, arn):
    """Every password any version of the secret holds, for the leak check."""
    sm = stack.client("secretsmanager")
    for version in sm.list_secret_version_ids(SecretId=arn)["Versions"]:
        try:
            value = json.loads(sm.get_secret_value(SecretId=arn, VersionId=version["VersionId"])["SecretString"])
        except Exception:   # noqa: BLE001 - a version without a value holds no password
            continue
        PASSWORDS.append(value.get("password", ""))


def check_lines(out):
    """doctor's lines by check name: {name: (result, rest of the line)}."""
    rows = {}
    for line in out.splitlines():
        result, _, rest = line.partition(" ")
        if result in ("PASS", "FAIL", "SKIP"):
            name = rest.strip()[:30].strip()
            rows[name] = (result, rest)
    return rows


# ------------------------------------------------------------------------------------------ status
def test_status_of_a_healthy_secret_before_and_after_a_rotation(stack, pg):
    name, password, arn = new_login(stack, pg)
    p = make(stack, "status", f"SECRET_ID={arn}")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "last rotated    never" in p.stdout and "state           OK: no rotation pending" in p.stdout

    rec = rotate_and_wait(stack, arn)
    assert rec.ok, [(s.step, s.error_message) for s in rec.steps]
    remember_values(stack, arn)
    p = rotator(stack, "status", "--secret-id", arn)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert f"secret          {arn}" in out and f"function        {stack.function_arn}" in out
    assert "rotation        enabled: rate(85 days)" in out
    assert "last rotated    never" not in out and "next rotation   20" in out
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "AWSCURRENT" in lines[rec.token] and "created 20" in lines[rec.token]
    assert sum("AWSPREVIOUS" in line for line in lines.values()) == 1
    assert "STUCK" not in out

    code, state = rotator_json(stack, "status", "--secret-id", arn)
    assert code == 0 and state["verdict"] == "healthy"
    assert state["currentVersion"] == rec.token and state["pendingVersion"] is None
    assert state["rotationEnabled"] is True and state["rotationFunction"] == stack.function_arn
    assert pg.can_login(name, stack.secret_value(arn)["password"]) and not pg.can_login(name, password)


def test_a_stuck_rotation_is_diagnosed_and_cancelled_once_the_hosts_accept_awscurrent(stack, pg):
    """The host answers every `set` without its result line (the scripts still run): setSecret fails
    and so does the restore's proof, so the function keeps AWSPENDING. The host does accept
    AWSCURRENT (the restore really ran), so cancel proves it and removes AWSPENDING."""
    name, password, arn = new_login(stack, pg)
    current = stack.version_with(arn, "AWSCURRENT")
    stack.set_fault(INSTANCE, strip_result_line=True, actions={"set"})
    try:
        rec = rotate_and_wait(stack, arn)
    finally:
        stack.clear_faults()
    assert not rec.ok and rec.failed_step.step == "setSecret", rec.steps
    remember_values(stack, arn)
    assert stack.stages(arn)[rec.token] == ["AWSPENDING"]

    p = rotator(stack, "status", "--secret-id", arn)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"STUCK: version {rec.token} holds AWSPENDING but not AWSCURRENT" in p.stdout
    assert "last failure    setSecret failed at 20" in p.stdout and "(HostCommandFailed)" in p.stdout
    assert INSTANCE in p.stdout and "no ROTATOR-RESULT line" in p.stdout
    assert "make rotate SECRET_ID=" in p.stdout and "rotator cancel --secret-id" in p.stdout
    code, state = rotator_json(stack, "status", "--secret-id", arn)
    assert code == 1 and state["verdict"] == "stuck" and state["pendingVersion"] == rec.token
    assert state["pendingHasValue"] is True and state["currentVersion"] == current
    assert state["lastFailure"]["step"] == "setSecret" and state["lastFailure"]["reason"] == "HostCommandFailed"

    code, result = rotator_json(stack, "cancel", "--secret-id", arn)
    assert code == 0, result
    assert result["cancelled"] is True and result["pendingVersion"] == rec.token
    assert [h["instanceId"] for h in result["hosts"]] == [INSTANCE] and result["hosts"][0]["accepted"] is True
    assert stack.version_with(arn, "AWSPENDING") is None and stack.version_with(arn, "AWSCURRENT") == current
    assert pg.can_login(name, password)
    p = rotator(stack, "status", "--secret-id", arn)
    assert p.returncode == 0 and "state           OK" in p.stdout, p.stdout
    p = rotator(stack, "cancel", "--secret-id", arn)
    assert p.returncode == 0 and "nothing to cancel" in p.stdout, p.stdout


def test_cancel_refuses_and_changes_nothing_while_a_host_refuses_awscurrent(stack, pg):
    """The login is dropped: setSecret fails and no host can be proven to accept AWSCURRENT."""
    name, password, arn = new_login(stack, pg)
    pg.drop_login(name)
    rec = rotate_and_wait(stack, arn)
    assert not rec.ok and rec.failed_step.step == "setSecret"
    remember_values(stack, arn)
    before = stack.stages(arn)

    p = rotator(stack, "cancel", "--secret-id", arn)
    assert p.returncode == 1, p.stdout + p.stderr
    assert f"Nothing changed: not every host accepts AWSCURRENT, so version {rec.token} keeps AWSPENDING" in p.stdout
    assert INSTANCE in p.stdout and "make rotate SECRET_ID=" in p.stdout
    assert stack.stages(arn) == before
    code, result = rotator_json(stack, "cancel", "--secret-id", arn)
    assert code == 1 and result["cancelled"] is False and result["hosts"][0]["accepted"] is False

    # Once the host accepts AWSCURRENT again, the same command abandons the rotation.
    pg.create_login(name, password)
    p = rotator(stack, "cancel", "--secret-id", arn)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"Removed AWSPENDING from version {rec.token}" in p.stdout
    assert stack.version_with(arn, "AWSPENDING") is None


def test_status_of_an_unknown_secret_is_an_error_not_a_state(stack):
    p = rotator(stack, "status", "--secret-id", "arn:aws:secretsmanager:us-east-1:123456789012:secret:nope-AbCdEf")
    assert p.returncode == 2
    assert "cannot status" in p.stderr and "ResourceNotFoundException" in p.stderr


# ------------------------------------------------------------------------------------------ doctor
def test_doctor_passes_on_a_ready_secret(stack, pg):
    name, password, arn = new_login(stack, pg)
    p = make(stack, "doctor", f"SECRET_ID={arn}")
    assert p.returncode == 0, p.stdout + p.stderr
    rows = check_lines(p.stdout)
    assert set(rows) >= {"secret", "secret JSON", "rotation configured", "no rotation unfinished", "SSM document",
                         f"{INSTANCE} in SSM", f"{INSTANCE} logs in"}, rows
    assert all(result == "PASS" for result, _ in rows.values()), p.stdout
    assert "password present" in rows["secret JSON"][1] and "Online" in rows[f"{INSTANCE} in SSM"][1]
    assert stack.document_names["PostgresRotationDocument"] in rows["SSM document"][1]
    code, report = rotator_json(stack, "doctor", "--secret-id", arn)
    assert code == 0 and report["passed"] is True
    assert {c["result"] for c in report["checks"]} == {"pass"}
    # The dry run really ran the document's verify on the host, with AWSCURRENT's version.
    verify = [c for c in stack.commands if c.parameters.get("SecretId") == [arn]]
    assert verify and all(c.parameters["Action"] == ["verify"] for c in verify)
    assert verify[-1].parameters["VersionId"] == [stack.version_with(arn, "AWSCURRENT")]
    assert stack.version_with(arn, "AWSPENDING") is None


def failing_doctor(stack, arn, check):
    p = rotator(stack, "doctor", "--secret-id", arn)
    assert p.returncode == 1, p.stdout + p.stderr
    rows = check_lines(p.stdout)
    assert rows.get(check, ("?",))[0] == "FAIL", p.stdout
    assert "-> fix: " in rows[check][1]
    return rows


def test_doctor_without_rotation_configured(stack, pg):
    _, _, arn = new_login(stack, pg, configure_rotation=False)
    rows = failing_doctor(stack, arn, "rotation configured")
    assert "rotation is not enabled" in rows["rotation configured"][1]
    assert rows["SSM document"][0] == "SKIP"


def test_doctor_with_an_incomplete_secret(stack, pg):
    _, _, arn = new_login(stack, pg, drop=["instanceIds"])
    rows = failing_doctor(stack, arn, "secret JSON")
    assert "instanceIds" in rows["secret JSON"][1]
    assert rows["hosts log in with AWSCURRENT"][0] == "SKIP"


def test_doctor_with_the_ssm_document_missing(stack, pg):
    _, _, arn = new_login(stack, pg)
    name = stack.document_names["PostgresRotationDocument"]
    ssm = stack.client("ssm")
    ssm.delete_document(Name=name)
    try:
        rows = failing_doctor(stack, arn, "SSM document")
        assert f"{name} does not exist" in rows["SSM document"][1]
    finally:
        ssm.create_document(Content=json.dumps(stack.documents[name]), Name=name, DocumentType="Command",
                            DocumentFormat="JSON")


def test_doctor_with_the_instance_offline(stack, pg):
    _, _, arn = new_login(stack, pg)
    stack.ssm.set_ping_status(INSTANCE, "ConnectionLost")
    try:
        rows = failing_doctor(stack, arn, f"{INSTANCE} in SSM")
    finally:
        stack.ssm.set_ping_status(INSTANCE, "Online")
    assert "PingStatus ConnectionLost" in rows[f"{INSTANCE} in SSM"][1]


@pytest.mark.parametrize("old", ["3.3.2745.0", "3.3.987.0", "2.3.1644.0"])
def test_doctor_with_an_ssm_agent_too_old_for_the_documents(stack, pg, old):
    """The documents' parameters reach the scripts as SSM_<Name> variables, which agents set from
    3.3.2746.0 on (AWS's documentation of interpolationType ENV_VAR): doctor fails an older agent
    with the fix, and runs nothing on that host."""
    _, _, arn = new_login(stack, pg)
    stack.ssm.set_agent_version(INSTANCE, old)
    sent = len(stack.commands)
    try:
        rows = failing_doctor(stack, arn, f"{INSTANCE} in SSM")
    finally:
        stack.ssm.set_agent_version(INSTANCE, "3.3.3050.0")
    line = rows[f"{INSTANCE} in SSM"][1]
    assert f"SSM agent {old}" in line and "3.3.2746.0 or newer" in line and "AWS-UpdateSSMAgent" in line
    assert rows["hosts log in with AWSCURRENT"][0] == "SKIP"
    assert len(stack.commands) == sent
    # Compared number by number: 3.3.10000.0 is newer than 3.3.2746.0, though not as a string.
    stack.ssm.set_agent_version(INSTANCE, "3.3.10000.0")
    try:
        p = rotator(stack, "doctor", "--secret-id", arn)
    finally:
        stack.ssm.set_agent_version(INSTANCE, "3.3.3050.0")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "agent 3.3.10000.0" in check_lines(p.stdout)[f"{INSTANCE} in SSM"][1]


def test_doctor_with_a_host_of_the_wrong_platform_and_an_unknown_one(stack, pg):
    _, _, arn = new_login(stack, pg, instances=(WINDOWS_INSTANCE, UNREGISTERED_INSTANCE))
    rows = failing_doctor(stack, arn, f"{WINDOWS_INSTANCE} in SSM")
    assert "Windows host, but postgres runs on Linux" in rows[f"{WINDOWS_INSTANCE} in SSM"][1]
    assert rows[f"{UNREGISTERED_INSTANCE} in SSM"][0] == "FAIL"
    assert "not a managed instance" in rows[f"{UNREGISTERED_INSTANCE} in SSM"][1]


def test_doctor_when_the_host_cannot_log_in_with_awscurrent(stack, pg):
    _, _, arn = new_login(stack, pg, secret_password="Wrong-" + secrets.token_hex(12))
    rows = failing_doctor(stack, arn, f"{INSTANCE} logs in")
    assert "exit code 5" in rows[f"{INSTANCE} logs in"][1]
    code, report = rotator_json(stack, "doctor", "--secret-id", arn)
    assert code == 1 and report["passed"] is False


def test_doctor_before_the_first_rotation_skips_the_login_with_the_placeholder(stack, pg):
    """As deployed, AWSCURRENT holds a random password no host has, marked passwordPlaceholder: doctor
    passes the checks that can pass and skips the login it cannot prove yet (no host command), where
    the same secret without the mark fails that login."""
    _, _, arn = new_login(stack, pg, secret_password="Deployed-" + secrets.token_hex(12),
                          extra={"passwordPlaceholder": True})
    sent = len(stack.commands)
    p = rotator(stack, "doctor", "--secret-id", arn)
    assert p.returncode == 0, p.stdout + p.stderr
    rows = check_lines(p.stdout)
    assert rows["hosts log in with AWSCURRENT"][0] == "SKIP"
    assert "placeholder password" in rows["hosts log in with AWSCURRENT"][1]
    assert rows[f"{INSTANCE} in SSM"][0] == "PASS" and rows["SSM document"][0] == "PASS"
    assert len(stack.commands) == sent


def test_doctor_names_the_document_version_it_verified(stack, pg):
    """doctor's SendCommand names the DocumentVersion its GetDocument read, so a default version
    published between the check and the send is not what runs; SSM (here: the emulator) refuses a
    version the document does not have."""
    _, _, arn = new_login(stack, pg)
    shipped = stack.document_names["PostgresRotationDocument"]
    ssm = stack.client("ssm")
    version = ssm.get_document(Name=shipped, DocumentFormat="JSON")["DocumentVersion"]
    sent = len(stack.commands)
    p = rotator(stack, "doctor", "--secret-id", arn)
    assert p.returncode == 0, p.stdout + p.stderr
    ours = [c for c in stack.commands[sent:] if c.parameters.get("SecretId") == [arn]]
    assert ours, "doctor sent no command"
    assert all(c.document_name == shipped and c.document_version == version for c in ours), \
        [(c.document_name, c.document_version) for c in ours]
    assert all(c.ran_version == version for c in ours)

    sent = len(stack.commands)
    with pytest.raises(ClientError) as refused:
        ssm.send_command(DocumentName=shipped, DocumentVersion="99", InstanceIds=[INSTANCE],
                         Parameters={"Action": ["verify"], "SecretId": [arn],
                                     "VersionId": [stack.version_with(arn, "AWSCURRENT")]})
    assert refused.value.response["Error"]["Code"] == "InvalidDocumentVersion"
    assert len(stack.commands) == sent


def test_doctor_runs_no_document_but_the_one_this_rotator_ships(stack, pg, tmp_path):
    """Whoever may edit the function's configuration points POSTGRES_DOCUMENT at a document of their
    own (here: the shipped one with a line added that writes a marker file); an administrator's
    doctor must refuse it before sending anything, and pass again on the stack's document."""
    _, _, arn = new_login(stack, pg)
    marker = tmp_path / "ran-as-the-operator"
    shipped = stack.document_names["PostgresRotationDocument"]
    content = json.loads(json.dumps(stack.documents[shipped]))
    content["mainSteps"][0]["inputs"]["runCommand"].insert(1, f"touch {marker}")
    ssm, lam = stack.client("ssm"), stack.client("lambda")
    ssm.create_document(Content=json.dumps(content), Name="NotTheRotatorsDocument", DocumentType="Command", DocumentFormat="JSON")
    function = lam.get_function_configuration(FunctionName=FUNCTION_NAME)
    variables = function["Environment"]["Variables"]
    lam.update_function_configuration(FunctionName=FUNCTION_NAME,
                                      Environment={"Variables": {**variables, "POSTGRES_DOCUMENT": "NotTheRotatorsDocument"}})
    sent = len(stack.commands)
    try:
        rows = failing_doctor(stack, arn, "SSM document")
        detail = rows["SSM document"][1]
        assert "the document NotTheRotatorsDocument is not the one this rotator ships for postgres (its script has sha256" in detail
        assert "run the rotator built from the same commit as the stack, or redeploy" in detail
        assert rows["hosts log in with AWSCURRENT"][0] == "SKIP"
        stack.ssm.wait_idle()
        assert len(stack.commands) == sent, "a command was sent through a document the stack did not ship"
        assert not marker.exists()
    finally:
        lam.update_function_configuration(FunctionName=FUNCTION_NAME, Environment={"Variables": variables})
        ssm.delete_document(Name="NotTheRotatorsDocument")
    p = rotator(stack, "doctor", "--secret-id", arn)
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"{shipped} for postgres, the one this rotator ships" in check_lines(p.stdout)["SSM document"][1]
    assert not marker.exists()


# ------------------------------------------------------------------------------------------ metrics
def test_a_rotation_writes_embedded_metric_lines_and_they_reach_the_log_group(stack, pg):
    _, _, arn = new_login(stack, pg)
    rec = rotate_and_wait(stack, arn)
    assert rec.ok, rec.steps
    remember_values(stack, arn)
    lines = stack.step_lines(arn)
    assert [line["Step"] for line in lines] == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    for line in lines:
        directives = line["_aws"]["CloudWatchMetrics"]
        assert isinstance(line["_aws"]["Timestamp"], int)
        assert directives[0]["Namespace"] == "SecretsRotator"
        assert directives[0]["Dimensions"] == [["Step"], ["Step", "Outcome"]]
        assert line["Outcome"] == "Success" and line["VersionId"] == rec.token
        assert isinstance(line["StepDuration"], int) and line["StepDuration"] >= 0
        assert "Failures" not in line
    finish = lines[-1]
    assert [m["Name"] for d in finish["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]] == ["StepDuration", "RotationDuration"]
    assert finish["RotationDuration"] >= sum(line["StepDuration"] for line in lines[1:])
    # As in Lambda, the lines reach the function's log group, where status finds them.
    events = stack.client("logs").filter_log_events(logGroupName="/aws/lambda/rotator", filterPattern=f'"{arn}"')["events"]
    assert sum('"SecretsRotator"' in e["message"] for e in events) == 4


def test_a_failed_step_writes_a_failure_metric_with_its_reason(stack, pg):
    name, _, arn = new_login(stack, pg)
    pg.drop_login(name)
    rec = rotate_and_wait(stack, arn)
    assert not rec.ok
    failed = [line for line in stack.step_lines(arn) if line["Outcome"] == "Failure"]
    assert [line["Step"] for line in failed] == ["setSecret"]
    line = failed[0]
    assert line["Failures"] == 1 and line["Reason"] == "HostCommandFailed"
    assert {"Namespace": "SecretsRotator", "Dimensions": [[], ["Step", "Reason"]],
            "Metrics": [{"Name": "Failures", "Unit": "Count"}]} in line["_aws"]["CloudWatchMetrics"]
    assert INSTANCE in line["ErrorMessage"]


# ------------------------------------------------------------------------------------------ leaks
def test_no_output_held_a_password(stack):
    assert OUTPUTS, "run with the other tests of this module"
    leaked = [p[:4] + "…" for p in PASSWORDS if p and any(p in out for out in OUTPUTS)]
    assert not leaked, f"passwords in the operator commands' output: {leaked}"
    assert not [s for s in stack.secrets_in_play() if any(s in out for out in OUTPUTS)]
