"""SSM Run Command as the agent does it, for the local stack and the host-script tests.

The SSM Command documents live inline in `template.yaml` (the only copy of the scripts: what the
tests run is exactly what deploys). This module

- loads them (`load_documents`, with local/cfn.py's `load_template`, which reads CloudFormation's
  short tags `!Ref`, `!Sub`, ...);
- checks command parameters as the SSM service does at `SendCommand` (`validate_parameters`),
  and the `DocumentVersion` a command names (`document_version`);
- runs a document as the Linux agent does (`run_document`): each `aws:runShellScript` step's
  `runCommand` lines are joined with "\\n" (plus a final "\\n") into `_script.sh` (mode 0750) in a
  fresh orchestration directory and started as `sh -c <path>/_script.sh ""` in its own process
  group, stdin /dev/null, with a minimal environment plus the host's variables plus `SSM_<Name>`
  for every parameter (parameters declared with `interpolationType: ENV_VAR`). Exit 0 is
  `Success`, anything else `Failed`; when the step's `timeoutSeconds` (or the caller's bound)
  runs out the whole process group is killed and the invocation is `TimedOut` with response code
  137 (the Linux agent's `CommandStoppedPreemptivelyExitCode`, 128 + SIGKILL); the same, with
  status `Cancelled`, when the caller sets `cancel_event` (CancelCommand). Standard output
  and error are cut as the agent cuts them: at 24,000 and 8,000 bytes, the kept text ending in
  "--output truncated--".

`aws:runPowerShellScript` cannot run here: such a step fails with a clear message on stderr.

SendCommand-like use (what the moto hook of the local stack should do):

    documents = load_documents("template.yaml")
    content = documents["PostgresRotationDocument"]
    validate_parameters(content, parameters)        # raises InvalidParameters, as SendCommand
    result = run_document(content, parameters, host_env, timeout_seconds=120)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from local.cfn import load_template

__all__ = [
    "InvalidDocumentVersion",
    "InvalidParameters",
    "InvocationResult",
    "MINIMAL_PATH",
    "MAX_STDOUT_LENGTH",
    "MAX_STDERR_LENGTH",
    "STOPPED_RESPONSE_CODE",
    "TIMED_OUT_RESPONSE_CODE",
    "aws_cli_host_env",
    "document_version",
    "documents_in",
    "load_documents",
    "shell_script",
    "truncate_output",
    "validate_parameters",
    "run_document",
]

#: What the agent's environment usually offers as PATH on a Linux host.
MINIMAL_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
MAX_STDOUT_LENGTH = 24000
MAX_STDERR_LENGTH = 8000
OUTPUT_TRUNCATED_SUFFIX = "--output truncated--"
#: Response code of a step the Linux agent killed on timeout or cancel (128 + SIGKILL): its
#: CommandStoppedPreemptivelyExitCode. (-1 is what the service shows for a command that never
#: ran on the instance, e.g. a delivery timeout.)
STOPPED_RESPONSE_CODE = 137
TIMED_OUT_RESPONSE_CODE = STOPPED_RESPONSE_CODE
#: The agent's default and bounds for a step's timeoutSeconds.
DEFAULT_EXECUTION_TIMEOUT = 3600
MIN_EXECUTION_TIMEOUT = 5
MAX_EXECUTION_TIMEOUT = 172800

_DEFAULT_TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


class InvalidParameters(Exception):
    """Raised where SSM's SendCommand answers InvalidParameters."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidDocumentVersion(Exception):
    """Raised where SSM's SendCommand answers InvalidDocumentVersion."""

    def __init__(self, message: str = "The document version is not valid or does not exist.") -> None:
        super().__init__(message)
        self.message = message


@dataclass
class InvocationResult:
    status: str  # Success | Failed | TimedOut
    response_code: int
    stdout: str
    stderr: str


# ------------------------------------------------------------------------------------------
# template.yaml


def load_documents(template_path: str | os.PathLike | None = "template.yaml") -> dict[str, dict]:
    """Logical name -> document content of every AWS::SSM::Document in the template.

    A relative path that does not exist from the current directory is looked up next to the
    repository root (where this module's parent lives), so tests run from anywhere.
    """
    path = Path(template_path) if template_path is not None else _DEFAULT_TEMPLATE
    if not path.is_absolute() and not path.exists():
        path = _DEFAULT_TEMPLATE.parent / path
    return documents_in(load_template(path))


