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

from .support import expect_failure, expect_result, stand_in_tool


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


START_PASSWORD = "Start-Pass-12"


def locked_rotation(host, tmp_path, **env: str):
    """A login at START_PASSWORD with a pending version, and the environment of a host whose lock
    directory is the test's own, its lock file made (by a verify, which also proves the path):
    (login, secret ARN, pending version, environment, lock file)."""
    app = host.new_login(START_PASSWORD)
    arn, _ = host.create_secret(host.secret_value(app, START_PASSWORD))
    token = host.put_pending(arn, host.secret_value(app, "Pending-Pass-12"))
    lock_dir = tmp_path / "locks"
    lock_dir.mkdir(mode=0o700)
    env = host.env(ROTATOR_LOCK_DIR=str(lock_dir), **env)
    expect_failure(host.run("verify", arn, token, env=env), 5)
    (lock_file,) = lock_dir.iterdir()
    return app, arn, token, env, lock_file


@pytest.mark.chaos("Attacks: two commands for one secret on one host")
def test_two_commands_for_one_secret_take_turns(host, tmp_path):
    app, arn, token, env, lock_file = locked_rotation(host, tmp_path)
    # Another command holds the lock: this one waits, and changes nothing until it is released.
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
        still_old = logs_in(host, app, START_PASSWORD)
        fcntl.flock(handle, fcntl.LOCK_UN)
    runner.join(120)
    assert waited and still_old, "the second command ran while the lock was held"
    expect_result(results[0], "set", token, "changed")
    assert logs_in(host, app, "Pending-Pass-12")


def test_a_command_that_cannot_take_the_lock_in_time_changes_nothing(host, tmp_path):
    """Another command holds the secret's lock past the wait (100 s on a host; ROTATOR_LOCK_WAIT_SECONDS
    shortens it here): this one fails with exit 6 and changes nothing, instead of going ahead unlocked."""
    app, arn, token, env, lock_file = locked_rotation(host, tmp_path, ROTATOR_LOCK_WAIT_SECONDS="1")
    with open(lock_file, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        expect_failure(host.run("set", arn, token, env=env), 6, "held the host's lock for 1 s")
    assert logs_in(host, app, START_PASSWORD) and not logs_in(host, app, "Pending-Pass-12")


@pytest.mark.parametrize("wait", ["0", "101", "1e3", "-1", " 5"])
def test_a_lock_wait_that_is_not_1_to_100_seconds_is_refused(host, tmp_path, wait):
    """The test-only setting cannot make a host wait longer than it would, nor not at all."""
    app, arn, token, env, _ = locked_rotation(host, tmp_path)
    expect_failure(host.run("set", arn, token, env=dict(env, ROTATOR_LOCK_WAIT_SECONDS=wait)), 6, "ROTATOR_LOCK_WAIT_SECONDS")
    assert logs_in(host, app, START_PASSWORD)


@pytest.mark.chaos("Attacks: a lock directory a local user could write")
@pytest.mark.parametrize("flaw", ["world-writable", "symlink", "another user's", "a file"])
def test_a_lock_directory_others_could_write_is_refused(host, tmp_path, flaw):
    password = "Start-Pass-12"
    app = host.new_login(password)
    arn, _ = host.create_secret(host.secret_value(app, password))
    token = host.put_pending(arn, host.secret_value(app, "Pending-Pass-12"))
    lock_dir = tmp_path / "locks"
    if flaw == "world-writable":
        lock_dir.mkdir()
        os.chmod(lock_dir, 0o777)
    elif flaw == "symlink":
        (tmp_path / "elsewhere").mkdir(mode=0o700)
        lock_dir.symlink_to(tmp_path / "elsewhere")
    elif flaw == "another user's":
        # Not writable by others, but its owner may replace the lock files (the tests run as root,
        # as the agent does: nobody's directory is another user's).
        lock_dir.mkdir(mode=0o755)
        os.chown(lock_dir, 65534, 65534)
    else:
        lock_dir.write_text("")
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


APP_PASSWORD, OTHER_PASSWORD = "App-Pass-12", "Other-Pass-12"


def assert_only_the_pinned_login_changes(host, run, arn: str, app: str, other: str) -> str:
    """A version naming `other` is refused before anything changes (its password stays
    OTHER_PASSWORD); then a version naming the pinned `app` rotates it. Returns that version."""
    token = host.put_pending(arn, host.secret_value(other, "Known-To-Attacker-1"))
    expect_failure(run(token), 3, f"this stack rotates only '{app}'")
    assert logs_in(host, other, OTHER_PASSWORD) and not logs_in(host, other, "Known-To-Attacker-1")
    host.sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=token)
    token = host.put_pending(arn, host.secret_value(app, "New-App-Pass-12"))
    expect_result(run(token), "set", token, "changed")
    assert logs_in(host, app, "New-App-Pass-12")
    return token


