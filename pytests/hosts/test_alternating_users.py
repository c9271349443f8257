"""The alternating-users strategy of the PostgreSQL and MySQL/MariaDB documents, run as the SSM
agent would against real databases: a version naming the login that is not AWSCURRENT's gets it
created (if missing) by the administrator of the master secret, with the grants of AWSCURRENT's
login, then its password. The contract is docs/host-contract.md.
"""

from __future__ import annotations

import json
import uuid

import pytest

from .support import expect_failure, expect_result
from .test_linux_scripts import failing_helper_env

TABLE_QUERY = "SELECT count(*) FROM {table}"


def qualified(host, table: str) -> str:
    return table if host.engine == "postgres" else f"{host.server.app_database}.{table}"


def can_read(host, name: str, password: str, table: str) -> bool:
    out = host.server.login_sql(name, password, TABLE_QUERY.format(table=qualified(host, table)))
    return out is not None and out.strip() == "1"


@pytest.fixture
def pair(host):
    """An application login `app_…` holding AWSCURRENT with SELECT on a table, a master secret with
    a real administrator login, and the secret's ARN: (host, arn, app, app password, table, master arn)."""
    admin, admin_password = "admin_" + uuid.uuid4().hex[:8], "Admin-Pass-" + uuid.uuid4().hex[:8]
    host.server.create_admin(admin, admin_password)
    master_arn, _ = host.create_secret({"engine": "postgres" if host.engine == "postgres" else "mariadb",
                                        "username": admin, "password": admin_password})
    app_password = "App-Pass-" + uuid.uuid4().hex[:8]
    app = host.new_login(app_password)
    table = "items_" + uuid.uuid4().hex[:8]
    host.server.create_table(table)
    host.server.grant("SELECT", table, app)
    arn, _ = host.create_secret(host.secret_value(app, app_password, masterarn=master_arn))
    return host, arn, app, app_password, table, master_arn


def test_set_creates_the_clone_with_the_partners_grants_and_leaves_the_partner_alone(pair):
    host, arn, app, app_password, table, master_arn = pair
    clone_password = "Clone-Pass-1"
    pending = host.put_pending(arn, host.secret_value(app + "_clone", clone_password, masterarn=master_arn))

    expect_result(host.run("set", arn, pending, watch=True), "set", pending, "changed")
    assert host.server.login_exists(app + "_clone")
    assert can_read(host, app + "_clone", clone_password, table), "the clone cannot use the partner's table"
    assert can_read(host, app, app_password, table), "the login applications hold was changed"
    expect_result(host.run("verify", arn, pending), "verify", pending, "verified")
    # Set again (Secrets Manager retries): nothing left to do.
    expect_result(host.run("set", arn, pending), "set", pending, "unchanged")
    assert can_read(host, app + "_clone", clone_password, table)
    # No clear-text password reached the server's statement log.
    log = host.server.server_log() if host.engine == "postgres" else host.server.general_log()
    assert clone_password not in log


def test_each_set_copies_the_grants_again_both_ways(pair):
    host, arn, app, app_password, table, master_arn = pair
    clone = app + "_clone"
    first = host.put_pending(arn, host.secret_value(clone, "Clone-Pass-2", masterarn=master_arn))
    expect_result(host.run("set", arn, first), "set", first, "changed")

    # The DBA grants something new to the login applications hold, and takes something away.
    extra = "extra_" + uuid.uuid4().hex[:8]
    host.server.create_table(extra)
    host.server.grant("SELECT", extra, app)
    assert not can_read(host, clone, "Clone-Pass-2", extra)
    second = host.put_pending(arn, host.secret_value(clone, "Clone-Pass-3", masterarn=master_arn))
    expect_result(host.run("set", arn, second), "set", second, "changed")
    assert can_read(host, clone, "Clone-Pass-3", extra), "a grant added to the partner did not reach the clone"
    assert can_read(host, clone, "Clone-Pass-3", table)

    # Now the clone is current: a version naming the original login copies the clone's grants
    # back (the clone got a new one, and lost one).
    host.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(
        host.secret_value(clone, "Clone-Pass-3", masterarn=master_arn)), VersionStages=["AWSCURRENT"])
    newer = "newer_" + uuid.uuid4().hex[:8]
    host.server.create_table(newer)
    host.server.grant("SELECT", newer, clone)
    revoke = f"REVOKE SELECT ON {qualified(host, extra)} FROM " + (
        f'"{clone}"' if host.engine == "postgres" else f"'{clone}'@'%'")
    host.server.admin_sql(revoke + ";\n")
    back = host.put_pending(arn, host.secret_value(app, "App-Pass-New", masterarn=master_arn))
    expect_result(host.run("set", arn, back), "set", back, "changed")
    assert can_read(host, app, "App-Pass-New", newer), "a grant of the current clone did not reach the original login"
    assert not can_read(host, app, "App-Pass-New", extra), "a grant the partner lost stayed on the login"
    assert can_read(host, app, "App-Pass-New", table)
    assert can_read(host, clone, "Clone-Pass-3", newer), "the login applications hold was changed"


