"""template.yaml's documents and function against the host contract, and local/ssm_runner.py
against what the SSM agent and service do."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from local.cfn import load_template
from local.ssm_runner import (
    MAX_STDERR_LENGTH,
    MAX_STDOUT_LENGTH,
    MINIMAL_PATH,
    TIMED_OUT_RESPONSE_CODE,
    InvalidParameters,
    run_document,
    validate_parameters,
)

REPO = Path(__file__).resolve().parents[2]
CONTRACT_PATTERNS = {
    "Action": "^(set|verify)$",
    "SecretId": "^arn:aws[a-z-]{0,16}:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$",
    "VersionId": "^[A-Za-z0-9-]{32,64}$",
}
DOCUMENTS = {
    "PostgresRotationDocument": "aws:runShellScript",
    "MySQLRotationDocument": "aws:runShellScript",
    "SQLServerRotationDocument": "aws:runPowerShellScript",
}


# ---- the template ------------------------------------------------------------------------


def test_documents_declare_exactly_the_contract_parameters(documents):
    assert set(documents) == set(DOCUMENTS)
    for name, action in DOCUMENTS.items():
        content = documents[name]
        assert content["schemaVersion"] == "2.2"
        assert set(content["parameters"]) == set(CONTRACT_PATTERNS) | {"Login"}
        for parameter, pattern in CONTRACT_PATTERNS.items():
            spec = content["parameters"][parameter]
            assert spec["type"] == "String"
            assert spec["interpolationType"] == "ENV_VAR"
            assert spec["allowedPattern"] == pattern
            assert "default" not in spec
        # The login the stack pins: nobody passes it, its default is the only value allowed (the
        # local stack's documents serve every login, so there it is empty).
        assert content["parameters"]["Login"] == {
            "type": "String", "interpolationType": "ENV_VAR", "default": "", "allowedValues": [""],
            "description": content["parameters"]["Login"]["description"]}
        steps = content["mainSteps"]
        assert len(steps) == 1 and steps[0]["action"] == action
        commands = steps[0]["inputs"]["runCommand"]
        assert isinstance(commands, list) and commands and all(isinstance(c, str) for c in commands)
        assert not any("{{" in c for c in commands)
        assert 5 <= int(steps[0]["inputs"]["timeoutSeconds"]) < 300, "the step must end inside the Lambda timeout"


def test_linux_documents_share_one_prologue_and_flow(documents):
    """The Linux scripts are [Prologue, engine part, Flow]: the shared parts are one text, and each
    engine part defines what the flow calls."""
    parts = {name: documents[name]["mainSteps"][0]["inputs"]["runCommand"]
             for name in ("PostgresRotationDocument", "MySQLRotationDocument")}
    (pg_first, pg_engine, pg_last), (my_first, my_engine, my_last) = parts.values()
    assert pg_first == my_first and pg_last == my_last
    assert pg_first.startswith("# shellcheck shell=bash\n") and "exec bash" in pg_first
    assert "ROTATOR-RESULT" in pg_last
    for engine in (pg_engine, my_engine):
        for function in ("verify", "verify_failed", "login_exists", "change_password"):
            assert re.search(rf"^{function}\(\) {{$", engine, re.M), function
        assert "ROTATOR-RESULT" not in engine


def test_patterns_mean_the_same_in_java_go_and_python():
    for pattern in CONTRACT_PATTERNS.values():
        assert pattern.startswith("^") and pattern.endswith("$")
        # no look-around, no back-references, no possessive or lazy quantifiers, no named groups
        assert not re.search(r"\(\?|\\[1-9]|[*+?}][+?]|\\[pPdDwWsSbB]", pattern), pattern
        re.compile(pattern)


def test_contract_document_states_the_same_patterns():
    text = (REPO / "docs" / "host-contract.md").read_text()
    for parameter, pattern in CONTRACT_PATTERNS.items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{parameter}` |"))
        assert f"`{pattern}`" in row, row


def test_document_resources_and_function(documents):
    template = load_template(REPO / "template.yaml")
    assert template["Transform"] == "AWS::Serverless-2016-10-31"
    resources = template["Resources"]
    for name in DOCUMENTS:
        props = resources[name]["Properties"]
        assert resources[name]["Type"] == "AWS::SSM::Document"
        assert props["DocumentType"] == "Command"
        assert props["DocumentFormat"] in {"JSON", "YAML"}
    function = resources["RotationFunction"]
    assert function["Type"] == "AWS::Serverless::Function"
    assert function["Metadata"]["BuildMethod"] == "makefile"
    props = function["Properties"]
    assert props["Runtime"] == "provided.al2023"
    assert props["Architectures"] == [{"Ref": "Architecture"}]
    assert props["Handler"] == "bootstrap"
    assert props["CodeUri"] == "."
    assert props["Timeout"] == 300
    assert props["MemorySize"] == 256
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    variables = props["Environment"]["Variables"]
    assert variables["POSTGRES_DOCUMENT"] == {"Ref": "PostgresRotationDocument"}
    assert variables["MYSQL_DOCUMENT"] == {"Ref": "MySQLRotationDocument"}
    assert variables["SQLSERVER_DOCUMENT"] == {"Ref": "SQLServerRotationDocument"}
    assert variables["SNS_TOPIC_ARN"] == {"Ref": "AlertTopic"}
    assert variables["PASSWORD_LENGTH"] == {"Ref": "PasswordLength"}
    assert variables["EXCLUDE_CHARACTERS"] == {"Ref": "ExcludeCharacters"}
    parameters = template["Parameters"]
    assert int(parameters["PasswordLength"]["Default"]) == 32
    assert parameters["ExcludeCharacters"]["Default"] == ""


# ---- validate_parameters -----------------------------------------------------------------

ARN = "arn:aws:secretsmanager:eu-west-3:123456789012:secret:db/app-Ab12Cd"
VERSION = "EXAMPLE1-90ab-cdef-fedc-ba987EXAMPLE"


def test_validate_parameters_applies_defaults_and_rejects_like_ssm():
    content = {
        "parameters": {
            "A": {"type": "String", "allowedPattern": "^[a-z]+$"},
            "B": {"type": "String", "default": "dflt", "allowedPattern": "^[a-z]+$"},
            "C": {"type": "String", "allowedValues": ["x", "y"], "default": "x"},
        }
    }
    assert validate_parameters(content, {"A": ["abc"]}) == {"A": "abc", "B": "dflt", "C": "x"}
    for bad in (
        {},  # A missing
        {"A": ["abc"], "Z": ["1"]},  # undeclared
        {"A": ["ABC"]},  # pattern
        {"A": ["abc\n"]},  # "$" must not accept a trailing newline
        {"A": ["abc", "def"]},  # a String takes one value
        {"A": ["abc"], "C": ["z"]},  # allowedValues
    ):
        with pytest.raises(InvalidParameters):
            validate_parameters(content, bad)


def test_validate_parameters_accepts_real_ids(documents):
    for name in DOCUMENTS:
        values = validate_parameters(
            documents[name], {"Action": ["set"], "SecretId": [ARN], "VersionId": [VERSION]}
        )
        assert values["SecretId"] == ARN
    china = ARN.replace("arn:aws:", "arn:aws-cn:").replace("eu-west-3", "cn-north-1")
    validate_parameters(documents["PostgresRotationDocument"],
                        {"Action": ["verify"], "SecretId": [china], "VersionId": ["a" * 64]})


# ---- run_document ------------------------------------------------------------------------


def shell_document(script: str, timeout: str = "60", parameters=None) -> dict:
    return {
        "schemaVersion": "2.2",
        "parameters": parameters or {"Name": {"type": "String", "default": "dflt", "interpolationType": "ENV_VAR"}},
        "mainSteps": [{"action": "aws:runShellScript", "name": "s",
                       "inputs": {"timeoutSeconds": timeout, "runCommand": [script]}}],
    }


def test_run_document_environment_and_status():
    script = 'echo "0=$0"; env | sort; read -r line || echo "stdin-empty"; echo oops >&2; exit 3'
    result = run_document(shell_document(script), {}, {"EXTRA": "1"}, timeout_seconds=30)
    assert result.status == "Failed" and result.response_code == 3
    assert result.stderr == "oops\n"
    lines = result.stdout.splitlines()
    assert lines[0].startswith("0=/") and lines[0].endswith("/_script.sh")
    env = dict(line.split("=", 1) for line in lines[1:-1] if "=" in line)
    assert env["SSM_Name"] == "dflt" and env["EXTRA"] == "1" and env["PATH"] == MINIMAL_PATH
    assert "HOME" not in env and "PYTEST_CURRENT_TEST" not in env
    assert lines[-1] == "stdin-empty"
    ok = run_document(shell_document('echo "$SSM_Name"'), {"Name": ["given"]}, {}, timeout_seconds=30)
    assert (ok.status, ok.response_code, ok.stdout, ok.stderr) == ("Success", 0, "given\n", "")


def test_run_document_times_out_and_kills_the_process_group(tmp_path):
    marker = tmp_path / "child.pid"
    script = f"sleep 60 & echo $! > {marker}; echo started; sleep 60"
    started = time.monotonic()
    result = run_document(shell_document(script, timeout="5"), {}, {}, timeout_seconds=1)
    assert time.monotonic() - started < 10
    assert result.status == "TimedOut" and result.response_code == TIMED_OUT_RESPONSE_CODE == 137
    assert result.stdout == "started\n"
    child = int(marker.read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_run_document_can_be_cancelled(tmp_path):
    import threading

    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    started = time.monotonic()
    try:
        result = run_document(shell_document("echo started; sleep 60"), {}, {}, timeout_seconds=30,
                              cancel_event=cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - started < 5
    assert (result.status, result.response_code, result.stdout) == ("Cancelled", 137, "started\n")


def test_run_document_cuts_output_as_ssm_does():
    script = "head -c 30000 /dev/zero | tr '\\0' o; head -c 9000 /dev/zero | tr '\\0' e >&2"
    result = run_document(shell_document(script), {}, {}, timeout_seconds=30)
    assert len(result.stdout) == MAX_STDOUT_LENGTH and result.stdout.endswith("--output truncated--")
    assert len(result.stderr) == MAX_STDERR_LENGTH and result.stderr.endswith("--output truncated--")
    short = run_document(shell_document("printf abc"), {}, {}, timeout_seconds=30)
    assert short.stdout == "abc"


def test_powershell_documents_cannot_run_here(documents):
    result = run_document(
        documents["SQLServerRotationDocument"], {"Action": ["verify"], "SecretId": [ARN], "VersionId": [VERSION]},
        {}, timeout_seconds=30,
    )
    assert result.status == "Failed" and result.response_code != 0
    assert "PowerShell is not available on this host" in result.stderr


def test_run_document_leaves_no_orchestration_directory(tmp_path, monkeypatch):
    import tempfile

    # A temporary directory of its own: other runs on this machine share /tmp.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    result = run_document(shell_document("pwd"), {}, {}, timeout_seconds=30)
    assert result.stdout.startswith(str(tmp_path / "ssm-orchestration-")), result.stdout
    assert list(tmp_path.iterdir()) == []


def test_each_document_pins_the_stacks_login():
    """In the deployed template (not the local stack's), Login's default and only allowed value
    is the stack's LoginName."""
    template = load_template(REPO / "template.yaml")
    for name in DOCUMENTS:
        login = template["Resources"][name]["Properties"]["Content"]["parameters"]["Login"]
        assert login["default"] == {"Ref": "LoginName"} and login["allowedValues"] == [{"Ref": "LoginName"}], name