@pytest.mark.chaos("Attacks: a version naming a login the stack does not rotate")
def test_the_pinned_login_is_the_only_one_a_set_may_change(host):
    """The document's Login parameter (the stack's LoginName) pins the login: a version naming any
    other, even an ordinary login, is refused before anything changes; the pinned one rotates."""
    app = host.new_login(APP_PASSWORD)
    other = host.new_login(OTHER_PASSWORD)
    arn, _ = host.create_secret(host.secret_value(app, APP_PASSWORD))

    def run(version: str):
        return host.run(None, None, None, parameters={"Action": ["set"], "SecretId": [arn], "VersionId": [version],
                                                     "Login": [app]})

    assert_only_the_pinned_login_changes(host, run, arn, app, other)



def enrolment_file(tmp_path, *entries: str) -> Path:
    """A host's enrolment file (its owner's list of secret -> login [-> master]) holding `entries`,
    in a directory only this user may write."""
    directory = tmp_path / "rotator"
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = directory / "enrolled"
    path.write_text("".join(entry + "\n" for entry in entries))
    path.chmod(0o600)
    return path


def fleet_set(host, arn: str, version: str, enrolled: Path):
    """A set through the shared layout's documents (Login=tag:RotatorLogin) on a host whose
    enrolment file is `enrolled`."""
    return host.run(None, None, None, env=host.env(ROTATOR_ENROLLED_FILE=str(enrolled)),
                    parameters={"Action": ["set"], "SecretId": [arn], "VersionId": [version], "Login": ["tag:RotatorLogin"]})


def tag_for_the_fleet(host, arn: str, login: str) -> None:
    host.sm.tag_resource(SecretId=arn, Tags=[{"Key": "RotatorFleet", "Value": "rotator"}, {"Key": "RotatorLogin", "Value": login}])


def test_in_a_fleet_tags_that_cannot_be_read_change_nothing(host, tmp_path):
    """The host cannot read the secret's tags (DescribeSecret refused, here by a stand-in CLI that
    refuses that call alone): the set stops with the CLI's error (exit 4), not as a secret without
    the tag, and the login keeps its password."""
    app = host.new_login(APP_PASSWORD)
    arn, _ = host.create_secret(host.secret_value(app, APP_PASSWORD))
    tag_for_the_fleet(host, arn, app)
    token = host.put_pending(arn, host.secret_value(app, "Pending-Pass-T1"))
    env = stand_in_tool(host.env(ROTATOR_ENROLLED_FILE=str(enrolment_file(tmp_path, f"{arn} {app}"))), tmp_path / "bin",
                        "aws", "if [ \"$2\" = describe-secret ]; then\n"
                        "  echo 'An error occurred (AccessDeniedException) when calling the DescribeSecret operation: denied' >&2\n"
                        '  exit 254\nfi\nexec "$real" "$@"\n')
    result = host.run(None, None, None, env=env, parameters={
        "Action": ["set"], "SecretId": [arn], "VersionId": [token], "Login": ["tag:RotatorLogin"]})
    expect_failure(result, 4)
    assert result.stderr == ("rotator: the secret's tags cannot be read: An error occurred (AccessDeniedException) "
                             "when calling the DescribeSecret operation: denied\n")
    assert logs_in(host, app, APP_PASSWORD)


