"""The local stack itself: what it promises the end-to-end tests, checked through the real APIs.

These tests need no function binary: they prove that moto checks signatures and
IAM, that SSM behaves as the function must expect (late invocations, validation, cancel, faults),
and that the Runtime API speaks the Lambda protocol.
"""

from __future__ import annotations

import json
import sys
import textwrap
import time
import uuid

import botocore.exceptions
import pytest

from local.names import LOG_GROUP
from local.runtime_api import RuntimeAPI
from local.stack import REGION, LocalStack

from .helpers import make_login


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return exc.response["Error"]["Code"]


# ----------------------------------------------------------------------------- authentication
def test_requests_are_signature_and_iam_checked(stack: LocalStack):
    assert stack.auth_check["rejected"], "the startup probe found signature checking off"
    sm_admin = stack.client("secretsmanager")
    arn = sm_admin.create_secret(Name=f"auth-probe-{uuid.uuid4().hex[:8]}", SecretString="{}")["ARN"]

    bad_secret = dict(stack.admin, SecretAccessKey="wrong" + stack.admin["SecretAccessKey"][5:])
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stack.client("secretsmanager", bad_secret).describe_secret(SecretId=arn)
    assert error_code(e.value) == "InvalidSignatureException"

    unknown = {"AccessKeyId": "AKIAPROBE" + "Z" * 11, "SecretAccessKey": "x" * 40}   # see test_rotation
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stack.client("secretsmanager", unknown).describe_secret(SecretId=arn)
    assert error_code(e.value) == "UnrecognizedClientException"

    # Temporary credentials are useless without their session token, and with someone else's.
    fn = stack.function_role_test_credentials
    for creds in ({"AccessKeyId": fn["AccessKeyId"], "SecretAccessKey": fn["SecretAccessKey"]},
                  dict(fn, SessionToken=stack.host_role_test_credentials["SessionToken"])):
        with pytest.raises(botocore.exceptions.ClientError) as e:
            stack.client("secretsmanager", creds).describe_secret(SecretId=arn)
        assert error_code(e.value) == "UnrecognizedClientException"

    # The function's role: exactly its actions. The host's role: GetSecretValue only.
    stack.client("secretsmanager", fn).describe_secret(SecretId=arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stack.client("secretsmanager", fn).delete_secret(SecretId=arn)
    assert error_code(e.value) == "AccessDeniedException"
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stack.client("sns", fn).create_topic(Name="not-allowed")
    assert error_code(e.value) == "AuthorizationError"
    host = stack.host_role_test_credentials
    stack.client("secretsmanager", host).get_secret_value(SecretId=arn)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stack.client("secretsmanager", host).put_secret_value(SecretId=arn, SecretString="{}")
    assert error_code(e.value) == "AccessDeniedException"

    denied = [r for r in stack.auth_log if not r.ok]
    assert {r.error for r in denied} >= {"SignatureDoesNotMatch", "InvalidClientTokenId", "AccessDenied"}


def test_sns_checks_the_form_as_botocore_encodes_it(stack: LocalStack):
    """moto runs unpatched here: its signature check re-encodes a form post as botocore does. A body
    with %20 for a space (valid form encoding, which AWS accepts since it hashes the bytes sent) is
    refused; the same parameters as botocore writes them (what the function sends, proven byte for
    byte in Tests/AWSTests/RequestTests.swift) are accepted. So the alert tests, which read what
    the function published, prove the function's encoding against moto's own check."""
    import urllib.error
    import urllib.request
    from urllib.parse import quote, urlencode

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    fn = stack.function_role_test_credentials
    pairs = [("Action", "Publish"), ("Version", "2010-03-31"), ("TopicArn", stack.topic_arn),
             ("Subject", "probe"), ("Message", "a form with spaces, + and ~")]

    def publish(body: str) -> int:
        request = AWSRequest(method="POST", url=stack.url + "/", data=body.encode(),
                             headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        SigV4Auth(Credentials(fn["AccessKeyId"], fn["SecretAccessKey"], fn["SessionToken"]), "sns",
                  REGION).add_auth(request)
        sent = urllib.request.Request(request.url, data=request.body, headers=dict(request.headers.items()), method="POST")
        try:
            with urllib.request.urlopen(sent, timeout=30) as answer:
                return answer.status
        except urllib.error.HTTPError as refused:
            assert b"SignatureDoesNotMatch" in refused.read()
            return refused.code

    assert publish("&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in pairs)) == 403
    assert publish(urlencode(pairs)) == 200


# What the four steps call, and nothing else (DESIGN: least privilege).
FUNCTION_ACTIONS = [
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:GetRandomPassword",
    "ssm:SendCommand",
    # Each document's default version, checked against the shipped scripts before the first command.
    "ssm:GetDocument",
    "ssm:GetCommandInvocation",
    "ssm:ListCommandInvocations",
    "ssm:CancelCommand",
    "sns:Publish",
]


def test_the_function_role_is_the_templates_and_least_privilege(stack: LocalStack):
    """The stack's role is built from template.yaml's statements; they grant exactly what the steps call."""
    from local.cfn import policy_actions
    assert stack.function_actions == policy_actions(stack._template, "RotationFunction")
    assert sorted(set(stack.function_actions)) == sorted(FUNCTION_ACTIONS)


# ----------------------------------------------------------------------------- the function's environment
def test_lambda_environment_is_lambdas_and_nothing_else(stack: LocalStack):
    env = stack._lambda_env("127.0.0.1:9")
    for key in ("AWS_LAMBDA_RUNTIME_API", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "LAMBDA_TASK_ROOT", "AWS_LAMBDA_FUNCTION_NAME",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_LOG_FORMAT", "SNS_TOPIC_ARN",
                "POSTGRES_DOCUMENT", "MYSQL_DOCUMENT", "SQLSERVER_DOCUMENT"):
        assert env.get(key), key
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA"), "the function must get temporary credentials"
    for key in ("HOME", "PYTHONPATH", "VIRTUAL_ENV", "PYENV_ROOT", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        assert key not in env, key
    for var in ("POSTGRES_DOCUMENT", "MYSQL_DOCUMENT", "SQLSERVER_DOCUMENT"):
        assert env[var] in stack.documents
    assert env["SNS_TOPIC_ARN"] == stack.topic_arn


def test_documents_are_the_templates(stack: LocalStack):
    from local.ssm_runner import load_documents
    ssm = stack.client("ssm")
    for logical, content in load_documents(stack.template_path).items():
        doc = ssm.get_document(Name=stack.document_names[logical])
        assert json.loads(doc["Content"]) == content
        assert doc["DocumentType"] == "Command"


# ----------------------------------------------------------------------------- SSM
def _send(ssm, stack, doc, iid, action, arn, version, **kw):
    return ssm.send_command(DocumentName=doc, InstanceIds=[iid], TimeoutSeconds=60,
                            Parameters={"Action": [action], "SecretId": [arn], "VersionId": [version]},
                            **kw)["Command"]["CommandId"]


def _wait(ssm, cid, iid, timeout=60):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            inv = ssm.get_command_invocation(CommandId=cid, InstanceId=iid)
        except botocore.exceptions.ClientError as e:
            assert error_code(e) == "InvocationDoesNotExist"
            time.sleep(0.1)
            continue
        if inv["Status"] not in ("Pending", "InProgress", "Delayed", "Cancelling"):
            return inv
        time.sleep(0.2)
    raise AssertionError("invocation did not finish")


def _doc_for(stack, db):
    logical = "PostgresRotationDocument" if db.name == "postgres" else "MySQLRotationDocument"
    return stack.document_names[logical]


def test_send_command_runs_the_real_document(stack: LocalStack, db):
    login = make_login(stack, db)
    ssm = stack.client("ssm", stack.function_role_test_credentials)
    version = stack.version_with(login.arn, "AWSCURRENT")
    cid = _send(ssm, stack, _doc_for(stack, db), db.instance_id, "verify", login.arn, version)
    # As real SSM: right after SendCommand the invocation is not known yet.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ssm.get_command_invocation(CommandId=cid, InstanceId=db.instance_id)
    assert error_code(e.value) == "InvocationDoesNotExist"
    assert ssm.list_command_invocations(CommandId=cid)["CommandInvocations"] == []
    inv = _wait(ssm, cid, db.instance_id)
    assert inv["Status"] == "Success" and inv["ResponseCode"] == 0, inv["StandardErrorContent"]
    assert inv["StandardOutputContent"].splitlines()[-1] == \
        f"ROTATOR-RESULT action=verify version={version} outcome=verified"
    listed = ssm.list_command_invocations(CommandId=cid, Details=True)["CommandInvocations"]
    assert [i["Status"] for i in listed] == ["Success"]
    assert listed[0]["CommandPlugins"][0]["ResponseCode"] == 0

    # A refused password is a Failed invocation with the contract's exit code.
    db.server.set_password(login.username, "drifted-" + uuid.uuid4().hex)
    cid = _send(ssm, stack, _doc_for(stack, db), db.instance_id, "verify", login.arn, version)
    inv = _wait(ssm, cid, db.instance_id)
    assert (inv["Status"], inv["ResponseCode"]) == ("Failed", 5)
    assert "ROTATOR-RESULT" not in inv["StandardOutputContent"]


@pytest.mark.parametrize("change, code", [
    ({"DocumentName": "NoSuchDocument"}, "InvalidDocument"),
    ({"Parameters": {"Action": ["drop"]}}, "InvalidParameters"),
    ({"Parameters": {"Password": ["hunter2"]}}, "InvalidParameters"),
    ({"Parameters": {"VersionId": ["short"]}}, "InvalidParameters"),
    ({"Parameters": {"SecretId": ["arn:aws:secretsmanager:us-east-1:123456789012:secret:x;reboot"]}},
     "InvalidParameters"),
    ({"InstanceIds": ["i-0123456789abcdeff"]}, "InvalidInstanceId"),
    ({"InstanceIds": ["i-%017x" % n for n in range(51)]}, "ValidationException"),
    ({"InstanceIds": ["host-1"]}, "ValidationException"),
    ({"Comment": "x" * 101}, "ValidationException"),
    ({"TimeoutSeconds": 10}, "ValidationException"),
])
def test_send_command_rejects_what_ssm_rejects(stack: LocalStack, db, change, code):
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:probe-AbCdEf"
    params = {"Action": ["verify"], "SecretId": [arn], "VersionId": [str(uuid.uuid4())]}
    kw = {"DocumentName": _doc_for(stack, db), "InstanceIds": [db.instance_id], "Parameters": params}
    for k, v in change.items():
        if k == "Parameters":
            kw["Parameters"] = dict(params, **v)
        else:
            kw[k] = v
    before = len(stack.commands)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        stack.client("ssm", stack.function_role_test_credentials, validate=False).send_command(**kw)
    assert error_code(e.value) == code
    assert len(stack.commands) == before


def test_cancel_and_faults(stack: LocalStack, db):
    login = make_login(stack, db)
    ssm = stack.client("ssm", stack.function_role_test_credentials)
    version = stack.version_with(login.arn, "AWSCURRENT")
    doc = _doc_for(stack, db)
    try:
        stack.set_fault(db.instance_id, never_answer=True, times=1)
        cid = _send(ssm, stack, doc, db.instance_id, "verify", login.arn, version)
        time.sleep(1.0)
        assert ssm.get_command_invocation(CommandId=cid, InstanceId=db.instance_id)["Status"] == "InProgress"
        ssm.cancel_command(CommandId=cid, InstanceIds=[db.instance_id])
        assert _wait(ssm, cid, db.instance_id, 10)["Status"] == "Cancelled"

        stack.set_fault(db.instance_id, strip_result_line=True, actions={"verify"}, times=1)
        cid = _send(ssm, stack, doc, db.instance_id, "verify", login.arn, version)
        inv = _wait(ssm, cid, db.instance_id)
        assert (inv["Status"], inv["ResponseCode"]) == ("Success", 0)
        assert "ROTATOR-RESULT" not in inv["StandardOutputContent"]
        cid = _send(ssm, stack, doc, db.instance_id, "verify", login.arn, version)   # fault used up
        assert "ROTATOR-RESULT" in _wait(ssm, cid, db.instance_id)["StandardOutputContent"]
    finally:
        stack.clear_faults()


def test_cancel_kills_a_running_script(stack: LocalStack, db, tmp_path):
    """A script that really runs (and hangs) is stopped by CancelCommand."""
    login = make_login(stack, db)
    ssm = stack.client("ssm", stack.function_role_test_credentials)
    version = stack.version_with(login.arn, "AWSCURRENT")
    # A host whose `aws` hangs: the script blocks reading the secret.
    fake_aws = tmp_path / "aws"
    fake_aws.write_text("#!/bin/sh\nexec sleep 300\n")
    fake_aws.chmod(0o755)
    iid = "i-0cafe000000000001"
    env = dict(db.server.host_env())
    env["PATH"] = f"{tmp_path}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    stack.register_instance(iid, "Linux", env)
    cid = _send(ssm, stack, _doc_for(stack, db), iid, "verify", login.arn, version)
    time.sleep(1.5)
    assert ssm.get_command_invocation(CommandId=cid, InstanceId=iid)["Status"] == "InProgress"
    t = time.monotonic()
    ssm.cancel_command(CommandId=cid)
    assert _wait(ssm, cid, iid, 15)["Status"] == "Cancelled"
    assert time.monotonic() - t < 10
    assert stack.ssm.wait_idle(10)


# ----------------------------------------------------------------------------- the function's log
def test_the_log_search_answers_with_every_line_the_function_finished_writing(stack: LocalStack):
    """Lambda's shipping lag is not what the operator tests test: the local stack's FilterLogEvents
    waits for its shipper (a 0.2 s poll) to catch up, so a search right after a step ends finds the
    step's line whatever the machine's load (under CI's, cancel once searched before it arrived)."""
    for n in range(3):
        marker = f"log-{uuid.uuid4().hex}"
        line = json.dumps({"SecretId": marker, "n": n})
        with open(stack.log_path, "a", encoding="utf-8") as log:
            log.write(line + "\n")
        found = stack.client("logs").filter_log_events(logGroupName=LOG_GROUP,
                                                        filterPattern=f'{{ $.SecretId = "{marker}" }}')
        assert [event["message"] for event in found["events"]] == [line]


# ----------------------------------------------------------------------------- secrets manager hooks
def test_pending_version_is_created_empty_and_filled_once(stack: LocalStack):
    sm = stack.client("secretsmanager")
    arn = sm.create_secret(Name=f"hook-{uuid.uuid4().hex[:8]}", SecretString='{"password": "a"}')["ARN"]
    stack.configure_rotation(arn)
    token = stack.begin_rotation(arn)
    assert stack.stages(arn)[token] == ["AWSPENDING"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
    assert error_code(e.value) == "ResourceNotFoundException"
    # GetSecretValue without a stage answers AWSCURRENT (moto would answer the empty version).
    assert json.loads(sm.get_secret_value(SecretId=arn)["SecretString"]) == {"password": "a"}
    fn = stack.client("secretsmanager", stack.function_role_test_credentials)
    fn.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString='{"password": "b"}',
                        VersionStages=["AWSPENDING"], RotationToken=str(uuid.uuid4()))
    fn.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString='{"password": "b"}',
                        VersionStages=["AWSPENDING"])                       # same value: no-op
    with pytest.raises(botocore.exceptions.ClientError) as e:
        fn.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString='{"password": "c"}',
                            VersionStages=["AWSPENDING"])
    assert error_code(e.value) == "ResourceExistsException"
    # A rotation that is not finished blocks the next one, as in AWS.
    with pytest.raises(botocore.exceptions.ClientError) as e:
        sm.rotate_secret(SecretId=arn)
    assert error_code(e.value) == "InvalidRequestException"


# ----------------------------------------------------------------------------- Runtime API
FAKE_RUNTIME = textwrap.dedent("""
    import json, os, sys, time, urllib.request, urllib.error
    api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
    def post(path, body, headers=None):
        req = urllib.request.Request(api + path, data=body, method="POST", headers=headers or {})
        try:
            return urllib.request.urlopen(req).status
        except urllib.error.HTTPError as e:
            return e.code
    if os.environ.get("FAIL_INIT"):
        post("/init/error", json.dumps({"errorType": "Init", "errorMessage": "no"}).encode())
        sys.exit(1)
    while True:
        with urllib.request.urlopen(api + "/invocation/next") as r:
            rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
            h = dict(r.headers)
            ev = json.loads(r.read())
        if ev == "die":
            os._exit(7)
        if ev == "hang":
            time.sleep(600)
        if ev == "bad-error":
            st = post(f"/invocation/{rid}/error", b"not json")
            print("bad-error answered", st, flush=True)
            continue
        if ev == "error":
            post(f"/invocation/{rid}/error", json.dumps({"errorType": "Boom", "errorMessage": "bang",
                 "stackTrace": []}).encode(), {"Lambda-Runtime-Function-Error-Type": "Boom"})
            continue
        st = post(f"/invocation/{rid}/response", json.dumps({"headers": h, "event": ev}).encode())
        print("twice", post(f"/invocation/{rid}/response", b"{}"), flush=True)
        print("unknown", post("/invocation/nope/response", b"{}"), flush=True)
""")


def test_runtime_api_protocol(tmp_path):
    script = tmp_path / "runtime.py"
    script.write_text(FAKE_RUNTIME)
    log = tmp_path / "fn.log"
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fake"
    env = {"PATH": "/usr/bin:/bin"}
    api = RuntimeAPI(command=[sys.executable, str(script)], cwd=str(tmp_path), env={}, log_path=str(log),
                     function_arn=arn, default_timeout_s=10,
                     env_factory=lambda addr: dict(env, AWS_LAMBDA_RUNTIME_API=addr))
    api.start()
    try:
        t0 = time.time()
        r = api.invoke({"hello": "world"}, 10)
        assert r.ok and r.cold_start and r.payload["event"] == {"hello": "world"}
        h = {k.lower(): v for k, v in r.payload["headers"].items()}
        assert h["lambda-runtime-aws-request-id"] == r.request_id
        assert h["lambda-runtime-invoked-function-arn"] == arn
        assert h["lambda-runtime-trace-id"].startswith("Root=1-")
        deadline = int(h["lambda-runtime-deadline-ms"])
        assert t0 * 1000 + 9000 < deadline < time.time() * 1000 + 10500
        r2 = api.invoke("error")
        assert not r2.ok and r2.error == ("Boom", "bang") and r2.error_header == "Boom" and not r2.cold_start
        r3 = api.invoke("bad-error")
        assert not r3.ok and r3.error_type == "LocalStack.InvalidErrorBody"
        assert any("error body" in v.reason for v in api.violations)
        r4 = api.invoke("die")
        assert not r4.ok and r4.error_type == "Runtime.ExitError" and api.deaths[-1]["returncode"] == 7
        r5 = api.invoke({"after": "death"})
        assert r5.ok and r5.cold_start
        r6 = api.invoke("hang", 1.5)
        assert r6.error_type == "Sandbox.Timedout" and api.deaths[-1]["reason"] == "timeout"
        assert api.invoke({"again": 1}).ok
        time.sleep(0.3)
        text = log.read_text()
        assert "twice 400" in text and "unknown 400" in text and "bad-error answered 400" in text
        pids = {s["pid"] for s in api.starts}
        assert len(pids) == 3
    finally:
        api.close()
    assert not api.process_alive()


def test_a_stack_prunes_old_runs_state_but_never_a_running_stacks(tmp_path):
    """Each stack removes old runs' state directories (over an hour old, beyond the latest ten) when
    it starts. A stack another process still runs is not one of them, however old its directory
    looks: its function logs and the hosts' lock directories are in use (the interleaving proof
    lost a run's state this way to a `make chaos` beside it)."""
    import fcntl
    import os

    from local.stack import RUNNING_LOCK

    def old_run(name: str) -> object:
        directory = tmp_path / name
        directory.mkdir()
        (directory / "function.log").write_text("a log line\n")
        os.utime(directory, (time.time() - 7200, time.time() - 7200))
        return directory

    running, finished = old_run("stack-running"), old_run("stack-finished")
    with open(running / RUNNING_LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)        # as a stack running in another process holds it
        os.utime(running, (time.time() - 7200, time.time() - 7200))     # the lock file made it new again
        LocalStack(state_dir=tmp_path)._prune_state(keep=0)
        assert (running / "function.log").exists()
        assert not finished.exists()
    LocalStack(state_dir=tmp_path)._prune_state(keep=0)
    assert not running.exists(), "a stack no longer running is pruned like any other"
