"""Attacks through the SSM documents, end to end (docs/THREAT-MODEL.md): a principal that may update
the stack's documents (not the function, not the secret) publishes a version of its own and makes
it the default, so that the next rotation runs its script as root on every database host.

The function reads each document once per process (GetDocument), runs it only when it is the one
this rotator ships, and names the version it read in every SendCommand: a cold process refuses the
attacker's version before any host is touched, a warm one keeps running the version it proved.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from local.stack import LocalStack

from .helpers import Login, alerts_since, commands_for, leaks, rotate, run_steps

DOCUMENTS = {"postgres": "PostgresRotationDocument", "mariadb": "MySQLRotationDocument"}


def document_of(stack: LocalStack, login: Login) -> str:
    return stack.document_names[DOCUMENTS[login.db.name]]


def publish_attackers_version(stack: LocalStack, name: str, marker: Path) -> str:
    """The shipped script with one line more, which leaves a marker wherever it runs, as a new
    version made the default; that version's number."""
    content = copy.deepcopy(stack.documents[name])
    content["mainSteps"][0]["inputs"]["runCommand"].insert(1, f"touch {marker}")
    ssm = stack.client("ssm")
    version = ssm.update_document(Name=name, Content=json.dumps(content), DocumentFormat="JSON",
                                  DocumentVersion="$LATEST")["DocumentDescription"]["DocumentVersion"]
    ssm.update_document_default_version(Name=name, DocumentVersion=version)
    assert ssm.get_document(Name=name)["DocumentVersion"] == version
    return version


def default_version(stack: LocalStack, name: str) -> str:
    return stack.client("ssm").get_document(Name=name)["DocumentVersion"]


def restore_default(stack: LocalStack, name: str, version: str) -> None:
    stack.client("ssm").update_document_default_version(Name=name, DocumentVersion=version)


@pytest.mark.chaos("Attacks: a new default version of the stack's document, cold function (end to end)")
def test_a_new_default_version_of_the_document_is_refused_before_any_host(function: LocalStack, login: Login, tmp_path):
    stack = function
    name = document_of(stack, login)
    shipped = default_version(stack, name)
    marker = tmp_path / "ran-the-attackers-script"
    stack.runtime.cold_start()          # a container that has not proven the document yet
    current = stack.version_with(login.arn, "AWSCURRENT")
    attackers = publish_attackers_version(stack, name, marker)
    commands_before, alerts_before = len(stack.commands), len(stack.alerts())
    try:
        rec = rotate(stack, login.arn)
        assert not rec.ok, "the rotation ran through the attacker's document version"
        failed = rec.failed_step
        assert failed.step == "setSecret" and failed.error_type == "DocumentRefused", (failed.step, failed.error_type)
        assert f"the document {name} is not the one this rotator ships" in failed.error_message, failed.error_message
        assert f"in its version {attackers}; nothing was sent to any host" in failed.error_message, failed.error_message
        stack.ssm.wait_idle(30)
        assert commands_for(stack, login.arn, commands_before) == [], "a command reached a host"
        assert not marker.exists(), "the attacker's script ran"
        assert login.can_login(login.password), "the login's password changed"
        assert stack.version_with(login.arn, "AWSCURRENT") == current
        pending = login.pending_password()
        assert not login.can_login(pending)
        alerts = alerts_since(stack, alerts_before)
        text = " ".join(a["message"] for a in alerts)
        assert login.arn in text and "DocumentRefused" in text and name in text, text
        assert not leaks(text, login.passwords), "a password is in the alert"
    finally:
        restore_default(stack, name, shipped)
    # With the shipped version the default again, Secrets Manager's retry of the same version completes.
    results = run_steps(stack, login.arn, rec.token)
    assert all(r.ok for _, r in results), [(step, r.error) for step, r in results]
    assert login.can_login(login.current_password()) and not marker.exists()


@pytest.mark.chaos("Attacks: a new default version of the stack's document, warm function (end to end)")
def test_a_warm_function_keeps_running_the_version_it_proved(function: LocalStack, login: Login, tmp_path):
    """Time of check to time of use: the version is published after the function proved the
    shipped one; every command still names the proven version, so the attacker's never runs."""
    stack = function
    name = document_of(stack, login)
    shipped = default_version(stack, name)
    marker = tmp_path / "ran-the-attackers-script"
    stack.runtime.cold_start()
    first = rotate(stack, login.arn)
    assert first.ok, [(s.step, s.error_message) for s in first.steps]
    attackers = publish_attackers_version(stack, name, marker)
    commands_before = len(stack.commands)
    try:
        rec = rotate(stack, login.arn)
        assert rec.ok, [(s.step, s.error_message) for s in rec.steps]
        stack.ssm.wait_idle(30)
        sent = commands_for(stack, login.arn, commands_before)
        assert sent and all(c.document_name == name and c.document_version == shipped == c.ran_version for c in sent), \
            [(c.document_name, c.document_version, c.ran_version) for c in sent]
        assert attackers != shipped and not marker.exists(), "the attacker's script ran"
        assert login.can_login(login.current_password())
    finally:
        restore_default(stack, name, shipped)
