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
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION_NAME = "rotator"
FUNCTION_LOGICAL_NAME = "RotationFunction"
LOG_GROUP = f"/aws/lambda/{FUNCTION_NAME}"
LOG_STREAM = "local/[$LATEST]function"
TOPIC_NAME = "rotator-alerts"
QUEUE_NAME = "rotator-alerts-inbox"

HOST_ACTIONS = ["secretsmanager:GetSecretValue"]
STACK_NAME = "rotator-local"                # AWS::StackName of the local stack
# The tag the template's policy requires on database hosts (its key is fixed in template.yaml);
# HostTagValue is empty by default, and then the value is the stack's name.
HOST_TAG = {"RotatorDatabase": STACK_NAME}
TEMPLATE_POLICY = "template.yaml"           # AuthRecord.policy of requests under the template's policy


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


def _moto_settings():
    # moto 5.2.1 reads INITIAL_NO_AUTH_ACTION_COUNT from the environment once, when moto.settings
    # is first imported (float, default inf), into moto.settings.INITIAL_NO_AUTH_ACTION_COUNT.
    # moto.core.authorization compares its request counter with that *attribute* at every
    # request (and counts only while below it). So: the variable for the import if we come
    # first, and the attribute itself, which the stack sets to inf for the setup calls and to 0
    # (every request checked) once they are done.
    if "moto.settings" not in sys.modules:
        os.environ.setdefault("INITIAL_NO_AUTH_ACTION_COUNT", "inf")
    from moto import settings
    return settings


# ---------------------------------------------------------------------------------------- records
@dataclass
class StepRecord:
    step: str
    ok: bool
    duration_s: float
    request_id: str
    error_type: str | None = None
    error_message: str | None = None
    payload: Any = None
    cold_start: bool = False


@dataclass
class RotationRecord:
    secret_arn: str
    token: str | None
    rotate_immediately: bool
    mode: str                                   # "rotate" | "test" | "prepare"
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    steps: list[StepRecord] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    rotation_token: str | None = None
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)

    @property
    def ok(self) -> bool | None:
        if not self.done.is_set():
            return None
        return self.error is None and all(s.ok for s in self.steps) and bool(self.steps or self.mode == "prepare")

    @property
    def failed_step(self) -> StepRecord | None:
        return next((s for s in self.steps if not s.ok), None)


@dataclass
class AuthRecord:
    at: float
    principal: str                  # admin | function | host | unknown:<akid> | anonymous
    access_key_id: str
    service: str
    action: str
    session_token: bool
    ok: bool
    error: str | None = None
    unsigned_amz_headers: list[str] = field(default_factory=list)
    # The function's requests: the policy they were evaluated against (TEMPLATE_POLICY, or the
    # template's less what a test withheld), the resources, the one denied if any.
    policy: str = ""
    resources: list[str] = field(default_factory=list)
    denied_resource: str = ""

    @property
    def denied_by_withholding(self) -> bool:
        """A denial a test provoked on purpose, by withholding statements or actions of the function's
        policy (LocalStack.function_policy_without)."""
        return self.error == "AccessDenied" and self.policy not in ("", TEMPLATE_POLICY)


def _http_exception(code: int, body: str, content_type: str):
    from werkzeug.exceptions import HTTPException

    class _E(HTTPException):
        pass

    e = _E(description=body)
    e.code = code
    e.content_type = content_type
    return e


