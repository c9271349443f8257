"""Attacks through the secret, end to end (docs/THREAT-MODEL.md): a principal that may write the
secret but not read it tries to make the rotation change an administrator's password, through
rotate-secret -> the function -> SSM -> the template's scripts -> the real databases.

Each attack must change nothing on the database, and the ones the function can see must not even
reach a host.
"""

from __future__ import annotations

import json

import pytest

from local.stack import LocalStack

from .helpers import Login, commands_for, make_login

KNOWN = "Known-To-The-Attacker-1"


def superuser(login: Login) -> str:
    return "postgres" if login.db.name == "postgres" else "root"


def put_pending(stack: LocalStack, login: Login, token: str, text: str) -> None:
    """The attacker's value for the rotation's version, written before createSecret runs."""
    stack.client("secretsmanager").put_secret_value(SecretId=login.arn, ClientRequestToken=token,
                                                    SecretString=text, VersionStages=["AWSPENDING"])


def refused_before_any_host(stack: LocalStack, login: Login, token: str, commands_before: int) -> list[str]:
    errors = []
    for step in ("createSecret", "setSecret", "testSecret"):
        r = stack.invoke(stack.rotation_event(step, login.arn, token))
        assert not r.ok, f"{step} accepted the attacker's version"
        assert r.error_type == "InvalidSecret", (step, r.error)
        errors.append(r.error_message)
    assert commands_for(stack, login.arn, commands_before) == [], "the attacker's version reached a host"
    return errors


@pytest.mark.chaos("Attacks: duplicate JSON members (end to end)")
def test_a_pending_version_with_duplicate_members_never_reaches_a_host(function: LocalStack, login: Login):
    stack = function
    token = stack.begin_rotation(login.arn)
    commands_before = len(stack.commands)
    value = login.value()
    text = json.dumps({**value, "password": "Innocent-Looking-1"})[:-1]
    text += ', "username": %s, "password": "%s"}' % (json.dumps(superuser(login)), KNOWN)
    put_pending(stack, login, token, text)
    errors = refused_before_any_host(stack, login, token, commands_before)
    assert all("duplicate member name" in e and KNOWN not in e for e in errors), errors
    assert not login.db.server.can_login(superuser(login), KNOWN)
    assert login.can_login(login.password)


@pytest.mark.chaos("Attacks: a pending version naming an administrator (end to end)")
def test_a_pending_version_naming_the_superuser_never_reaches_a_host(function: LocalStack, login: Login):
    stack = function
    token = stack.begin_rotation(login.arn)
    commands_before = len(stack.commands)
    put_pending(stack, login, token, json.dumps({**login.value(), "username": superuser(login), "password": KNOWN}))
    errors = refused_before_any_host(stack, login, token, commands_before)
    assert all("username" in e for e in errors), errors
    assert not login.db.server.can_login(superuser(login), KNOWN)
    assert login.can_login(login.password)


@pytest.mark.chaos("Attacks: AWSCURRENT rewritten to name an administrator (end to end)")
def test_awscurrent_naming_the_superuser_changes_no_password(function: LocalStack, db):
    """The writer moves AWSCURRENT itself to a version naming the superuser: the function cannot
    tell that from a real login, but every host refuses to change an administrator, for the new
    version and for the restore alike; the rotation stays pending and nothing changed."""
    stack = function
    victim = make_login(stack, db)
    value = {**victim.value(), "username": superuser(victim), "password": KNOWN}
    stack.client("secretsmanager").put_secret_value(SecretId=victim.arn, SecretString=json.dumps(value),
                                                    VersionStages=["AWSCURRENT"])
    commands_before = len(stack.commands)
    stack.client("secretsmanager").rotate_secret(SecretId=victim.arn)
    record = stack.wait_rotation(victim.arn)
    assert not record.ok, "the rotation of an administrator succeeded"
    stack.ssm.wait_idle(30)
    runs = [inv for c in commands_for(stack, victim.arn, commands_before) for inv in c.invocations.values()]
    assert runs and all(inv.response_code == 3 and "privileged" in inv.stderr for inv in runs), \
        [(inv.response_code, inv.stderr) for inv in runs]
    pending = stack.version_with(victim.arn, "AWSPENDING")
    assert pending is not None, "AWSPENDING was dropped although no host proved AWSCURRENT"
    new_password = victim.password_of(pending)
    for password in (KNOWN, new_password):
        assert not db.server.can_login(superuser(victim), password), "the superuser's password changed"
    assert victim.can_login(victim.password), "the application's own login changed"
