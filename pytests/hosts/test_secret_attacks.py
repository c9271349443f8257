"""Attacks on the Linux host scripts through the secret and through concurrent commands, run as the
SSM agent would against real PostgreSQL and MariaDB (docs/THREAT-MODEL.md names each):

- a version whose JSON names `username` or `password` twice (the function's parser and the host's
  must not each keep a different one): refused, nothing changed;
- a late `set` of a version that is no longer AWSPENDING or AWSCURRENT (the rollback race):
  refused, nothing changed;
- two commands for one secret on one host: the second waits for the first's lock;
- alternating users: a version naming a login that is neither AWSCURRENT's nor its alternate.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from .support import expect_failure, expect_result


def logs_in(host, name: str, password: str) -> bool:
    out = host.server.login_sql(name, password, "SELECT 1")
    return out is not None and out.strip() == "1"


@pytest.mark.chaos("Attacks: duplicate JSON members (host parser)")
def waiting_on(lock_file) -> bool:
    """Whether a `flock` process waits on this lock file (the script's descriptor 9)."""
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "flock" and os.readlink(f"/proc/{pid}/fd/9") == str(lock_file):
                return True
        except OSError:
            continue
    return False


def test_duplicate_members_are_refused_before_anything_changes(host):
    victim_password, app_password = "Victim-Pass-12", "App-Pass-12"
    victim = host.new_login(victim_password)
    app = host.new_login(app_password)
    arn, _ = host.create_secret(host.secret_value(app, app_password))
    # What the function would validate and log is `app`; json.loads alone would keep the last ones.
    value = json.dumps(host.secret_value(app, "New-App-Pass-12"))[:-1]
    value += ', "username": %s, "password": "Known-To-Attacker-1"}' % json.dumps(victim)
    token = host.put_pending(arn, value)
    expect_failure(host.run("set", arn, token), 4, 'names the member "password" more than once')
    assert logs_in(host, victim, victim_password) and not logs_in(host, victim, "Known-To-Attacker-1")
    assert logs_in(host, app, app_password)


@pytest.mark.chaos("Attacks: duplicate JSON members (host parser)")
def test_an_escaped_duplicate_is_a_duplicate(host):
    app_password = "App-Pass-12"
    app = host.new_login(app_password)
    arn, _ = host.create_secret(host.secret_value(app, app_password))
    value = json.dumps(host.secret_value(app, "New-App-Pass-12"))[:-1] + ', "user\\u006eame": "root"}'
    token = host.put_pending(arn, value)
    expect_failure(host.run("set", arn, token), 4, 'names the member "username" more than once')
    assert logs_in(host, app, app_password)


@pytest.mark.chaos("Attacks: a late set of a version no label holds (host)")
def test_a_set_for_a_version_no_label_holds_changes_nothing(host):
    """The rollback race: copy A restored AWSCURRENT and removed AWSPENDING; copy B's set, sent
    before, runs now. It must not put the host on a password no label holds."""
    password = "Start-Pass-12"
    app = host.new_login(password)
    arn, current = host.create_secret(host.secret_value(app, password))
    token = host.put_pending(arn, host.secret_value(app, "Pending-Pass-12"))
    host.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    expect_failure(host.run("set", arn, token), 8, "neither AWSPENDING nor AWSCURRENT")
    assert logs_in(host, app, password) and not logs_in(host, app, "Pending-Pass-12")
    # A version with another label (AWSPREVIOUS) is as stale; AWSCURRENT itself may always be set
    # (the restore), and verify reads any version.
    host.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPREVIOUS", MoveToVersionId=token)
    expect_failure(host.run("set", arn, token), 8)
    expect_result(host.run("set", arn, current), "set", current, "unchanged")
    expect_failure(host.run("verify", arn, token), 5)


@pytest.mark.chaos("Attacks: two commands for one secret on one host")
def test_two_commands_for_one_secret_take_turns(host, tmp_path):
    password = "Start-Pass-12"
    app = host.new_login(password)
    arn, _ = host.create_secret(host.secret_value(app, password))
    token = host.put_pending(arn, host.secret_value(app, "Pending-Pass-12"))
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(mode=0o700)
    env = host.env(ROTATOR_LOCK_DIR=str(lock_dir))
    # Another command holds the lock: this one waits, and changes nothing until it is released.
    first = host.run("verify", arn, token, env=env)  # creates the lock file, and proves the path
    expect_failure(first, 5)
    (lock_file,) = lock_dir.iterdir()
    done = threading.Event()
    results = []
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        runner = threading.Thread(target=lambda: (results.append(host.run("set", arn, token, env=env)), done.set()))
        runner.start()
        deadline = time.monotonic() + 60
        while not done.is_set() and not waiting_on(lock_file) and time.monotonic() < deadline:
            time.sleep(0.05)
        waited = waiting_on(lock_file) and not done.is_set()
        still_old = logs_in(host, app, password)
        fcntl.flock(handle, fcntl.LOCK_UN)
    runner.join(120)
    assert waited and still_old, "the second command ran while the lock was held"
    expect_result(results[0], "set", token, "changed")
    assert logs_in(host, app, "Pending-Pass-12")


@pytest.mark.chaos("Attacks: a lock directory a local user could write")
@pytest.mark.parametrize("flaw", ["world-writable", "symlink"])
def test_a_lock_directory_others_could_write_is_refused(host, tmp_path, flaw):
    password = "Start-Pass-12"
    app = host.new_login(password)
    arn, _ = host.create_secret(host.secret_value(app, password))
    token = host.put_pending(arn, host.secret_value(app, "Pending-Pass-12"))
    lock_dir = tmp_path / "locks"
    if flaw == "world-writable":
        lock_dir.mkdir()
        os.chmod(lock_dir, 0o777)
    else:
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        lock_dir.symlink_to(tmp_path / "elsewhere")
    expect_failure(host.run("set", arn, token, env=host.env(ROTATOR_LOCK_DIR=str(lock_dir))), 6, "lock directory")
    assert logs_in(host, app, password)


def test_a_missing_lock_directory_is_made_for_this_user_alone(host, tmp_path):
    """A host's first run (/run/rotator is on a tmpfs: every boot is a first run) makes the lock
    directory itself, writable by nobody else, and rotates."""
    password = "Start-Pass-12"
    app = host.new_login(password)
    arn, _ = host.create_secret(host.secret_value(app, password))
    token = host.put_pending(arn, host.secret_value(app, "Pending-Pass-12"))
    lock_dir = tmp_path / "rotator"
    expect_result(host.run("set", arn, token, env=host.env(ROTATOR_LOCK_DIR=str(lock_dir))), "set", token, "changed")
    assert lock_dir.is_dir() and not lock_dir.is_symlink()
    assert lock_dir.stat().st_mode & 0o777 == 0o700
    assert len(list(lock_dir.iterdir())) == 1, "one lock file, for this secret"


@pytest.mark.chaos("Attacks: a version naming neither alternating login")
def test_alternating_users_refuse_a_login_that_is_not_the_alternate(host):
    admin, admin_password = "admin_" + uuid.uuid4().hex[:8], "Admin-Pass-" + uuid.uuid4().hex[:8]
    host.server.create_admin(admin, admin_password)
    master_arn, _ = host.create_secret({"engine": "postgres" if host.engine == "postgres" else "mariadb",
                                        "username": admin, "password": admin_password})
    app_password, other_password = "App-Pass-12", "Other-Pass-12"
    app = host.new_login(app_password)
    other = host.new_login(other_password)
    arn, _ = host.create_secret(host.secret_value(app, app_password, masterarn=master_arn))
    for name in (other, admin, app + "_clone_clone"):
        token = host.put_pending(arn, host.secret_value(name, "Known-To-Attacker-1", masterarn=master_arn))
        expect_failure(host.run("set", arn, token), 3, "neither")
        host.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    assert logs_in(host, other, other_password) and logs_in(host, admin, admin_password)
    assert not logs_in(host, app + "_clone_clone", "Known-To-Attacker-1")


@pytest.mark.chaos("Attacks: a version naming a login the stack does not rotate")
def test_the_pinned_login_is_the_only_one_a_set_may_change(host):
    """The document's Login parameter (the stack's LoginName) pins the login: a version naming any
    other, even an ordinary login, is refused before anything changes; the pinned one rotates."""
    app_password, other_password = "App-Pass-12", "Other-Pass-12"
    app = host.new_login(app_password)
    other = host.new_login(other_password)
    arn, current = host.create_secret(host.secret_value(app, app_password))

    def run(version: str):
        return host.run(None, None, None, parameters={"Action": ["set"], "SecretId": [arn], "VersionId": [version],
                                                     "Login": [app]})

    token = host.put_pending(arn, host.secret_value(other, "Known-To-Attacker-1"))
    expect_failure(run(token), 3, f"this stack rotates only '{app}'")
    assert logs_in(host, other, other_password) and not logs_in(host, other, "Known-To-Attacker-1")
    host.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    token = host.put_pending(arn, host.secret_value(app, "New-App-Pass-12"))
    expect_result(run(token), "set", token, "changed")
    assert logs_in(host, app, "New-App-Pass-12")


@pytest.mark.chaos("Attacks: a version naming a login the secret's RotatorLogin tag does not pin (shared layout)")
def test_in_a_fleet_the_secrets_login_tag_is_the_only_login_a_set_may_change(host):
    """The shared layout's documents pass Login=tag:RotatorLogin: the host reads the secret's tag
    itself (which only the secret's administrators may change) and refuses a version naming any other
    login, before anything changes; a secret without the tag changes nothing."""
    app_password, other_password = "App-Pass-12", "Other-Pass-12"
    app = host.new_login(app_password)
    other = host.new_login(other_password)
    arn, _ = host.create_secret(host.secret_value(app, app_password))
    host.sm.tag_resource(SecretId=arn, Tags=[{"Key": "RotatorFleet", "Value": "rotator"}, {"Key": "RotatorLogin", "Value": app}])

    def run(version: str):
        return host.run(None, None, None, parameters={"Action": ["set"], "SecretId": [arn], "VersionId": [version],
                                                     "Login": ["tag:RotatorLogin"]})

    # A writer of the secret's value (not its tags) names another application's ordinary login.
    token = host.put_pending(arn, host.secret_value(other, "Known-To-Attacker-1"))
    expect_failure(run(token), 3, f"this stack rotates only '{app}'")
    assert logs_in(host, other, other_password) and not logs_in(host, other, "Known-To-Attacker-1")
    host.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)

    token = host.put_pending(arn, host.secret_value(app, "New-App-Pass-12"))
    expect_result(run(token), "set", token, "changed")
    assert logs_in(host, app, "New-App-Pass-12")

    host.sm.untag_resource(SecretId=arn, TagKeys=["RotatorLogin"])
    expect_failure(run(token), 3, "carries no RotatorLogin tag")
