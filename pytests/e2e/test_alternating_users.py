"""End to end, the alternating-users strategy (the secret names `masterarn`): the real binary
through the Runtime API, the template's scripts on real PostgreSQL / MariaDB, a master secret with a
real administrator login. Each rotation sets a new password on the login that is not current, so
the one applications hold keeps working.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest

from local.stack import LocalStack

from .helpers import Login, assert_invariants, commands_for, describe_rotation, make_alternating_login, make_login, rotate


def reads_table(login: Login, username: str, password: str, table: str) -> bool:
    server = login.db.server
    name = table if login.db.name == "postgres" else f"{server.app_database}.{table}"
    out = server.login_sql(username, password, f"SELECT count(*) FROM {name}")
    return out is not None and out.strip() == "1"


@pytest.fixture
def alternating(function, db):
    """(login, table): a login of the alternating-users strategy with SELECT on `table`; the
    invariants of every scenario are checked after."""
    stack = function
    since = time.time()
    table = "items_" + secrets.token_hex(4)
    login = make_alternating_login(stack, db, table)
    try:
        yield login, table
    finally:
        stack.clear_faults()
    assert_invariants(stack, login, since)


def test_rotations_alternate_between_the_login_and_its_clone(function: LocalStack, alternating):
    stack = function
    login, table = alternating
    user, clone = login.username, login.username + "_clone"
    held = {user: login.password}          # the password each login holds on the database
    for expected in [clone, user, clone]:
        before = login.value()
        rec = rotate(stack, login.arn)
        assert rec.ok, describe_rotation(rec)
        after = login.value()
        assert after["username"] == expected, after["username"]
        assert after["masterarn"] == before["masterarn"]
        assert after["password"] != before["password"]
        held[expected] = after["password"]
        # The new login works and can use the granted table; the one applications held until now
        # still logs in with the password it had: it was not touched.
        assert reads_table(login, expected, after["password"], table), f"{expected} cannot use the table"
        assert login.db.server.can_login(before["username"], before["password"]), \
            f"{before['username']}, the login applications held, no longer logs in with its password"
    assert login.db.server.can_login(user, held[user]) and login.db.server.can_login(clone, held[clone])


def test_grants_follow_the_current_login(function: LocalStack, alternating):
    stack = function
    login, table = alternating
    assert rotate(stack, login.arn).ok                        # now the clone is current
    current = login.value()
    extra = "extra_" + secrets.token_hex(4)
    login.db.server.create_table(extra)
    login.db.server.grant("SELECT", extra, current["username"])  # the DBA grants the current login
    assert not reads_table(login, login.username, login.password, extra)
    rec = rotate(stack, login.arn)                             # back to the original login
    assert rec.ok, describe_rotation(rec)
    after = login.value()
    assert after["username"] == login.username
    assert reads_table(login, login.username, after["password"], extra), "the new grant did not reach the other login"
    assert reads_table(login, login.username, after["password"], table)


@pytest.mark.parametrize("masterarn", [
    "admin-secret",                                                                 # a name, not an ARN
    "arn:aws:iam::123456789012:role/admin",                                         # not a secret
])
def test_a_bad_masterarn_is_refused_before_any_command(function: LocalStack, db, masterarn):
    stack = function
    since = time.time()
    login = make_login(stack, db, extra={"masterarn": masterarn})
    commands_before = len(stack.commands)
    rec = rotate(stack, login.arn)
    assert not rec.ok
    failed = rec.failed_step
    assert failed.step == "createSecret" and failed.error_type == "InvalidSecret", describe_rotation(rec)
    assert "masterarn" in failed.error_message and "not the ARN of a secret" in failed.error_message
    assert commands_for(stack, login.arn, commands_before) == []
    assert login.value()["username"] == login.username and login.can_login(login.password)
    assert_invariants(stack, login, since)


def test_the_secrets_own_arn_as_masterarn_is_refused(function: LocalStack, db):
    stack = function
    since = time.time()
    login = make_login(stack, db)
    value = login.value()
    value["masterarn"] = login.arn
    stack.client("secretsmanager").put_secret_value(SecretId=login.arn, SecretString=json.dumps(value))
    rec = rotate(stack, login.arn)
    assert not rec.ok and rec.failed_step.step == "createSecret"
    assert "names the secret itself" in rec.failed_step.error_message
    assert login.can_login(login.password)
    assert_invariants(stack, login, since)