# ------------------------------------------------------------------------------------ the stack
class LocalStack:
    _active: LocalStack | None = None

    def __init__(self, repo: str | Path = REPO, *, template: str | Path | None = None,
                 bootstrap: str | Path | None = None, function_command: list[str] | None = None,
                 state_dir: str | Path | None = None,
                 function_timeout_s: float | None = None, invocation_delay_s: float = 0.3,
                 send_rotation_token: bool = True, max_clock_skew_s: float = 300.0,
                 max_concurrency: int = 10):
        self.repo = Path(repo).resolve()
        self.template_path = Path(template) if template else self.repo / "template.yaml"
        self.bootstrap = Path(bootstrap) if bootstrap else default_bootstrap()
        # What starts the function: bootstrap itself, or a command around it, e.g. the deployment
        # package in a minimal root (tests/package). It gets the same Lambda environment.
        self.function_command = list(function_command or [str(self.bootstrap)])
        self._state_root = Path(state_dir) if state_dir else self.repo / ".local-state"
        self._function_timeout_override = function_timeout_s
        self.invocation_delay_s = invocation_delay_s
        self.send_rotation_token = send_rotation_token
        self.max_clock_skew_s = max_clock_skew_s
        # How many function processes may run at once (Lambda's concurrency), each its own sandbox.
        self.max_concurrency = max_concurrency

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
        self._patches: list[tuple[Any, str, Any, bool]] = []
        self._server = None
        self.runtime = None
        self.ssm = None
        self.faults = None          # local.fault_proxy.FaultProxy: the function's way to AWS
        self.state_dir: Path | None = None
        self.log_path: Path | None = None
        self._threads: list[threading.Thread] = []
        self._log_shipping_stop = threading.Event()
        self._settings = None
        self._old_no_auth = None
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
        self.log_path = self.state_dir / "function.log"
        self.log_path.touch()

        logging.getLogger("werkzeug").setLevel(logging.ERROR)   # moto's per-request lines
        self._settings = _moto_settings()
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

        self._server = _MotoServer(ip_address="127.0.0.1", port=0, verbose=False)
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
        shipper = threading.Thread(target=self._ship_function_log, name="function-log-shipper", daemon=True)
        self._threads.append(shipper)
        shipper.start()

    def _ship_function_log(self) -> None:
        """As Lambda does: every line the function writes goes to its CloudWatch Logs group
        (LOG_GROUP, one stream), where the operator's `rotator status` searches its step records."""
        from moto.logs.models import logs_backends
        group = logs_backends[ACCOUNT][REGION].groups[LOG_GROUP]
        with open(self.log_path, "rb") as log:
            pending = b""
            while True:
                stopping = self._log_shipping_stop.wait(0.2)
                pending += log.read()
                *lines, pending = pending.split(b"\n")
                events = [{"timestamp": int(time.time() * 1000), "message": line.decode("utf-8", "replace")}
                          for line in lines if line.strip()]
                if events:
                    group.put_log_events(LOG_STREAM, events)
                if stopping:
                    return

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
            for owner, name, old, existed in reversed(self._patches):
                if existed:
                    setattr(owner, name, old)
                else:
                    try:
                        delattr(owner, name)
                    except AttributeError:
                        pass
            self._patches.clear()
            if self._settings is not None:
                self._settings.INITIAL_NO_AUTH_ACTION_COUNT = self._old_no_auth
            try:
                self._reset_moto()
            except Exception:
                pass
            LocalStack._active = None

    def _prune_state(self, keep: int = 10, older_than_s: float = 3600) -> None:
        """Remove old runs' state (function logs), keeping the latest few and anything recent."""
        try:
            runs = sorted(self._state_root.glob("stack-*"), key=lambda p: p.stat().st_mtime)
        except OSError:
            return
        now = time.time()
        for old in runs[:-keep] if keep else runs:
            try:
                if now - old.stat().st_mtime > older_than_s:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:
                pass

    @staticmethod
    def _reset_moto() -> None:
        from moto.core.authorization import ActionAuthenticatorMixin
        from moto.moto_api._internal.models import moto_api_backend
        moto_api_backend.reset()
        ActionAuthenticatorMixin.request_count = 0

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

    def _verify_auth_is_on(self) -> None:
        import botocore.exceptions
        bad = dict(self.admin, SecretAccessKey="not-the-secret-" + uuid.uuid4().hex)
        try:
            self.client("secretsmanager", bad).list_secrets()
        except botocore.exceptions.ClientError as e:
            self.auth_check = {"rejected": True, "code": e.response["Error"].get("Code"),
                               "status": e.response["ResponseMetadata"].get("HTTPStatusCode")}
        else:
            raise RuntimeError("moto accepted a wrongly signed request: signature checking is off")
        # And a good one passes (also proves the admin key works).
        self.client("secretsmanager").list_secrets()
        # The bad request above is not a fault of anyone under test.
        self.auth_log.clear()

    # ------------------------------------------------------------------ moto patches
    def _patch(self, owner: Any, name: str, new: Any) -> None:
        existed = name in owner.__dict__
        self._patches.append((owner, name, owner.__dict__.get(name), existed))
        setattr(owner, name, new)

    def _install_patches(self) -> None:
        self._patch_raw_body()
        self._patch_auth()
        self._patch_secretsmanager()
        self._patch_lambda()

    # -- the signature covers the bytes sent: give moto those bytes, not a re-encoding
    def _patch_raw_body(self) -> None:
        from moto.core.responses import BaseResponse

        orig = BaseResponse.setup_class

        def setup_class(resp: Any, request: Any, full_url: str, headers: Any, use_raw_body: bool = False) -> Any:
            out = orig(resp, request, full_url, headers, use_raw_body)
            raw = (getattr(request, "environ", None) or {}).get(_RAW_BODY)
            if raw and not resp.raw_body:
                # Form posts (SNS's Query protocol): werkzeug parsed the form and moto would
                # re-encode it with botocore's rules before checking the signature, rejecting any
                # other valid encoding. AWS hashes the body as received.
                resp.raw_body = raw
            return out

        self._patch(BaseResponse, "setup_class", setup_class)

    # -- authentication: record every checked request, answer errors as AWS does
    def _patch_auth(self) -> None:
        from moto.core.authorization import ActionAuthenticatorMixin
        from werkzeug.exceptions import HTTPException

        stack = self
        settings = self._settings
        orig = ActionAuthenticatorMixin._authenticate_and_authorize_normal_action

        def between(s: str, a: str, b: str) -> str:
            return s.partition(a)[2].partition(b)[0]

        def wrapped(resp: Any, resource: str = "*") -> None:
            if ActionAuthenticatorMixin.request_count < settings.INITIAL_NO_AUTH_ACTION_COUNT:
                return orig(resp, resource)
            headers = resp.headers
            auth = headers.get("Authorization") or ""
            service = getattr(resp, "service_name", "") or ""
            try:
                action = resp._get_action()
            except Exception:
                action = "?"
            akid = between(auth, "Credential=", "/")
            rec = AuthRecord(at=time.time(), principal=stack._principals.get(akid, f"unknown:{akid}" if akid else "anonymous"),
                             access_key_id=akid, service=service, action=str(action),
                             session_token="X-Amz-Security-Token" in headers, ok=False)
            if rec.principal == "function":
                rec.policy = stack.function_policy_name
            signed = [h.strip().lower() for h in between(auth, "SignedHeaders=", ",").split(";") if h.strip()]
            rec.unsigned_amz_headers = sorted(k.lower() for k in headers.keys()
                                              if k.lower().startswith("x-amz-") and k.lower() not in signed)
            try:
                if not auth.startswith("AWS4-HMAC-SHA256 "):
                    raise stack._auth_error(resp, "MissingAuthenticationToken", "Missing Authentication Token")
                if "host" not in signed:
                    raise stack._auth_error(resp, "SignatureDoesNotMatch",
                                            "'Host' must be a signed header")
                amz_date = headers.get("X-Amz-Date") or ""
                if "x-amz-date" not in signed and "date" not in signed:
                    raise stack._auth_error(resp, "SignatureDoesNotMatch",
                                            "'X-Amz-Date' or 'Date' must be a signed header")
                try:
                    when = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
                except ValueError:
                    raise stack._auth_error(resp, "IncompleteSignature", "X-Amz-Date is missing or malformed") from None
                skew = abs((dt.datetime.now(dt.UTC) - when).total_seconds())
                if skew > stack.max_clock_skew_s:
                    raise stack._auth_error(resp, "SignatureExpired",
                                            f"Signature expired: {amz_date} is now earlier/later than allowed")
                if resp.method == "GET" and not resp.raw_body:
                    # moto hashes a GET's form data as its body (for Lambda's REST API, the request
                    # headers), so no correctly signed GET passes. AWS hashes the empty body.
                    form, resp.data = resp.data, b""
                    try:
                        orig(resp, resource)
                    finally:
                        resp.data = form
                else:
                    orig(resp, resource)
                if rec.principal == "function":
                    stack._authorize_function_request(resp, service, str(action), rec)
                rec.ok = True
            except HTTPException as e:
                code = rec.error = stack._error_code(e)
                if getattr(e, "_local_converted", False):
                    raise
                raise stack._auth_error(resp, code, stack._error_message(e)) from None
            except KeyError as e:   # moto indexes headers it expects (Authorization, X-Amz-Date)
                rec.error = "IncompleteSignature"
                raise stack._auth_error(resp, "IncompleteSignature", f"missing {e}") from None
            finally:
                stack.auth_log.append(rec)

        self._patch(ActionAuthenticatorMixin, "_authenticate_and_authorize_normal_action", wrapped)

    @staticmethod
    def _error_code(e: Any) -> str:
        code = getattr(e, "_local_code", None)
        if code:
            return code
        m = re.search(r"<Code>([^<]+)</Code>", str(getattr(e, "description", "")))
        return m.group(1) if m else type(e).__name__

    @staticmethod
    def _error_message(e: Any) -> str:
        m = re.search(r"<Message>([^<]*)</Message>", str(getattr(e, "description", "")))
        return m.group(1) if m else str(getattr(e, "description", ""))

    def _auth_error(self, resp: Any, code: str, message: str) -> Any:
        """An authentication/authorization error shaped as the real service answers it."""
        from xml.sax.saxutils import escape
        json_protocol = bool(resp.headers.get("X-Amz-Target"))
        if json_protocol:
            json_code = {"SignatureDoesNotMatch": "InvalidSignatureException",
                         "InvalidClientTokenId": "UnrecognizedClientException",
                         "AccessDenied": "AccessDeniedException",
                         "MissingAuthenticationToken": "MissingAuthenticationTokenException",
                         "IncompleteSignature": "IncompleteSignatureException",
                         "SignatureExpired": "InvalidSignatureException"}.get(code, code)
            e = _http_exception(400, json.dumps({"__type": json_code, "message": message}),
                                "application/x-amz-json-1.1")
        else:
            service = getattr(resp, "service_name", "")
            xml_code = "AuthorizationError" if (code == "AccessDenied" and service == "sns") else code
            ns = {"sns": "http://sns.amazonaws.com/doc/2010-03-31/"}.get(service, "")
            body = (f'<ErrorResponse{" xmlns=" + chr(34) + ns + chr(34) if ns else ""}><Error><Type>Sender</Type>'
                    f"<Code>{escape(xml_code)}</Code><Message>{escape(message)}</Message></Error>"
                    f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
            e = _http_exception(403, body, "text/xml")
        e._local_converted = True
        e._local_code = code
        return e

    # -- Secrets Manager: RotateSecret drives the function; PutSecretValue into a filled version
    def _patch_secretsmanager(self) -> None:
        from moto.secretsmanager.exceptions import InvalidRequestException, ResourceExistsException
        from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend

        stack = self
        orig_rotate = SecretsManagerBackend.rotate_secret
        orig_check = SecretsManagerBackend._check_with_existing_secrets_and_versions

        def check(backend: Any, secret_name: str, client_request_token: str | None,
                  secret_string: str | None, secret_binary: str | None, on_create: bool = False) -> Any:
            # moto lets PutSecretValue overwrite a version that holds AWSPENDING even when it
            # already has a value. AWS: same token + same value is a no-op, a different value is
            # ResourceExistsException. Only a still-empty pending version may be filled.
            if client_request_token and secret_name in backend.secrets:
                secret = backend.secrets[secret_name]
                v = getattr(secret, "versions", {}).get(client_request_token)
                if v and "AWSPENDING" in v["version_stages"] and ("secret_string" in v or "secret_binary" in v):
                    if v.get("secret_string") == secret_string and v.get("secret_binary") == secret_binary:
                        return secret
                    raise ResourceExistsException(
                        f"You can't use ClientRequestToken {client_request_token} because that value "
                        f"is already in use for a version of secret {secret.arn}.")
            return orig_check(backend, secret_name, client_request_token, secret_string, secret_binary,
                              on_create=on_create)

        def rotate_secret(backend: Any, secret_id: str, client_request_token: str | None = None,
                          rotation_lambda_arn: str | None = None, rotation_rules: dict[str, Any] | None = None,
                          rotate_immediately: bool = True) -> str:
            if not backend._is_valid_identifier(secret_id):
                return orig_rotate(backend, secret_id, client_request_token, rotation_lambda_arn,
                                   rotation_rules, rotate_immediately)
            secret = backend.secrets[secret_id]
            versions = getattr(secret, "versions", {})
            # AWS: AWSPENDING on a version that is not AWSCURRENT means a rotation is unfinished.
            # (moto checks the opposite: it refuses when AWSPENDING sits *with* AWSCURRENT, which
            # is one of the two states a successful rotation may leave.)
            for v in versions.values():
                if "AWSPENDING" in v["version_stages"] and "AWSCURRENT" not in v["version_stages"]:
                    raise InvalidRequestException(
                        "A previous rotation isn't complete. That rotation will be reattempted.")
            for v in versions.values():
                if "AWSPENDING" in v["version_stages"] and "AWSCURRENT" in v["version_stages"]:
                    v["version_stages"].remove("AWSPENDING")
            # moto forgets the configured function when RotateSecret names none (and then moves
            # AWSCURRENT to an empty version). AWS uses the configured one.
            if not rotation_lambda_arn:
                rotation_lambda_arn = getattr(secret, "rotation_lambda_arn", "") or None
                if not rotation_lambda_arn:
                    raise InvalidRequestException(
                        "No Lambda rotation function ARN is associated with this secret.")
            mode = "rotate" if rotate_immediately else "test"
            if secret.arn in stack._prepare_only:
                stack._prepare_only.discard(secret.arn)
                mode = "prepare"
            rec = RotationRecord(secret_arn=secret.arn, token=None, rotate_immediately=rotate_immediately,
                                 mode=mode, rotation_token=str(uuid.uuid4()) if stack.send_rotation_token else None)
            if rec.rotation_token:
                stack.rotation_tokens.append(rec.rotation_token)
            _tls.rotation = rec
            try:
                result = orig_rotate(backend, secret_id, client_request_token, rotation_lambda_arn,
                                     rotation_rules, rotate_immediately)
            finally:
                _tls.rotation = None
            rec.token = json.loads(result).get("VersionId") if isinstance(result, str) else None
            if rec.events:
                rec.token = rec.events[0]["ClientRequestToken"]
            if mode == "test" and rec.token in secret.versions:
                # moto copies FakeSecret.secret_string into the trial version: the value the secret
                # was *created* with. AWS tests with a copy of AWSCURRENT.
                trial = secret.versions[rec.token]
                current = next((v for v in secret.versions.values() if "AWSCURRENT" in v["version_stages"]), None)
                if current is not None:
                    for key in ("secret_string", "secret_binary"):
                        trial.pop(key, None)
                        if key in current:
                            trial[key] = current[key]
            stack._fix_default_version(secret)
            stack.rotations.append(rec)
            if mode == "prepare":
                rec.finished_at = time.time()
                rec.done.set()
            else:
                t = threading.Thread(target=stack._run_rotation, args=(backend, secret, rec),
                                     name=f"rotation-{rec.token}", daemon=True)
                stack._threads.append(t)
                t.start()
            return result

        def form_version_ids_to_stages(secret: Any) -> dict[str, list[str]]:
            # AWS lists only versions that still carry a label; moto lists every version.
            return {k: v["version_stages"] for k, v in secret.versions.items() if v["version_stages"]}

        self._patch(FakeSecret, "_form_version_ids_to_stages", form_version_ids_to_stages)
        self._patch(SecretsManagerBackend, "rotate_secret", rotate_secret)
        self._patch(SecretsManagerBackend, "_check_with_existing_secrets_and_versions", check)

    @staticmethod
    def _fix_default_version(secret: Any) -> None:
        # moto points its "default" version (what GetSecretValue without stage answers) at the new
        # version right after RotateSecret; AWS answers AWSCURRENT.
        for vid, v in getattr(secret, "versions", {}).items():
            if "AWSCURRENT" in v["version_stages"]:
                secret.default_version_id = vid
                return

    def _run_rotation(self, backend: Any, secret: Any, rec: RotationRecord) -> None:
        try:
            for event in rec.events:
                res = self.runtime.invoke(event, self.function_timeout_s)
                rec.steps.append(StepRecord(step=event["Step"], ok=res.ok, duration_s=res.duration_s,
                                            request_id=res.request_id, error_type=res.error_type,
                                            error_message=res.error_message, payload=res.payload,
                                            cold_start=res.cold_start))
                if not res.ok:
                    break
            if rec.mode == "test" and rec.token in secret.versions:
                # "The test creates an AWSPENDING version of the secret and then removes it."
                v = secret.versions[rec.token]
                if "AWSCURRENT" not in v["version_stages"]:
                    del secret.versions[rec.token]
        except Exception as e:  # pragma: no cover - recorded, never raised into moto's thread
            rec.error = f"local stack: {e!r}"
        finally:
            self._fix_default_version(secret)
            rec.finished_at = time.time()
            rec.done.set()

    # -- Lambda: moto's invoke (which needs Docker) only collects the events
    def _patch_lambda(self) -> None:
        from moto.awslambda.models import LambdaBackend

        orig_invoke = LambdaBackend.invoke

        def invoke(backend: Any, function_name: str, qualifier: str | None, body: Any,
                   headers: Any, response_headers: Any) -> Any:
            rec: RotationRecord | None = getattr(_tls, "rotation", None)
            name = function_name.split(":function:")[-1].split(":")[0]
            if rec is None or name != FUNCTION_NAME:
                return orig_invoke(backend, function_name, qualifier, body, headers, response_headers)
            if rec.mode == "prepare":
                return b""
            event = json.loads(body)
            # AWS sends the secret's ARN (moto: its name) and a RotationToken.
            event["SecretId"] = rec.secret_arn
            if rec.rotation_token:
                event["RotationToken"] = rec.rotation_token
            rec.events.append(event)
            return b""

        self._patch(LambdaBackend, "invoke", invoke)

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

    def function_requests(self) -> list[AuthRecord]:
        return [r for r in self.auth_log if r.principal == "function"]

    def function_log_under_template_policy(self) -> str:
        """The function's log less what it wrote while a test withheld parts of its policy."""
        data = self.log_path.read_bytes() if self.log_path else b""
        kept, at = [], 0
        for start, end in self._reduced_policy_log_spans:
            kept.append(data[at:start])
            at = end
        kept.append(data[at:])
        return b"".join(kept).decode("utf-8", errors="replace")

    # ------------------------------------------------------------------ the function's policy
    @property
    def function_policy_name(self) -> str:
        withheld = sorted(self.withheld_statements) + sorted(self.withheld_actions)
        return f"{TEMPLATE_POLICY} without {', '.join(withheld)}" if withheld else TEMPLATE_POLICY

    def function_policy(self) -> list[dict[str, Any]]:
        """The template's statements for the function's role as in force now: intrinsics resolved to
        this stack's ARNs, less any withheld statement or action."""
        from local.cfn import resolve
        from local.iam_policy import check_statement
        refs = self._template_refs(self._template)
        conditions = self._template.get("Conditions") or {}
        policy = []
        for i, raw in enumerate(self.function_statements):
            st = resolve(raw, refs, where=f"{FUNCTION_LOGICAL_NAME} role statement {i}", conditions=conditions)
            if st is None or st.get("Sid") in self.withheld_statements:   # None: !If chose AWS::NoValue
                continue
            check_statement(st)
            actions = [st["Action"]] if isinstance(st["Action"], str) else st["Action"]
            kept = [a for a in actions if a not in self.withheld_actions]
            if kept:
                policy.append(dict(st, Action=kept))
        return policy

    @contextlib.contextmanager
    def function_policy_without(self, *sids: str, actions: Iterable[str] = ()):
        """Inside, the function's requests are evaluated without the template's statements `sids` and
        without `actions` wherever granted (moto's action check stays as it is). Its records carry
        the reduced policy's name, and what it logs meanwhile is left out of
        function_log_under_template_policy()."""
        actions = set(actions)
        policy = self.function_policy()
        unknown = (set(sids) - {st.get("Sid") for st in policy}) | (actions - {a for st in policy for a in st["Action"]})
        if unknown:
            raise KeyError(f"the function's policy has no statement or action {sorted(unknown)}")
        self.withheld_statements.update(sids)
        self.withheld_actions.update(actions)
        start = self.log_path.stat().st_size
        try:
            yield
        finally:
            self.withheld_statements.difference_update(sids)
            self.withheld_actions.difference_update(actions)
            self._reduced_policy_log_spans.append((start, self.log_path.stat().st_size))

    def _function_request_resources(self, service: str, action: str, resp: Any) -> list[Any] | None:
        """The resources IAM evaluates a request of the function against (None: left to moto)."""
        from local.iam_policy import Resource
        param = resp._get_param
        if service == "secretsmanager" and action != "GetRandomPassword":
            # A SecretId that names no secret is left to moto (ResourceNotFoundException): AWS
            # would deny it (AccessDenied), but the bad-input tests hand the function unknown
            # secrets on purpose and expect a refusal, not a denial.
            secret_id = param("SecretId")
            try:
                from moto.secretsmanager.models import secretsmanager_backends
                secret = secretsmanager_backends[ACCOUNT][REGION].secrets.get(secret_id)
            except Exception:
                secret = None
            return [Resource(secret.arn)] if secret is not None else None
        if service == "ssm" and action == "SendCommand":
            document = str(param("DocumentName") or "")
            if not document.startswith("arn:"):
                document = f"arn:aws:ssm:{REGION}:{ACCOUNT}:document/{document}"
            resources = [Resource(document)]
            for iid in param("InstanceIds") or []:
                arn = (f"arn:aws:ssm:{REGION}:{ACCOUNT}:managed-instance/{iid}" if str(iid).startswith("mi-")
                       else f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{iid}")
                tags = self.instance_tags.get(str(iid), {})
                resources.append(Resource(arn, {f"ssm:resourceTag/{k}": v for k, v in tags.items()}))
            return resources
        if service == "sns" and action == "Publish":
            return [Resource(str(param("TopicArn") or param("TargetArn") or ""))]
        # GetRandomPassword and the command-following calls have no resource-level permissions.
        return [Resource("*")]

    def _authorize_function_request(self, resp: Any, service: str, action: str, rec: AuthRecord) -> None:
        from local.iam_policy import evaluate
        resources = self._function_request_resources(service, action, resp)
        if resources is None:
            return
        rec.resources = [r.arn for r in resources]
        decision = evaluate(self.function_policy(), f"{service}:{action}", resources)
        if decision.allowed:
            return
        rec.denied_resource = decision.resource
        why = (f"with an explicit deny in an identity-based policy ({decision.explicit_deny})"
               if decision.explicit_deny is not None
               else f"because no identity-based policy allows the {service}:{action} action")
        raise self._auth_error(resp, "AccessDenied",
                               f"User: arn:aws:sts::{ACCOUNT}:assumed-role/rotator-function/{FUNCTION_NAME} "
                               f"is not authorized to perform: {service}:{action} on resource: "
                               f"{decision.resource} {why}")

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
        # Each 'host' has its own per-secret locks, as separate machines would (hosts/linux/flow.sh).
        env["ROTATOR_LOCK_DIR"] = str(home / "lock")
        env.update(host_env)
        self.ssm.register_instance(instance_id, platform, env)

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

    def begin_rotation(self, arn: str, token: str | None = None) -> str:
        """What Secrets Manager does before invoking createSecret: a new version `token` labelled
        AWSPENDING with no value. Uses RotateSecret itself with the function invocations held."""
        self._prepare_only.add(arn)
        kw = {"SecretId": arn}
        if token:
            kw["ClientRequestToken"] = token
        try:
            vid = self.client("secretsmanager").rotate_secret(**kw)["VersionId"]
        finally:
            self._prepare_only.discard(arn)
        return vid

    def wait_rotation(self, arn: str, timeout_s: float | None = None) -> RotationRecord:
        """The latest rotation of `arn`, once its steps are done."""
        deadline = time.monotonic() + (timeout_s or 4 * self.function_timeout_s + 30)
        while True:
            recs = [r for r in self.rotations if r.secret_arn == arn]
            if recs:
                rec = recs[-1]
                if rec.done.wait(max(0.0, deadline - time.monotonic())):
                    return rec
                raise TimeoutError(f"rotation of {arn} still running")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no rotation of {arn} started")
            time.sleep(0.05)

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


_tls = threading.local()
_RAW_BODY = "local_stack.raw_body"


def _moto_server_class():
    from moto.server import ThreadedMotoServer

    class MotoServer(ThreadedMotoServer):
        """moto's threaded server, keeping each request's body bytes for the signature check."""

        def _server_entry(self) -> None:
            from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
            from werkzeug.serving import make_server

            app = DomainDispatcherApplication(create_backend_app)

            def keep_body(environ: dict[str, Any], start_response: Any) -> Any:
                length = environ.get("CONTENT_LENGTH")
                if length or environ.get("wsgi.input_terminated"):
                    body = environ["wsgi.input"].read(int(length)) if length else environ["wsgi.input"].read()
                    environ[_RAW_BODY] = body
                    environ["wsgi.input"] = io.BytesIO(body)
                return app(environ, start_response)

            self._server = make_server(self._ip_address, self._port, keep_body, True)
            default_handle_error = self._server.handle_error

            def handle_error(request: Any, client_address: Any) -> None:
                # A client that goes away (the function killed at shutdown) is not an error.
                if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                    default_handle_error(request, client_address)

            self._server.handle_error = handle_error
            self._server_ready_event.set()
            self._server.serve_forever()

    return MotoServer


def _MotoServer(**kw: Any) -> Any:  # noqa: N802 - a class factory (moto imports stay lazy)
    return _moto_server_class()(**kw)


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