# The clone's steps as the master, each guarded like those of a single user's set
# (test_linux_scripts.py): one failing ends the run with exit 6 naming it, the partner untouched.
@pytest.mark.parametrize("host, command, message", [
    ("postgres", "create-sql", "the login '{clone}' could not be created"),
    ("postgres", "extra-rights-sql", "the rights of '{clone}' outside database"),
    ("postgres", "copy-grants-sql", "the grants of '{app}' could not be copied to '{clone}'"),
    ("mysql", "create-sql", "the login '{clone}' could not be created"),
    ("mysql", "grants-sql", "the grants of '{app}' could not be read"),
    ("mysql", "copy-grants-sql", "the grants of '{app}' could not be copied to '{clone}'"),
], indirect=["host"])
def test_a_failing_step_of_the_clones_set_exits_6_naming_it(pair, tmp_path, command, message):
    host, arn, app, app_password, table, master_arn = pair
    clone = app + "_clone"
    pending = host.put_pending(arn, host.secret_value(clone, "Clone-Pass-9", masterarn=master_arn))
    result = host.run("set", arn, pending, env=failing_helper_env(host, tmp_path, command))
    expect_failure(result, 6, message.format(app=app, clone=clone))
    assert can_read(host, app, app_password, table), "the partner was changed"


def test_a_restore_of_awscurrent_changes_no_grants(pair):
    # A rollback runs `set` for AWSCURRENT's own version: its login is the reference, never a copy.
    host, arn, app, app_password, table, master_arn = pair
    current = host.sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
    current_id = next(v for v, s in current.items() if "AWSCURRENT" in s)
    expect_result(host.run("set", arn, current_id), "set", current_id, "unchanged")
    assert not host.server.login_exists(app + "_clone")
    assert can_read(host, app, app_password, table)


def test_a_missing_partner_is_an_error_and_nothing_is_created(pair):
    host, arn, app, app_password, table, master_arn = pair
    ghost = "ghost_" + uuid.uuid4().hex[:8]
    host.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(
        host.secret_value(ghost, "Ghost-Pass-1", masterarn=master_arn)), VersionStages=["AWSCURRENT"])
    pending = host.put_pending(arn, host.secret_value(ghost + "_clone", "Clone-Pass-4", masterarn=master_arn))
    expect_failure(host.run("set", arn, pending), 3, "no grants to copy")
    assert not host.server.login_exists(ghost + "_clone")


def test_a_wrong_master_password_fails_without_touching_anything(pair):
    host, arn, app, app_password, table, master_arn = pair
    admin = json.loads(host.sm.get_secret_value(SecretId=master_arn)["SecretString"])["username"]
    wrong_master, _ = host.create_secret({"username": admin, "password": "Wrong-Master-1"})
    pending = host.put_pending(arn, host.secret_value(app + "_clone", "Clone-Pass-5", masterarn=wrong_master))
    expect_failure(host.run("set", arn, pending), 6, "could not be administered as the master login")
    assert not host.server.login_exists(app + "_clone")