def documents_in(template: dict) -> dict[str, dict]:
    """Logical name -> document content of every AWS::SSM::Document of a loaded template, each
    `!FindInMap` resolved as CloudFormation does."""
    mappings = template.get("Mappings") or {}
    documents: dict[str, dict] = {}
    for name, resource in (template.get("Resources") or {}).items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::SSM::Document":
            continue
        content = (resource.get("Properties") or {}).get("Content")
        if isinstance(content, str):
            content = yaml.safe_load(content)
        documents[name] = _resolve_find_in_map(_unpinned(content), mappings, name)
    return documents


def _unpinned(content):
    """The document as the local stack deploys it: one set of documents serves every login, so the
    `Login` parameter (default and only allowed value !Ref LoginName in a real stack) pins none.
    pytests/hosts pass Login themselves to prove the pin."""
    login = ((content or {}).get("parameters") or {}).get("Login")
    if isinstance(login, dict) and login.get("default") == {"Ref": "LoginName"}:
        content = {**content, "parameters": {**content["parameters"], "Login": {**login, "default": "", "allowedValues": [""]}}}
    return content


def _resolve_find_in_map(value, mappings: dict, where: str):
    """What CloudFormation deploys: `!FindInMap [Map, Key, Name]` replaced by the mapped text.
    Any other intrinsic in a document raises, so nothing unresolved reaches a test as a dict."""
    if isinstance(value, list):
        return [_resolve_find_in_map(v, mappings, where) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and "Fn::FindInMap" in value:
            map_name, key, name = value["Fn::FindInMap"]
            return mappings[map_name][key][name]
        if any(k == "Ref" or k.startswith("Fn::") for k in value):
            raise ValueError(f"{where}: intrinsic {sorted(value)} in a document cannot be resolved locally")
        return {k: _resolve_find_in_map(v, mappings, where) for k, v in value.items()}
    return value


def _run_command_text(step: dict) -> str:
    """The script text the agent writes for a step: runCommand items joined by newlines."""
    commands: list[str] = []

    def flatten(value) -> None:
        if isinstance(value, str):
            commands.append(value)
        elif isinstance(value, list):
            for item in value:
                flatten(item)

    flatten((step.get("inputs") or {}).get("runCommand"))
    return "\n".join(commands) + "\n"


def shell_script(content: dict, step_index: int = 0) -> str:
    """The exact `_script.sh` text the agent would run for a step of a document."""
    return _run_command_text(content["mainSteps"][step_index])


# ------------------------------------------------------------------------------------------
# parameters


def validate_parameters(content: dict, parameters: dict[str, list[str]]) -> dict[str, str]:
    """Check parameters as SendCommand does; return the effective values (defaults applied).

    Rejects an undeclared parameter, a missing required one (no default), a value that is not a
    single string for a String parameter, and a value that fails allowedPattern / allowedValues.
    """
    declared: dict = content.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise InvalidParameters("parameters must be a map of names to lists of strings")
    for name in parameters:
        if name not in declared:
            raise InvalidParameters(f"Parameter {name!r} is not defined in the document")
    effective: dict[str, str] = {}
    for name, spec in declared.items():
        spec = spec or {}
        if name in parameters:
            values = parameters[name]
            if isinstance(values, str):
                values = [values]
            if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
                raise InvalidParameters(f"Parameter {name!r} must be a list of strings")
            if spec.get("type", "String") == "String":
                if len(values) != 1:
                    raise InvalidParameters(f"Parameter {name!r} of type String takes exactly one value")
                value = values[0]
            else:
                value = ",".join(values)
        elif "default" in spec:
            value = str(spec["default"])
        else:
            raise InvalidParameters(f"Parameter {name!r} is required and has no default")
        pattern = spec.get("allowedPattern")
        if pattern is not None and not _pattern_matches(pattern, value):
            raise InvalidParameters(
                f"Parameter {name!r} value does not match the allowed pattern {pattern}"
            )
        allowed = spec.get("allowedValues")
        if allowed is not None and value not in [str(v) for v in allowed]:
            raise InvalidParameters(f"Parameter {name!r} value is not one of the allowed values")
        effective[name] = value
    return effective


def document_version(requested: str | None, versions: list[str] | set[str] | dict, default: str,
                     latest: str | None = None) -> str:
    """The version a SendCommand runs, as SSM picks it: the default when none is named (or
    `$DEFAULT`), the latest for `$LATEST`, else the named version, which must be one of the
    document's registered `versions` (InvalidDocumentVersion otherwise, and nothing runs)."""
    if requested is None or requested == "$DEFAULT":
        return default
    if requested == "$LATEST":
        return latest if latest is not None else default
    if not isinstance(requested, str) or not re.fullmatch(r"[1-9][0-9]*", requested) or requested not in versions:
        raise InvalidDocumentVersion()
    return requested


def _pattern_matches(pattern: str, value: str) -> bool:
    # The documents' patterns are anchored (^...$) and use only the common subset of Java, Go and
    # Python regular expressions. fullmatch means a trailing newline never slips through "$".
    return re.fullmatch(pattern, value) is not None


def _environment_values(content: dict, parameters: dict[str, list[str]]) -> dict[str, str]:
    """SSM_<Name> for every declared parameter, without validating (what the agent exports)."""
    env: dict[str, str] = {}
    declared: dict = content.get("parameters") or {}
    for name, spec in declared.items():
        spec = spec or {}
        if name in parameters:
            values = parameters[name]
            value = values if isinstance(values, str) else ",".join(str(v) for v in values)
        elif "default" in spec:
            value = str(spec["default"])
        else:
            continue
        env[f"SSM_{name}"] = value
    # Undeclared parameters (possible only when validation was bypassed) are exported as well,
    # so a test can prove the script ignores what it does not expect.
    for name, values in parameters.items():
        if name not in declared:
            env[f"SSM_{name}"] = values if isinstance(values, str) else ",".join(str(v) for v in values)
    return env


# ------------------------------------------------------------------------------------------
# execution


def _truncate(data: bytes, limit: int) -> str:
    # The agent reads at most `limit` bytes and, when it got that many, ends them with the suffix.
    if len(data) >= limit:
        data = data[: limit - len(OUTPUT_TRUNCATED_SUFFIX)] + OUTPUT_TRUNCATED_SUFFIX.encode()
    return data.decode("utf-8", errors="replace")


def truncate_output(text: str, limit: int) -> str:
    """Output as SSM reports it: cut as the agent cuts it (see _truncate)."""
    return _truncate(text.encode(), limit)


def _step_timeout(step: dict) -> int:
    raw = (step.get("inputs") or {}).get("timeoutSeconds")
    if raw is None:
        return DEFAULT_EXECUTION_TIMEOUT
    try:
        value = int(float(raw))
    except (TypeError, ValueError):
        return DEFAULT_EXECUTION_TIMEOUT
    if value < MIN_EXECUTION_TIMEOUT or value > MAX_EXECUTION_TIMEOUT:
        return DEFAULT_EXECUTION_TIMEOUT
    return value


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# Held while a script file is open for writing and while a script is started: a process forked
# (by another thread) while the file is open for writing keeps that open until it execs, and
# executing the file meanwhile fails with "Text file busy" (exit 126).
_SPAWN_LOCK = threading.Lock()


def _run_shell_step(step: dict, env: dict[str, str], timeout: float,
                    cancel_event: threading.Event | None = None) -> InvocationResult:
    orchestration = Path(tempfile.mkdtemp(prefix="ssm-orchestration-"))
    try:
        os.chmod(orchestration, 0o700)
        script = orchestration / "_script.sh"
        with _SPAWN_LOCK:
            fd = os.open(script, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o750)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(_run_command_text(step))
        working_dir = (step.get("inputs") or {}).get("workingDirectory") or str(orchestration)
        with open(orchestration / "stdout", "wb") as out, open(orchestration / "stderr", "wb") as err:
            with _SPAWN_LOCK:
                proc = subprocess.Popen(
                    ["sh", "-c", str(script), ""],
                    cwd=working_dir,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,  # its own process group, as the agent's Setpgid
                )
            stopped = ""  # "TimedOut" | "Cancelled"
            deadline = time.monotonic() + timeout
            try:
                while True:
                    remaining = max(0.0, deadline - time.monotonic())
                    try:
                        code = proc.wait(timeout=min(remaining, 0.05) if cancel_event is not None else remaining)
                        break
                    except subprocess.TimeoutExpired:
                        pass
                    if cancel_event is not None and cancel_event.is_set():
                        stopped = "Cancelled"
                    elif time.monotonic() >= deadline:
                        stopped = "TimedOut"
                    if stopped:
                        _kill_group(proc)
                        proc.wait()
                        code = STOPPED_RESPONSE_CODE
                        break
            finally:
                # Nothing the script started may outlive the invocation.
                _kill_group(proc)
        stdout = _truncate((orchestration / "stdout").read_bytes()[:MAX_STDOUT_LENGTH], MAX_STDOUT_LENGTH)
        stderr = _truncate((orchestration / "stderr").read_bytes()[:MAX_STDERR_LENGTH], MAX_STDERR_LENGTH)
        if stopped:
            return InvocationResult(stopped, STOPPED_RESPONSE_CODE, stdout, stderr)
        if code < 0:  # killed by a signal: the agent sees -1 and reports a failure
            return InvocationResult("Failed", -1, stdout, stderr)
        return InvocationResult("Success" if code == 0 else "Failed", code, stdout, stderr)
    finally:
        shutil.rmtree(orchestration, ignore_errors=True)


def run_document(
    content: dict,
    parameters: dict[str, list[str]],
    host_env: dict[str, str] | None = None,
    timeout_seconds: float = 120,
    cancel_event: threading.Event | None = None,
) -> InvocationResult:
    """Run a Command document's steps as the Linux SSM agent would; no parameter validation.

    `host_env` is the host's own environment (for example PGHOST, MYSQL_UNIX_PORT, AWS_*); a PATH
    in it replaces the minimal one. Each step gets min(step timeoutSeconds, timeout_seconds).
    Steps run in order and the run stops at the first step that does not succeed. Setting
    `cancel_event` (CancelCommand) kills the running step's process group: status Cancelled.
    """
    env = {"PATH": MINIMAL_PATH}
    env.update(host_env or {})
    env.update(_environment_values(content, parameters))
    stdout_parts: list[str] = []
    stderr_parts: list[str] = []
    result = InvocationResult("Success", 0, "", "")
    for step in content.get("mainSteps") or []:
        action = step.get("action")
        if action == "aws:runShellScript":
            timeout = min(float(_step_timeout(step)), float(timeout_seconds))
            result = _run_shell_step(step, env, timeout, cancel_event)
        elif action == "aws:runPowerShellScript":
            result = InvocationResult(
                "Failed",
                1,
                "",
                "PowerShell is not available on this host: aws:runPowerShellScript cannot run here\n",
            )
        else:
            result = InvocationResult("Failed", 1, "", f"unsupported step action {action!r}\n")
        stdout_parts.append(result.stdout)
        stderr_parts.append(result.stderr)
        if result.status != "Success":
            break
    return InvocationResult(
        result.status,
        result.response_code,
        _truncate("".join(stdout_parts).encode(), MAX_STDOUT_LENGTH),
        _truncate("".join(stderr_parts).encode(), MAX_STDERR_LENGTH),
    )


def aws_cli_host_env(
    endpoint_url: str,
    region: str = "us-east-1",
    access_key_id: str = "testing",
    secret_access_key: str = "testing",
    session_token: str | None = None,
) -> dict[str, str]:
    """The environment a local 'host' needs for its AWS CLI to reach an emulator.

    PATH is the minimal one plus the directory of the AWS CLI installed next to this interpreter
    (or found on PATH): a pip install here, as on many hosts. The CLI's config files are pointed
    at nothing so a developer's ~/.aws cannot interfere.
    """
    path = MINIMAL_PATH
    # The CLI installed next to this interpreter first (pyenv-style shims on PATH need an
    # environment of their own), else whatever `aws` is on PATH.
    beside = Path(sys.executable).parent / "aws"
    aws = str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("aws")
    if aws:
        aws_dir = str(Path(aws).parent)
        if aws_dir not in MINIMAL_PATH.split(":"):
            # After the system directories, so the host's python3 is the system one (as on a
            # real host); in front only if another `aws` there would shadow this one.
            other = shutil.which("aws", path=MINIMAL_PATH)
            path = f"{aws_dir}:{path}" if other and Path(other).resolve() != Path(aws).resolve() else f"{path}:{aws_dir}"
    env = {
        "PATH": path,
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        "AWS_ACCESS_KEY_ID": access_key_id,
        "AWS_SECRET_ACCESS_KEY": secret_access_key,
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_PAGER": "",
    }
    if session_token:
        env["AWS_SESSION_TOKEN"] = session_token
    return env