@pytest.mark.chaos("Attacks: a version naming a login the secret's RotatorLogin tag does not pin (shared layout)")
def test_in_a_fleet_the_secrets_login_tag_is_the_only_login_a_set_may_change(host, tmp_path):
    """The shared layout's documents pass Login=tag:RotatorLogin: the host reads the secret's tag
    itself (which only the secret's administrators may change) and refuses a version naming any other
    login, before anything changes; a secret without the tag changes nothing."""
    app = host.new_login(APP_PASSWORD)
    other = host.new_login(OTHER_PASSWORD)
    arn, _ = host.create_secret(host.secret_value(app, APP_PASSWORD))
    tag_for_the_fleet(host, arn, app)
    enrolled = enrolment_file(tmp_path, f"{arn} {app}")

    def run(version: str):
        return fleet_set(host, arn, version, enrolled)

    # A writer of the secret's value (not its tags) names another application's ordinary login.
    token = assert_only_the_pinned_login_changes(host, run, arn, app, other)

    host.sm.untag_resource(SecretId=arn, TagKeys=["RotatorLogin"])
    expect_failure(run(token), 3, "carries no RotatorLogin tag")


@pytest.mark.chaos("Attacks: a secret's owner chooses another team's login by its tags (shared layout)")
def test_in_a_fleet_a_secret_changes_only_the_login_the_hosts_owner_enrolled_it_for(host, tmp_path):
    """Whoever can create a secret under the fleet's prefix chooses its tags: its RotatorLogin names
    another team's ordinary login and its version agrees, so every pin of the secret's own passes.
    The host's owner did not list that secret for that login: refused (exit 3), nothing changed."""
    victim_password, own_password = "Victim-Pass-12", "Own-Pass-12"
    victim = host.new_login(victim_password)
    own = host.new_login(own_password)
    victims_secret, _ = host.create_secret(host.secret_value(victim, victim_password))
    arn, _ = host.create_secret(host.secret_value(victim, victim_password))
    tag_for_the_fleet(host, arn, victim)
    token = host.put_pending(arn, host.secret_value(victim, "Known-To-Attacker-1"))
    # The host lists the victim's own secret for the victim, and the attacker's for nothing.
    enrolled = enrolment_file(tmp_path, f"{victims_secret} {victim}")
    expect_failure(fleet_set(host, arn, token, enrolled), 3, "does not list the secret")
    # The host lists the attacker's secret, for the attacker's own login: the tag is not the listed login.
    enrolled = enrolment_file(tmp_path, f"{victims_secret} {victim}", f"{arn} {own}")
    expect_failure(fleet_set(host, arn, token, enrolled), 3, f"lets the secret change only '{own}'")
    assert logs_in(host, victim, victim_password) and not logs_in(host, victim, "Known-To-Attacker-1")


@pytest.mark.chaos("Attacks: a secret borrows another team's master secret (shared layout)")
def test_in_a_fleet_a_secret_uses_only_the_master_the_hosts_owner_enrolled_it_with(host, tmp_path):
    """An enrolled secret's version names a master secret the shared host role can read (another
    team's) and its login's _clone: the host would create a clone the attacker knows the password of.
    The host's owner listed the secret without a master: refused (exit 3), no clone."""
    admin, admin_password = "admin_" + uuid.uuid4().hex[:8], "Admin-Pass-" + uuid.uuid4().hex[:8]
    host.server.create_admin(admin, admin_password)
    master_arn, _ = host.create_secret({"engine": "postgres" if host.engine == "postgres" else "mariadb",
                                        "username": admin, "password": admin_password})
    app_password = "App-Pass-12"
    app = host.new_login(app_password)
    arn, _ = host.create_secret(host.secret_value(app, app_password))
    tag_for_the_fleet(host, arn, app)
    token = host.put_pending(arn, host.secret_value(app + "_clone", "Known-To-Attacker-1", masterarn=master_arn))
    enrolled = enrolment_file(tmp_path, f"{arn} {app}")
    expect_failure(fleet_set(host, arn, token, enrolled), 3, f"the master secret '{master_arn}'")
    assert not host.server.login_exists(app + "_clone") and logs_in(host, app, app_password)