@pytest.mark.parametrize("masterarn, code, fragment", [
    ("not-an-arn", 4, "'masterarn' is not the ARN of a secret"),
    ("arn:aws:secretsmanager:us-east-1:123456789012:secret:rotator/test/missing", 4, "the master secret cannot be read"),
])
def test_a_bad_master_secret_is_refused(pair, masterarn, code, fragment):
    host, arn, app, app_password, table, _ = pair
    pending = host.put_pending(arn, host.secret_value(app + "_clone", "Clone-Pass-6", masterarn=masterarn))
    expect_failure(host.run("set", arn, pending), code, fragment)
    assert not host.server.login_exists(app + "_clone")


def _current(host, arn: str, username: str, password: str, master_arn: str) -> str:
    """A new AWSCURRENT version naming `username` (what a rollback restores); returns its VersionId."""
    return host.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(
        host.secret_value(username, password, masterarn=master_arn)), VersionStages=["AWSCURRENT"])["VersionId"]


def test_a_clone_that_still_cannot_log_in_after_the_change_exits_5(pair):
    """The change succeeds but the clone still cannot log in (NOLOGIN, a locked account): only the
    verify after the change can tell, and the step must fail, not claim outcome=changed."""
    host, arn, app, app_password, table, master_arn = pair
    clone = app + "_clone"
    first = host.put_pending(arn, host.secret_value(clone, "Clone-Pass-7", masterarn=master_arn))
    expect_result(host.run("set", arn, first), "set", first, "changed")
    host.server.admin_sql(f'ALTER ROLE "{clone}" NOLOGIN;\n' if host.engine == "postgres"
                          else f"ALTER USER '{clone}'@'%' ACCOUNT LOCK;\n")
    host.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=first)
    second = host.put_pending(arn, host.secret_value(clone, "Clone-Pass-8", masterarn=master_arn))
    expect_failure(host.run("set", arn, second), 5, "refused")


def test_a_restore_naming_a_missing_login_exits_3(pair):
    """A rollback to an AWSCURRENT whose login was dropped: nothing to copy from, nothing to change."""
    host, arn, app, app_password, table, master_arn = pair
    ghost = "ghost_" + uuid.uuid4().hex[:8]
    current = _current(host, arn, ghost, "Ghost-Pass-2", master_arn)
    expect_failure(host.run("set", arn, current), 3, f"the login '{ghost}' does not exist")
    assert not host.server.login_exists(ghost)


def test_a_restore_naming_an_administrator_is_refused(pair):
    """An AWSCURRENT written to name an administrator (whoever may write the secret may write that
    stage too): the master must not be made to change that administrator's password."""
    host, arn, app, app_password, table, master_arn = pair
    boss, boss_password = "boss_" + uuid.uuid4().hex[:8], "Boss-Pass-" + uuid.uuid4().hex[:8]
    host.server.create_admin(boss, boss_password)
    current = _current(host, arn, boss, "Known-To-Attacker-2", master_arn)
    expect_failure(host.run("set", arn, current), 3, f"the login '{boss}' is privileged")
    assert host.server.can_login(boss, boss_password)


@pytest.mark.parametrize("host", ["postgres"], indirect=True)
def test_nothing_is_copied_when_the_server_does_not_check_passwords(pair):
    """With `trust` on 127.0.0.1 nothing can be verified: a set for an existing clone stops before
    it copies any grant or changes any password, not after."""
    host, arn, app, app_password, table, master_arn = pair
    clone = app + "_clone"
    first = host.put_pending(arn, host.secret_value(clone, "Clone-Pass-9", masterarn=master_arn))
    expect_result(host.run("set", arn, first), "set", first, "changed")
    host.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=first)
    extra = "extra_" + uuid.uuid4().hex[:8]
    host.server.create_table(extra)
    host.server.grant("SELECT", extra, app)
    second = host.put_pending(arn, host.secret_value(clone, "Clone-Pass-10", masterarn=master_arn))
    hba = host.server.datadir / "pg_hba.conf"
    original = hba.read_text()
    try:
        hba.write_text(original.replace("127.0.0.1/32 scram-sha-256", "127.0.0.1/32 trust"))
        host.server.reload()
        expect_failure(host.run("set", arn, second), 6, "does not check passwords")
    finally:
        hba.write_text(original)
        host.server.reload()
    assert can_read(host, clone, "Clone-Pass-9", table)
    assert not can_read(host, clone, "Clone-Pass-9", extra), "grants were copied although nothing could be verified"
