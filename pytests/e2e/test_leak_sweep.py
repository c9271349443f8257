"""The leak sweep itself (leak_sweep.py; conftest.py runs it over the whole suite when the stack
closes): it finds what is planted, where it is planted, and it collects what it searches for from
the stack itself."""

from __future__ import annotations

import subprocess
import uuid

from local.stack import LocalStack

from . import leak_sweep
from .helpers import Login, leaks


def test_find_reports_each_planted_secret_where_it_is():
    needles = {"a password": "Zq8-planted-Password-1", "a key": "wJalrXUtnFEMI/planted/KEY",
               "a placeholder": "a"}
    haystacks = {"log": "line 1\nthe password Zq8-planted-Password-1 leaked\n", "alert": "nothing here",
                 "stdout": "key=wJalrXUtnFEMI/planted/KEY"}
    assert leak_sweep.find(needles, haystacks) == [("a password", "log"), ("a key", "stdout")]
    assert leak_sweep.find(needles, {"clean": "Zq8-planted-Password"}) == []


def test_each_tests_leak_check_finds_a_token_or_a_password_wherever_it_is():
    tokens = [str(uuid.uuid4()) for _ in range(4)]
    # Inside a longer run of hex digits and dashes, cut by one character, in another case.
    text = f"a{tokens[0]}b {tokens[1]}{tokens[1][:8]} deadbeef-{tokens[2]} {tokens[3][:-1]} {tokens[3].upper()} pw=Hunter-22!"
    assert leaks(text, tokens + ["Hunter-22!", "Hunter-23!", ""]) == [t[:4] + "…" for t in tokens[:3]] + ["Hunt…"]


def test_sweep_collects_from_the_stack_and_sees_process_command_lines(function: LocalStack, login: Login):
    stack = function
    needles = leak_sweep.secrets_of(stack)
    assert login.password in needles.values(), "the login's password is not searched for"
    assert all(c in needles.values() for c in stack.secrets_in_play())

    # A process started while a host script runs, with a secret on its command line.
    marker = "planted-cmdline-" + uuid.uuid4().hex
    version = stack.version_with(login.arn, "AWSCURRENT")
    command_id = stack.client("ssm").send_command(
        DocumentName=stack.document_names["PostgresRotationDocument" if login.db.engine == "postgres"
                                          else "MySQLRotationDocument"],
        InstanceIds=[login.db.instance_id],
        Parameters={"Action": ["verify"], "SecretId": [login.arn], "VersionId": [version]})["Command"]["CommandId"]
    with subprocess.Popen(["sh", "-c", "sleep 2", marker]) as planted:
        planted.wait()
    stack.ssm.wait_idle(60)
    assert stack.client("ssm").get_command_invocation(
        CommandId=command_id, InstanceId=login.db.instance_id)["Status"] == "Success"

    result = leak_sweep.sweep(stack, extra_needles={"the planted marker": marker},
                              extra_haystacks={"a planted log": f"oops: {login.password}"})
    assert ("the planted marker", "process command lines during host scripts") in result.hits, result.summary()
    assert any(what.startswith("password of ") and where == "a planted log" for what, where in result.hits), \
        result.summary()
    assert {where for _, where in result.hits} == {"process command lines during host scripts", "a planted log"}, \
        result.summary()