@pytest.mark.chaos("Attacks: a document version whose Login pins nothing, on a fleet host (shared layout)")
def test_a_document_whose_login_pins_nothing_does_not_switch_off_the_hosts_enrolment_file(host, tmp_path):
    """Whoever may publish the documents (D) makes a version whose Login is empty (the document check
    ignores its default) and empties the function's LOGIN_TAG: no pin reaches the host. A host with an
    enrolment file still changes only what it lists (threat 38)."""
    victim_password, app_password = "Victim-Pass-12", "App-Pass-12"
    victim = host.new_login(victim_password)
    app = host.new_login(app_password)
    listed, _ = host.create_secret(host.secret_value(app, app_password))
    arn, _ = host.create_secret(host.secret_value(victim, victim_password))
    token = host.put_pending(arn, host.secret_value(victim, "Known-To-Attacker-1"))
    enrolled = enrolment_file(tmp_path, f"{listed} {app}")

    def run(secret: str, version: str):
        return host.run(None, None, None, env=host.env(ROTATOR_ENROLLED_FILE=str(enrolled)),
                        parameters={"Action": ["set"], "SecretId": [secret], "VersionId": [version], "Login": [""]})

    expect_failure(run(arn, token), 3, "does not list the secret")
    assert logs_in(host, victim, victim_password) and not logs_in(host, victim, "Known-To-Attacker-1")
    # What the file lists still rotates through such a document.
    pending = host.put_pending(listed, host.secret_value(app, "New-App-Pass-12"))
    expect_result(run(listed, pending), "set", pending, "changed")


def test_an_enrolment_file_that_can_be_read_two_ways_or_written_by_others_authorises_nothing(make_host, tmp_path):
    """The enrolment file is parsed strictly and trusted only as the lock directory is: each flaw
    below refuses (exit 3) a set the same file without the flaw allows."""
    host = make_host("postgres")
    app_password = "App-Pass-12"
    app = host.new_login(app_password)
    arn, _ = host.create_secret(host.secret_value(app, app_password))
    tag_for_the_fleet(host, arn, app)
    token = host.put_pending(arn, host.secret_value(app, "New-App-Pass-12"))
    entry = f"{arn} {app}"
    partial = arn[:-7]  # the name without Secrets Manager's suffix: a later secret of that name could match
    flawed = {"a duplicate": (entry, entry), "a tab": (f"{arn}\t{app}",), "a trailing space": (entry + " ",),
              "a carriage return": (entry + "\r",), "non-ASCII": (entry.replace(app, app + "\u00e9"),),
              "a partial ARN": (f"{partial} {app}",), "a fourth field": (f"{entry} {arn} x",)}
    for flaw, entries in flawed.items():
        result = fleet_set(host, arn, token, enrolment_file(tmp_path / flaw.replace(" ", "-"), *entries))
        assert result.status == "Failed" and result.response_code == 3, (flaw, result)
    writable = enrolment_file(tmp_path / "writable", entry)
    writable.chmod(0o620)
    expect_failure(fleet_set(host, arn, token, writable), 3, "only this user may write")
    open_directory = enrolment_file(tmp_path / "open-directory", entry)
    open_directory.parent.chmod(0o777)
    expect_failure(fleet_set(host, arn, token, open_directory), 3, "only this user may write")
    linked = tmp_path / "linked" / "rotator"
    linked.mkdir(parents=True, mode=0o700)
    (linked / "enrolled").symlink_to(enrolment_file(tmp_path / "target", entry))
    expect_failure(fleet_set(host, arn, token, linked / "enrolled"), 3, "cannot be read")
    expect_failure(fleet_set(host, arn, token, tmp_path / "absent" / "enrolled"), 3, "cannot be read")
    assert logs_in(host, app, app_password)
    # The same entry, in a file only this user may write: the set goes through.
    good = enrolment_file(tmp_path / "good", "# the orders team's database", "", entry)
    expect_result(fleet_set(host, arn, token, good), "set", token, "changed")
