"""The local stack: real parts standing in for AWS on loopback (README.md, "The local stack").

    with PostgresServer() as pg, LocalStack() as stack:
        stack.register_instance("i-0123456789abcdef0", "Linux", pg.host_env())
        pg.create_login("app", "initial-password")
        arn = stack.create_db_secret("app", "postgres", pg, "app", "initial-password",
                                     ["i-0123456789abcdef0"])
        subprocess.run(["aws", "secretsmanager", "rotate-secret", "--secret-id", arn],
                       env=stack.cli_env(), check=True)
        record = stack.wait_rotation(arn)

What runs:
  - moto in server mode, in this process, on a free 127.0.0.1 port, with SigV4 signature and IAM
    policy checks on for every request after the setup calls;
  - IAM: an admin user (for tests, demo, operator), the function's execution role (least
    privilege, used through temporary AssumeRole credentials), the database hosts' instance role
    (GetSecretValue only, temporary credentials as well); moto checks actions only, so the
    function's requests are also evaluated against template.yaml's own statements for its role,
    resources and conditions included (local/iam_policy.py; `function_policy_without` withholds
    statements or actions for tests);
  - the three SSM documents of template.yaml (content exactly the template's), an SNS alert topic
    with an SQS queue subscribed to it, the function `rotator` in moto's Lambda backend;
  - a Lambda Runtime API on loopback driving `./bootstrap`, started once and kept warm (more
    processes, each with its own Runtime API, when invocations overlap: `max_concurrency`);
  - the fault suite's proxy between the function and moto (`stack.faults`, local/fault_proxy.py):
    it records the function's AWS calls and passes them through unless a test sets a rule;
  - hooks in moto: RotateSecret invokes the function through the Runtime API (asynchronously, as
    AWS does); SendCommand / GetCommandInvocation / ListCommandInvocations / CancelCommand run the
    documents' scripts for registered instances (local/ssm_emulator.py).

Only one LocalStack can run in a process at a time: moto's backends are process-wide.

LocalStack is made of parts, one module each: local/moto_support.py (moto's settings, server and the
record of the patches), local/authorization.py (signature and IAM checks of every request, the
function's policy), local/rotation_driver.py (the RotateSecret hook that invokes the function);
local/names.py holds the fixed names. This module sets the stack up and offers what tests use.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import io
import json
import logging
import os
import re
import shutil
import signal
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from local.authorization import AuthRecord, RequestAuthorization
from local.moto_support import MotoPatches, MotoServer, Patches, moto_settings
from local.names import (
    ACCOUNT,
    FUNCTION_LOGICAL_NAME,
    FUNCTION_NAME,
    HOST_ACTIONS,
    HOST_TAG,
    LOG_GROUP,
    LOG_STREAM,
    QUEUE_NAME,
    REGION,
    REPO,
    SECRET_ADMINISTRATOR,
    STACK_NAME,
    TEMPLATE_POLICY,
    TOPIC_NAME,
)
from local.rotation_driver import RotationDriver, RotationRecord, StepRecord

# What other modules and the tests import from here (the names and records live in the parts).
__all__ = [
    "ACCOUNT", "FUNCTION_LOGICAL_NAME", "FUNCTION_NAME", "HOST_ACTIONS", "HOST_TAG", "LOG_GROUP",
    "LOG_STREAM", "QUEUE_NAME", "REGION", "REPO", "SECRET_ADMINISTRATOR", "STACK_NAME", "TEMPLATE_POLICY", "TOPIC_NAME",
    "AuthRecord", "LocalStack", "RotationRecord", "StepRecord", "binary_problem", "default_bootstrap",
]


def default_bootstrap() -> Path:
    """./bootstrap of this checkout, or $ROTATOR_BOOTSTRAP (e.g. an unpacked deployment zip)."""
    return Path(os.environ.get("ROTATOR_BOOTSTRAP") or REPO / "bootstrap").resolve()


def binary_problem(bootstrap: Path | None = None) -> str | None:
    """Why the function cannot run (None when it can): bootstrap and the binary it starts."""
    bootstrap = bootstrap or default_bootstrap()
    if not (bootstrap.is_file() and os.access(bootstrap, os.X_OK)):
        return f"{bootstrap} is missing or not executable"
    here = bootstrap.parent
    if not any(p.is_file() and os.access(p, os.X_OK) for p in (here / "rotator", here / ".build/release/rotator")):
        return f"the function binary ({here}/.build/release/rotator) is not built"
    return None


# A file in each stack's state directory, locked while the stack runs.
RUNNING_LOCK = "running.lock"


# ------------------------------------------------------------------------------------ the stack
class LocalStack(MotoPatches, RequestAuthorization, RotationDriver):
    _active: LocalStack | None = None

    def __init__(self, repo: str | Path = REPO, *, template: str | Path | None = None,
                 bootstrap: str | Path | None = None, function_command: list[str] | None = None,
                 state_dir: str | Path | None = None,
                 function_timeout_s: float | None = None, invocation_delay_s: float = 0.3,
                 send_rotation_token: bool = True, max_clock_skew_s: float = 300.0,
                 max_concurrency: int = 10, host_poll_milliseconds: int | None = 250):
        self.repo = Path(repo).resolve()
        self.template_path = Path(template) if template else self.repo / "template.yaml"
        self.bootstrap = Path(bootstrap) if bootstrap else default_bootstrap()
        # What starts the function: bootstrap itself, or a command around it, e.g. the deployment
        # package in a minimal root (pytests/package). It gets the same Lambda environment.
        self.function_command = list(function_command or [str(self.bootstrap)])
        self._state_root = Path(state_dir) if state_dir else self.repo / ".local-state"
        self._function_timeout_override = function_timeout_s
        self.invocation_delay_s = invocation_delay_s
        self.send_rotation_token = send_rotation_token
        self.max_clock_skew_s = max_clock_skew_s
        # How many function processes may run at once (Lambda's concurrency), each its own sandbox.
        self.max_concurrency = max_concurrency
        # The function's HOST_POLL_MILLISECONDS. The local hosts answer within a fraction of a second
        # (SSM's own delivery delay is not modelled), so the test suite polls at 250 ms instead of the
        # deployed default (HostRunner.defaultPollMilliseconds), which would make every host command
        # of the suite some 0.4 s slower; None: the default, as deployed (make fleet measures that).
        self.host_poll_milliseconds = host_poll_milliseconds

        self.url = ""
        self.function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}"
        self.topic_arn = ""
        self.queue_url = ""
        self.document_names: dict[str, str] = {}      # logical name -> moto document name
        self.documents: dict[str, dict[str, Any]] = {}  # moto document name -> content
        self.function_env: dict[str, str] = {}
        self.function_timeout_s = 0.0
        self.function_memory_mb = 128
        self.rotations: list[RotationRecord] = []
        self.rotation_tokens: list[str] = []
        self.auth_log: list[AuthRecord] = []
        self.auth_check: dict[str, Any] = {}
        self.admin: dict[str, str] = {}
        self.function_credentials: dict[str, str] = {}
        self.host_credentials: dict[str, str] = {}
        self.function_role_test_credentials: dict[str, str] = {}
        self.host_role_test_credentials: dict[str, str] = {}
        self.role_arns: dict[str, str] = {}
        self._principals: dict[str, str] = {}
        self.database_secrets: list[str] = []         # ARNs that stand for the template's secret
        self.instance_tags: dict[str, dict[str, str]] = {}
        self.withheld_statements: set[str] = set()    # Sids left out of the function's policy
        self.withheld_actions: set[str] = set()       # actions left out of all its statements
        self._reduced_policy_log_spans: list[tuple[int, int]] = []
        self._alerts: list[dict[str, Any]] = []
        self._prepare_only: set[str] = set()
        self._unit_templates: dict[Path, dict[str, Any]] = {}   # enroll's templates, read once
        self._enrolling_sm = None                               # enroll's Secrets Manager client, made once
        self._patches = Patches()
        self._server = None
        self.runtime = None
        self.ssm = None
        self.faults = None          # local.fault_proxy.FaultProxy: the function's way to AWS
        self.state_dir: Path | None = None
        self.log_path: Path | None = None
        self._threads: list[threading.Thread] = []
        self._log_shipping_stop = threading.Event()
        # How far into the function's log file every complete line is in CloudWatch Logs.
        self._log_shipped = threading.Condition()
        self._log_shipped_bytes = 0
        self._shipper: threading.Thread | None = None
        self._settings = None
        self._old_no_auth = None
        self._running = None          # the lock held while this stack runs (RUNNING_LOCK)
        self._started = False

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> LocalStack:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ start / close
    def start(self) -> None:
        if LocalStack._active is not None:
            raise RuntimeError("another LocalStack is running in this process (moto is process-wide)")
        LocalStack._active = self
        self._started = True
        run_id = time.strftime("%Y%m%d-%H%M%S") + f"-{os.getpid()}"
        self._prune_state()
        self.state_dir = self._state_root / f"stack-{run_id}"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.state_dir, 0o700)
        # Held while this stack runs (the kernel lets go when its process ends, however it ends):
        # another process's prune leaves a directory alone while someone holds its lock.
        self._running = open(self.state_dir / RUNNING_LOCK, "w")    # noqa: SIM115 (held until close)
        fcntl.flock(self._running, fcntl.LOCK_EX)
        self.log_path = self.state_dir / "function.log"
        self.log_path.touch()

        logging.getLogger("werkzeug").setLevel(logging.ERROR)   # moto's per-request lines
        self._settings = moto_settings()
        self._old_no_auth = self._settings.INITIAL_NO_AUTH_ACTION_COUNT
        self._settings.INITIAL_NO_AUTH_ACTION_COUNT = float("inf")
        self._reset_moto()

        from local import ssm_runner
        from local.cfn import function_properties, load_template, policy_actions, role_policy_statements

        template = load_template(self.template_path)
        self._template = template
        props = function_properties(template, FUNCTION_LOGICAL_NAME)
        self.function_timeout_s = float(self._function_timeout_override or props.get("Timeout") or 3)
        self.function_memory_mb = int(props.get("MemorySize") or 128)
        self._function_props = props
        # The function's role holds exactly the actions template.yaml grants it.
        self.function_actions = policy_actions(template, FUNCTION_LOGICAL_NAME)
        if not self.function_actions:
            raise RuntimeError("template.yaml grants RotationFunction no permissions")
        # ... and its requests are evaluated against the template's statements themselves, with
        # their resources and conditions (local/iam_policy.py): moto checks only the actions.
        self.function_statements = role_policy_statements(template, FUNCTION_LOGICAL_NAME)

        from local.ssm_emulator import SSMEmulator
        self.ssm = SSMEmulator(run_document=ssm_runner.run_document,
                               validate_parameters=ssm_runner.validate_parameters,
                               invalid_parameters_exc=ssm_runner.InvalidParameters,
                               invocation_delay_s=self.invocation_delay_s)
        self._install_patches()
        self.ssm.install()

        self._server = MotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"

        self._setup(ssm_runner.load_documents(self.template_path), template, props)

        # The function reaches moto through the fault suite's proxy (pass-through unless told).
        from local.fault_proxy import FaultProxy
        self.faults = FaultProxy(self.url, kill_function=lambda: self.runtime.kill_function())
        self.faults.start()

        # From here on every request must be signed by a known key and allowed by IAM.
        self._settings.INITIAL_NO_AUTH_ACTION_COUNT = 0
        self._verify_auth_is_on()

        from local.runtime_api import FunctionPool
        self.runtime = FunctionPool(max_concurrency=self.max_concurrency,
                                    command=self.function_command, cwd=str(self.repo), env={},
                                    env_factory=self._lambda_env, log_path=str(self.log_path),
                                    function_arn=self.function_arn,
                                    default_timeout_s=self.function_timeout_s)
        self.runtime.start()
        self._shipper = threading.Thread(target=self._ship_function_log, name="function-log-shipper", daemon=True)
        self._threads.append(self._shipper)
        self._shipper.start()

    def _ship_function_log(self) -> None:
        """As Lambda does: every line the function writes goes to its CloudWatch Logs group
        (LOG_GROUP, one stream), where the operator's `rotator status` searches its step records."""
        from moto.logs.models import logs_backends
        group = logs_backends[ACCOUNT][REGION].groups[LOG_GROUP]
        with open(self.log_path, "rb") as log:
            pending = b""
            read = 0
            while True:
                stopping = self._log_shipping_stop.wait(0.2)
                chunk = log.read()
                read += len(chunk)
                pending += chunk
                *lines, pending = pending.split(b"\n")
                events = [{"timestamp": int(time.time() * 1000), "message": line.decode("utf-8", "replace")}
                          for line in lines if line.strip()]
                if events:
                    group.put_log_events(LOG_STREAM, events)
                with self._log_shipped:
                    self._log_shipped_bytes = read - len(pending)
                    self._log_shipped.notify_all()
                if stopping:
                    return

    def wait_function_log_shipped(self, timeout_s: float = 10.0) -> None:
        """Until every line the function has finished writing is in CloudWatch Logs. Lambda ships
        its log within seconds; an operator who reads it right after a step ends (status, cancel's
        "may still be running") would otherwise race the shipper's 0.2 s poll, so the local stack's
        FilterLogEvents waits for this (_patch_log_filter): a test reads what a real operator reads
        once the log has arrived, never a moment that depends on the machine's load."""
        if self._shipper is None or not self._shipper.is_alive():
            return
        with open(self.log_path, "rb") as log:
            size = log.seek(0, os.SEEK_END)
            log.seek(max(0, size - 65536))
            tail = log.read()
        complete = size - len(tail) + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
        with self._log_shipped:
            self._log_shipped.wait_for(lambda: self._log_shipped_bytes >= complete, timeout_s)

    def close(self) -> None:
        if not self._started:
            return
        self._started = False
        try:
            # The function first: a rotation still running then fails fast instead of being waited for.
            if self.runtime is not None:
                self.runtime.close()
            self._log_shipping_stop.set()
            for t in list(self._threads):
                t.join(timeout=10)
            if self.faults is not None:
                self.faults.close()
            if self.ssm is not None:
                self.ssm.uninstall()
            if self._server is not None:
                self._server.stop()
        finally:
            self._patches.undo()
            if self._settings is not None:
                self._settings.INITIAL_NO_AUTH_ACTION_COUNT = self._old_no_auth
            try:
                self._reset_moto()
            except Exception:
                pass
            if self._running is not None:
                self._running.close()
                self._running = None
            LocalStack._active = None

    def _prune_state(self, keep: int = 10, older_than_s: float = 3600) -> None:
        """Remove old runs' state (function logs), keeping the latest few, anything recent, and any
        stack still running in another process (its lock is held: a long run's directory can be an
        hour old while its function logs and host locks are in use)."""
        try:
            runs = sorted(self._state_root.glob("stack-*"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return
        now = time.time()
        for old in runs[:-keep] if keep else runs:
            try:
                if now - old.stat().st_mtime <= older_than_s:
                    continue
                with open(old / RUNNING_LOCK, "a") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:        # running (BlockingIOError), or gone meanwhile
                pass

    # ------------------------------------------------------------------ clients
    def session(self, credentials: dict[str, str] | None = None):
        """A boto3 session for the admin user (or the given credentials)."""
        import boto3
        c = credentials or self.admin
        return boto3.Session(aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                             aws_session_token=c.get("SessionToken"), region_name=REGION)

    def client(self, service: str, credentials: dict[str, str] | None = None, *, validate: bool = True):
        """A boto3 client against the stack (admin by default). validate=False turns off botocore's
        client-side parameter checks, to see what the server itself rejects."""
        from botocore.config import Config
        return self.session(credentials).client(
            service, endpoint_url=self.url,
            config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=120,
                          parameter_validation=validate))

    def _setup_client(self, service: str):
        import boto3
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            aws_access_key_id="AKIASETUPNOAUTH00000", aws_secret_access_key="setup")

    def cli_env(self) -> dict[str, str]:
        """Environment for the real `aws` CLI as the admin (operator) user against the stack."""
        from local.ssm_runner import aws_cli_host_env
        env = aws_cli_host_env(self.url, REGION, self.admin["AccessKeyId"], self.admin["SecretAccessKey"])
        env["HOME"] = str(self.state_dir)
        env["LANG"] = "C.UTF-8"
        return env

    # ------------------------------------------------------------------ setup (unauthenticated)
    def _setup(self, documents: dict[str, dict[str, Any]], template: dict[str, Any],
               props: dict[str, Any]) -> None:
        iam = self._setup_client("iam")
        sts = self._setup_client("sts")

        iam.create_user(UserName="operator")
        iam.put_user_policy(UserName="operator", PolicyName="admin", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="operator")["AccessKey"]
        self.admin = {"AccessKeyId": key["AccessKeyId"], "SecretAccessKey": key["SecretAccessKey"]}
        self._principals[key["AccessKeyId"]] = "admin"

        def role(name: str, service: str, actions: list[str]) -> str:
            arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                               "Action": "sts:AssumeRole"}]}))["Role"]["Arn"]
            # moto evaluates Resource only against "*" for these services: a narrower Resource
            # would deny everything, so moto's check is on actions. The function's requests are
            # also evaluated with their resources and conditions (_authorize_function_request).
            iam.put_role_policy(RoleName=name, PolicyName="least-privilege", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}))
            self.role_arns[name] = arn
            return arn

        fn_role = role("rotator-function", "lambda.amazonaws.com", self.function_actions)
        host_role = role("rotator-db-host", "ec2.amazonaws.com", HOST_ACTIONS)

        def assume(arn: str, session: str) -> dict[str, str]:
            c = sts.assume_role(RoleArn=arn, RoleSessionName=session, DurationSeconds=43200)["Credentials"]
            return {"AccessKeyId": c["AccessKeyId"], "SecretAccessKey": c["SecretAccessKey"],
                    "SessionToken": c["SessionToken"]}

        self.function_credentials = assume(fn_role, FUNCTION_NAME)
        self.host_credentials = assume(host_role, "i-database-hosts")
        self._principals[self.function_credentials["AccessKeyId"]] = "function"
        self._principals[self.host_credentials["AccessKeyId"]] = "host"
        # The same roles for tests that probe what the function (or a host) may do: other
        # sessions, so the records of the function's own requests stay its own.
        self.function_role_test_credentials = assume(fn_role, "test-probe")
        self.host_role_test_credentials = assume(host_role, "test-probe")
        self._principals[self.function_role_test_credentials["AccessKeyId"]] = "function-role-test"
        self._principals[self.host_role_test_credentials["AccessKeyId"]] = "host-role-test"

        # SSM documents, content exactly the template's.
        ssm = self._setup_client("ssm")
        resources = template.get("Resources", {})
        for logical, content in documents.items():
            declared = (resources.get(logical, {}).get("Properties") or {}).get("Name")
            name = declared if isinstance(declared, str) else "Rotator" + logical.replace("RotationDocument", "").replace("Document", "")
            ssm.create_document(Content=json.dumps(content), Name=name, DocumentType="Command",
                                DocumentFormat="JSON")
            self.document_names[logical] = name
            self.documents[name] = content

        # Alerts: SNS topic -> SQS queue, read back through the API.
        sns = self._setup_client("sns")
        sqs = self._setup_client("sqs")
        self.topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        self.queue_url = sqs.create_queue(QueueName=QUEUE_NAME)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url,
                                             AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=queue_arn)

        # The function, so RotateSecret finds it (moto looks it up in its Lambda backend).
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("bootstrap", "#!/bin/sh\n# placeholder: the local stack runs ./bootstrap\n")
        self.function_env = self._function_environment(template, props)
        lam = self._setup_client("lambda")
        # With its environment: the operator commands read the SSM document names from it.
        lam.create_function(FunctionName=FUNCTION_NAME, Runtime="provided.al2023", Role=fn_role,
                            Handler=str(props.get("Handler") or "bootstrap"), Code={"ZipFile": buf.getvalue()},
                            Timeout=int(self.function_timeout_s), MemorySize=self.function_memory_mb,
                            Environment={"Variables": self.function_env})
        logs = self._setup_client("logs")
        logs.create_log_group(logGroupName=LOG_GROUP)
        logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=LOG_STREAM)
        self.function_policy()     # resolves now: a statement the stack cannot evaluate fails the start

    def _template_refs(self, template: dict[str, Any]) -> dict[str, Any]:
        """What the template's `!Ref`s and `!GetAtt`s stand for in this stack."""
        refs: dict[str, Any] = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                                "AWS::StackName": STACK_NAME, "AWS::URLSuffix": "amazonaws.com",
                                "AWS::NoValue": None}
        for pname, pspec in (template.get("Parameters") or {}).items():
            if isinstance(pspec, dict) and "Default" in pspec:
                refs[pname] = pspec["Default"]
        refs.update(self.document_names)
        if "SecretKey" in (template.get("Resources") or {}):
            # The shared layout's SECRET_KEY_ARN and its function's policy name it.
            refs["SecretKey.Arn"] = self._secret_key_arn()
        for logical, res in (template.get("Resources") or {}).items():
            kind = res.get("Type") if isinstance(res, dict) else None
            if kind == "AWS::SNS::Topic":
                refs[logical] = self.topic_arn
                refs[f"{logical}.TopicArn"] = self.topic_arn
                refs[f"{logical}.TopicName"] = TOPIC_NAME
            elif kind == "AWS::SecretsManager::Secret":
                # Every secret the stack created with create_db_secret is "the" database secret
                # (before the first, an ARN that no secret has).
                refs[logical] = list(self.database_secrets) or [
                    f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:no-database-secret-yet"]
            elif kind == "AWS::Logs::LogGroup":
                group = f"/aws/lambda/{FUNCTION_NAME}"
                refs[logical] = group
                refs[f"{logical}.Arn"] = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:*"
        return refs

    def _function_environment(self, template: dict[str, Any], props: dict[str, Any]) -> dict[str, str]:
        from local.cfn import resolve
        refs = self._template_refs(template)
        variables = ((props.get("Environment") or {}).get("Variables") or {})
        env: dict[str, str] = {}
        for k, v in variables.items():
            value = resolve(v, refs, where=f"{FUNCTION_LOGICAL_NAME}.Environment.Variables.{k}")
            if value is None:
                continue
            env[k] = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (list, dict)) else str(value)
        env["SNS_TOPIC_ARN"] = self.topic_arn
        if self.host_poll_milliseconds is not None:
            env["HOST_POLL_MILLISECONDS"] = str(self.host_poll_milliseconds)
        return env

    def _lambda_env(self, runtime_api_address: str) -> dict[str, str]:
        """Exactly what Lambda gives a provided.al2023 function, nothing from our environment."""
        log_fmt = ((self._function_props.get("LoggingConfig") or {}).get("LogFormat")) or "JSON"
        log_level = ((self._function_props.get("LoggingConfig") or {}).get("ApplicationLogLevel")) or "INFO"
        c = self.function_credentials
        env = {
            "AWS_LAMBDA_RUNTIME_API": runtime_api_address,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": c["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": c["SecretAccessKey"],
            "AWS_SESSION_TOKEN": c["SessionToken"],
            "AWS_ENDPOINT_URL": self.faults.url,
            "LAMBDA_TASK_ROOT": str(self.repo),
            "LAMBDA_RUNTIME_DIR": str(self.repo),
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION_NAME,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.function_memory_mb),
            "AWS_LAMBDA_LOG_FORMAT": str(log_fmt),
            "AWS_LAMBDA_LOG_LEVEL": str(log_level),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{FUNCTION_NAME}",
            "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + uuid.uuid4().hex,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "_HANDLER": str(self._function_props.get("Handler") or "bootstrap"),
            "LD_LIBRARY_PATH": f"{self.repo}/lib:/lib64:/usr/lib64",
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
        }
        env.update(self.function_env)
        return env

    # ------------------------------------------------------------------ moto patches
    def _install_patches(self) -> None:
        self._patch_auth()
        self._patch_secretsmanager()
        self._patch_lambda()
        self._patch_log_filter()

    def _patch_log_filter(self) -> None:
        """FilterLogEvents with the JSON pattern `status` sends, matched as CloudWatch Logs does
        (local/log_filter.py) rather than as moto's match-everything; and answered only once the
        function's log is shipped (wait_function_log_shipped), for every reader of the log group."""
        import moto.logs.models as logs_models

        from local.log_filter import message_filter_class
        self._patch(logs_models, "EventMessageFilter", message_filter_class(logs_models.EventMessageFilter))
        filter_log_events = logs_models.LogsBackend.filter_log_events
        stack = self

        def filter_shipped_log_events(backend: Any, *args: Any, **kwargs: Any) -> Any:
            stack.wait_function_log_shipped()
            return filter_log_events(backend, *args, **kwargs)

        self._patch(logs_models.LogsBackend, "filter_log_events", filter_shipped_log_events)

    # ------------------------------------------------------------------ function
    def invoke(self, event: Any, timeout_s: float | None = None):
        """One synchronous invocation through the Runtime API -> local.runtime_api.InvokeResult."""
        return self.runtime.invoke(event, timeout_s if timeout_s is not None else self.function_timeout_s)

    def rotation_event(self, step: str, arn: str, token: str, rotation_token: bool | None = None) -> dict[str, Any]:
        ev = {"Step": step, "SecretId": arn, "ClientRequestToken": token}
        if self.send_rotation_token if rotation_token is None else rotation_token:
            ev["RotationToken"] = str(uuid.uuid4())
            self.rotation_tokens.append(ev["RotationToken"])
        return ev

    def function_log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path else ""

    def step_lines(self, *secret_ids: str) -> list[dict]:
        """The function's metric lines (Embedded Metric Format, one per step) about the given
        secrets, parsed, in the order written."""
        lines = []
        for text in self.function_log().splitlines():
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and "_aws" in line and line.get("SecretId") in secret_ids:
                lines.append(line)
        return lines

    def secrets_in_play(self) -> list[str]:
        """Every credential the stack handed out and every RotationToken it sent: none may ever
        appear in a log."""
        out = [self.admin.get("SecretAccessKey", "")]
        for c in (self.function_credentials, self.host_credentials):
            out += [c.get("SecretAccessKey", ""), c.get("SessionToken", "")]
        out += self.rotation_tokens
        return [s for s in out if s]

    # ------------------------------------------------------------------ hosts (SSM)
    def register_instance(self, instance_id: str, platform: str, host_env: dict[str, str],
                          tags: dict[str, str] | None = None) -> None:
        """A 'database host': SendCommand to `instance_id` runs scripts with host_env (database
        sockets) on top of the host's AWS environment (instance role's temporary credentials).
        `tags` are the instance's tags (default: the tag the template's policy requires)."""
        self.instance_tags[instance_id] = dict(HOST_TAG if tags is None else tags)
        from local.ssm_runner import aws_cli_host_env
        c = self.host_credentials
        env = aws_cli_host_env(self.url, REGION, c["AccessKeyId"], c["SecretAccessKey"], c["SessionToken"])
        home = self.state_dir / "hosts" / instance_id
        home.mkdir(parents=True, exist_ok=True)
        env["HOME"] = str(home)
        env["LANG"] = "C.UTF-8"
        # Each 'host' has its own per-secret locks, as separate machines would (hosts/linux/flow.sh),
        # and its owner's enrolment file (allow_on_host).
        env["ROTATOR_LOCK_DIR"] = str(home / "lock")
        env["ROTATOR_ENROLLED_FILE"] = str(self.enrolment_file(instance_id))
        env.update(host_env)
        self.ssm.register_instance(instance_id, platform, env)

    def enrolment_file(self, instance_id: str) -> Path:
        """The host's /etc/rotator/enrolled (hosts/linux/secret.py, enrolled), in a directory of its own."""
        return self.state_dir / "hosts" / instance_id / "etc" / "enrolled"

    def allow_on_host(self, instance_id: str, secret_arn: str, login: str, master_arn: str = "") -> None:
        """What the host's owner does to let an enrolled secret change a login on it in the shared
        layout (docs/deploying.md, "Deploying a fleet"): one line in its enrolment file."""
        path = self.enrolment_file(instance_id)
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with path.open("a", encoding="ascii") as handle:
            handle.write(" ".join(field for field in (secret_arn, login, master_arn) if field) + "\n")
        path.chmod(0o600)

    @contextlib.contextmanager
    def function_configured(self, **variables: str):
        """Inside, the function's environment has `variables` changed, as after an
        UpdateFunctionConfiguration by whoever may make one (docs/THREAT-MODEL.md's D). As Lambda
        does, every sandbox starts a fresh process with the new configuration, and again after."""
        before = dict(self.function_env)
        lam = self.client("lambda")
        self.function_env.update(variables)
        lam.update_function_configuration(FunctionName=FUNCTION_NAME, Environment={"Variables": self.function_env})
        self.runtime.cold_start()
        try:
            yield
        finally:
            self.function_env.clear()
            self.function_env.update(before)
            lam.update_function_configuration(FunctionName=FUNCTION_NAME, Environment={"Variables": before})
            self.runtime.cold_start()

    def register_stand_in(self, instance_id: str, stand_in: Any, tags: dict[str, str] | None = None) -> None:
        """A 'database host' simulated in memory: SendCommand to `instance_id` calls `stand_in`
        instead of running the document's script (local/ssm_emulator.py, HostInstance.stand_in)."""
        self.instance_tags[instance_id] = dict(HOST_TAG if tags is None else tags)
        self.ssm.register_stand_in(instance_id, stand_in)

    def set_fault(self, instance_id: str, **kw: Any):
        """strip_result_line=True / never_answer=True (run_before_hanging=True) / end_as="TimedOut" /
        unknown_reads=5 / extra_stdout=30000 / hold_until=threading.Barrier(n), actions={"set"}, times=1
        (local.ssm_emulator.Fault)."""
        return self.ssm.set_fault(instance_id, **kw)

    def clear_faults(self) -> None:
        self.ssm.clear_fault()
        self.faults.clear()

    @property
    def commands(self):
        return self.ssm.commands

    # ------------------------------------------------------------------ secrets
    def create_db_secret(self, name: str, engine: str, server: Any, username: str, password: str,
                         instance_ids: list[str], *, dbname: str | None = None,
                         extra: dict[str, Any] | None = None, drop: Iterable[str] = (),
                         secret_string: str | None = None, configure_rotation: bool = True) -> str:
        """Create the secret (as the admin) and configure rotation with our function.

        Rotation is configured in the backend directly (function ARN, 85-day schedule, enabled):
        RotateSecret is the only API that configures it, and it always starts a rotation (or,
        with RotateImmediately=false, a testSecret trial).
        """
        if secret_string is None:
            value: dict[str, Any] = {
                "engine": engine, "host": "127.0.0.1", "port": int(server.port) if server is not None else 0,
                "username": username, "password": password,
                "dbname": dbname or ("postgres" if engine.startswith("postgres") else "mysql"),
                "instanceIds": list(instance_ids),
            }
            value.update(extra or {})
            for k in drop:
                value.pop(k, None)
            secret_string = json.dumps(value)
        sm = self.client("secretsmanager")
        arn = sm.create_secret(Name=name, SecretString=secret_string,
                               Description=f"{engine} login {username} (local stack)")["ARN"]
        self.database_secrets.append(arn)
        if configure_rotation:
            self.configure_rotation(arn)
        return arn

    # ------------------------------------------------------------------ the shared layout
    def exports(self) -> dict[str, Any]:
        """The template's exported outputs (template-fleet.yaml's), as this stack has them: what a
        per-secret unit (template-secret.yaml) imports."""
        from local.cfn import UnresolvedIntrinsic, resolve
        refs = self._template_refs(self._template)
        refs.update({"RotationFunction.Arn": self.function_arn,
                     "RotationFunctionRole.Arn": self.role_arns["rotator-function"],
                     "DatabaseHostRole.Arn": self.role_arns["rotator-db-host"]})
        exported: dict[str, Any] = {}
        for name, output in (self._template.get("Outputs") or {}).items():
            if "Export" not in output:
                continue
            try:
                exported[resolve(output["Export"]["Name"], refs)] = resolve(output["Value"], refs)
            except UnresolvedIntrinsic as error:
                raise RuntimeError(f"output {name} cannot be exported locally: {error}") from None
        return exported

    def _secret_key_arn(self) -> str:
        """The template's SecretKey in moto's KMS (the shared layout's key for every enrolled secret)."""
        if not getattr(self, "_key_arn", None):
            self._key_arn = self.client("kms").create_key(Description="the fleet's secrets (local)")["KeyMetadata"]["Arn"]
        return self._key_arn

    def enroll(self, unit_stack_name: str, parameters: dict[str, str],
               unit_template: str | Path | None = None) -> str:
        """Deploys a per-secret unit (template-secret.yaml) as CloudFormation would, as the admin:
        its secret (value generated as GenerateSecretString does, name, tags, key), the secret's
        resource policy and its rotation schedule, with the parameters given (as strings, lists
        comma-separated) over the template's defaults. Nothing of this stack changes. Returns the
        secret's ARN."""
        from local.cfn import resolve
        template = self._unit_template(Path(unit_template or self.repo / "template-secret.yaml"))
        specs = template.get("Parameters") or {}
        unknown = set(parameters) - set(specs)
        if unknown:
            raise KeyError(f"the unit has no parameters {sorted(unknown)}")
        refs: dict[str, Any] = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                                "AWS::StackName": unit_stack_name, "AWS::URLSuffix": "amazonaws.com",
                                "AWS::NoValue": None}
        for name, spec in specs.items():
            if name not in parameters and "Default" not in spec:
                raise KeyError(f"the unit's parameter {name} has no default: give it")
            value = str(parameters.get(name, spec.get("Default")))
            refs[name] = value.split(",") if spec.get("Type") == "CommaDelimitedList" else value
        resources = template["Resources"]
        kw = {"refs": refs, "conditions": template.get("Conditions") or {}, "imports": self.exports(),
              "mappings": template.get("Mappings") or {}}
        secret = resolve(resources["DatabaseSecret"]["Properties"], where="DatabaseSecret", **kw)
        generate = secret["GenerateSecretString"]
        sm = self._enrolling_client()
        value = json.loads(generate["SecretStringTemplate"])
        value[generate["GenerateStringKey"]] = sm.get_random_password(
            PasswordLength=int(generate["PasswordLength"]), ExcludePunctuation=bool(generate.get("ExcludePunctuation")),
            RequireEachIncludedType=bool(generate.get("RequireEachIncludedType")))["RandomPassword"]
        arn = sm.create_secret(Name=secret["Name"], Description=secret["Description"], KmsKeyId=secret["KmsKeyId"],
                               SecretString=json.dumps(value), Tags=secret["Tags"])["ARN"]
        self.database_secrets.append(arn)
        refs["DatabaseSecret"] = arn
        policy = resolve(resources["DatabaseSecretPolicy"]["Properties"], where="DatabaseSecretPolicy", **kw)
        sm.put_resource_policy(SecretId=arn, ResourcePolicy=json.dumps(policy["ResourcePolicy"]),
                               BlockPublicPolicy=bool(policy.get("BlockPublicPolicy")))
        schedule = resolve(resources["RotationSchedule"]["Properties"], where="RotationSchedule", **kw)
        if schedule["RotationLambdaARN"] != self.function_arn:
            raise RuntimeError(f"the unit's schedule names {schedule['RotationLambdaARN']}, not this stack's function")
        days = re.fullmatch(r"rate\((\d+) days?\)", schedule["RotationRules"]["ScheduleExpression"])
        self.configure_rotation(arn, days=int(days[1]) if days else 85)
        return arn

    def _unit_template(self, path: Path) -> dict[str, Any]:
        """The unit's template, read once per stack: `make fleet` enrols a thousand units from it."""
        if path not in self._unit_templates:
            from local.cfn import load_template
            self._unit_templates[path] = load_template(path)
        return self._unit_templates[path]

    def _enrolling_client(self) -> Any:
        """The admin's Secrets Manager client that deploys units, made once: a client costs about
        as much as the rest of an enrolment."""
        if self._enrolling_sm is None:
            self._enrolling_sm = self.client("secretsmanager")
        return self._enrolling_sm

    def enroll_login(self, unit_stack_name: str, engine: str, login: str, instance_ids: list[str], *,
                     port: int | None = None, dbname: str | None = None, on_hosts: bool = True) -> str:
        """A login enrolled in this shared stack as its two owners enrol it (docs/deploying.md,
        "Deploying a fleet"): the secret's administrators deploy its unit (template-secret.yaml) for
        the login on `instance_ids`, and each host's owner lists the secret in the host's enrolment
        file (unless `on_hosts` is False). The secret's password is the unit's placeholder until the
        first rotation. Returns the secret's ARN."""
        parameters = {"RotatorStackName": STACK_NAME, "DatabaseEngine": engine, "LoginName": login,
                      "DatabaseHost": "127.0.0.1", "DatabaseInstanceIds": ",".join(instance_ids),
                      "SecretAdministratorArns": SECRET_ADMINISTRATOR}
        if port is not None:
            parameters["DatabasePort"] = str(port)
        if dbname is not None:
            parameters["DatabaseName"] = dbname
        arn = self.enroll(unit_stack_name, parameters)
        if on_hosts:
            for instance_id in instance_ids:
                self.allow_on_host(instance_id, arn, login)
        return arn

    def _secret(self, arn: str) -> Any:
        from moto.secretsmanager.models import secretsmanager_backends
        return secretsmanager_backends[ACCOUNT][REGION].secrets[arn]

    def every_secret_string(self) -> list[tuple[str, str, str]]:
        """(secret ARN, version id, SecretString) of every version of every secret in the stack,
        labelled or not: what the leak checks search for."""
        from moto.secretsmanager.models import secretsmanager_backends
        secrets = list(secretsmanager_backends[ACCOUNT][REGION].secrets.values())
        return [(s.arn, vid, v["secret_string"]) for s in secrets
                for vid, v in list(getattr(s, "versions", {}).items()) if isinstance(v.get("secret_string"), str)]

    def configure_rotation(self, arn: str, days: int = 85, enabled: bool = True) -> None:
        s = self._secret(arn)
        s.rotation_lambda_arn = self.function_arn
        s.auto_rotate_after_days = days
        s.rotation_enabled = enabled
        s.rotation_requested = True
        s.next_rotation_date = int(time.time()) + days * 86400

    def stages(self, arn: str) -> dict[str, list[str]]:
        d = self.client("secretsmanager").describe_secret(SecretId=arn)
        return {k: sorted(v) for k, v in (d.get("VersionIdsToStages") or {}).items()}

    def version_with(self, arn: str, stage: str) -> str | None:
        return next((v for v, st in self.stages(arn).items() if stage in st), None)

    def secret_value(self, arn: str, stage: str | None = "AWSCURRENT", version_id: str | None = None) -> dict[str, Any]:
        kw: dict[str, Any] = {"SecretId": arn}
        if stage:
            kw["VersionStage"] = stage
        if version_id:
            kw["VersionId"] = version_id
        return json.loads(self.client("secretsmanager").get_secret_value(**kw)["SecretString"])

    # ------------------------------------------------------------------ alerts
    def alerts(self) -> list[dict[str, Any]]:
        """Every alert published so far (read from the SQS queue subscribed to the topic)."""
        sqs = self.client("sqs")
        while True:
            msgs = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0).get("Messages", [])
            if not msgs:
                break
            for m in msgs:
                env = json.loads(m["Body"])
                text = env.get("Message", "")
                try:
                    parsed = json.loads(text)
                except ValueError:
                    parsed = None
                self._alerts.append({"subject": env.get("Subject"), "message": text, "json": parsed,
                                     "attributes": env.get("MessageAttributes") or {},
                                     "topic": env.get("TopicArn"), "raw": m["Body"]})
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
        return list(self._alerts)


# ------------------------------------------------------------------------------------------ CLI
def _main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m local.stack",
                                 description="Run the local stack until interrupted.")
    ap.add_argument("command", choices=["up"], help="up: start, print the CLI environment, wait")
    ap.parse_args(argv)
    with LocalStack() as stack:
        print(f"moto (auth on): {stack.url}")
        print(f"Runtime API:    {stack.runtime.address}  (./bootstrap starts on first invoke)")
        print(f"function log:   {stack.log_path}")
        print("environment for the aws CLI:")
        for k, v in stack.cli_env().items():
            if k.startswith("AWS_"):
                print(f"  export {k}={v}")
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        stop.wait()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
