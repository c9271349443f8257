"""The PostgreSQL and MySQL/MariaDB documents' scripts, exactly as in template.yaml, run as the
SSM agent would (sh, SSM_<Name> variables, minimal environment) against real databases and a
moto Secrets Manager, without the Lambda function. The contract is docs/host-contract.md.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import string
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from local.databases import free_port
from local.ssm_runner import InvalidParameters, shell_script, validate_parameters

from .support import expect_failure, expect_result

# Every character a generated password may contain, per the brief of the function.
PASSWORD_ALPHABET = string.ascii_letters + string.digits + "!#%*+,-.:=?@[]^_{}~"
# Every printable ASCII character, including those AWS's generator can emit and shells hate.
PRINTABLE = "".join(chr(c) for c in range(0x21, 0x7F)) + " tail"


def test_scripts_pass_shellcheck(documents, tmp_path):
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    for name in ("PostgresRotationDocument", "MySQLRotationDocument"):
        path = tmp_path / f"{name}.sh"
        path.write_text(shell_script(documents[name]))
        proc = subprocess.run(["shellcheck", "-s", "bash", str(path)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{name}:\n{proc.stdout}{proc.stderr}"


def test_scripts_start_with_posix_guard_then_bash(documents):
    for name in ("PostgresRotationDocument", "MySQLRotationDocument"):
        lines = [line for line in shell_script(documents[name]).splitlines() if line and not line.startswith("#")]
        assert lines[0].startswith('[ -n "${BASH_VERSION:-}" ] ||') and 'exec bash "$0" "$@"' in lines[0]
        assert "set -Eeuo pipefail" in lines[:4]
        assert "{{" not in shell_script(documents[name]), "no {{ }} interpolation: parameters are ENV_VAR"


def test_runner_uses_a_posix_sh_here():
    # The guard is exercised for real only when sh is not bash (Debian: dash).
    assert Path(os.path.realpath(shutil.which("sh"))).name in {"dash", "bash", "busybox"}


# ---- verify ------------------------------------------------------------------------------


def test_verify_accepts_the_current_password(host):
    user = host.new_login("Current-Pass-1")
    arn, current = host.create_secret(host.secret_value(user, "Current-Pass-1"))
    expect_result(host.run("verify", arn, current), "verify", current, "verified")


def test_verify_reports_a_refused_password(host):
    user = host.new_login("Current-Pass-2")
    arn, current = host.create_secret(host.secret_value(user, "Current-Pass-2"))
    pending = host.put_pending(arn, host.secret_value(user, "Pending-Pass-2"))
    result = host.run("verify", arn, pending)
    expect_failure(result, 5, "refused")
    assert host.server.can_login(user, "Current-Pass-2")


def failed_logins(host, user: str) -> int:
    """How many logins as `user` the server refused, from its own log."""
    if host.engine == "postgres":
        return host.server.server_log().count(f'password authentication failed for user "{user}"')
    return host.server.general_log().count(f"Access denied for user '{user}'@")


def test_a_refused_password_is_tried_once(host):
    """verify logs in with a wrong password (the probe that the server checks passwords) only after
    the secret's was accepted: after a refusal, one more failed login would count against the login
    where failed logins lock it (MariaDB's max_password_errors, PostgreSQL's credcheck)."""
    user = host.new_login("Current-Pass-20")
    arn, _ = host.create_secret(host.secret_value(user, "Current-Pass-20"))
    pending = host.put_pending(arn, host.secret_value(user, "Pending-Pass-20"))
    expect_failure(host.run("verify", arn, pending), 5, "refused")
    assert failed_logins(host, user) == 1


def test_verify_of_an_unreachable_database_exits_6(host):
    arn, current = host.create_secret(host.secret_value("nobody", "Whatever-1", port=_closed_port()))
    expect_failure(host.run("verify", arn, current), 6, "not reachable")


# ---- set ---------------------------------------------------------------------------------


def test_set_changes_the_password_then_is_idempotent(host):
    old, new = "Old-Pass-3", "New-Pass-3"
    user = host.new_login(old)
    arn, _ = host.create_secret(host.secret_value(user, old))
    pending = host.put_pending(arn, host.secret_value(user, new))

    result = host.run("set", arn, pending, watch=True)
    expect_result(result, "set", pending, "changed")
    assert not host.server.can_login(user, old)
    assert host.server.can_login(user, new)

    # Secrets Manager retries steps: the same set again changes nothing.
    expect_result(host.run("set", arn, pending), "set", pending, "unchanged")
    expect_result(host.run("verify", arn, pending), "verify", pending, "verified")
    assert host.server.can_login(user, new)


def test_sets_of_one_login_at_the_same_time_all_succeed(host):
    """Two copies of a step (Lambda may run both), or a rollback racing a set: concurrent changes
    of one login's password must not fail each other (PostgreSQL: "tuple concurrently updated")."""
    user = host.new_login("Old-Pass-3c")
    arn, _ = host.create_secret(host.secret_value(user, "Old-Pass-3c"))
    pending = host.put_pending(arn, host.secret_value(user, "New-Pass-3c"))
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: host.run("set", arn, pending), range(4)))
    for result in results:
        assert result.status == "Success", result.stderr
        assert result.stdout.split()[-1] in ("outcome=changed", "outcome=unchanged"), result.stdout
    assert host.server.can_login(user, "New-Pass-3c")


def test_set_with_every_password_character(host):
    user = host.new_login("Start-Pass-4")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-4"))
    pending = host.put_pending(arn, host.secret_value(user, PASSWORD_ALPHABET))
    expect_result(host.run("set", arn, pending, watch=True), "set", pending, "changed")
    assert host.server.can_login(user, PASSWORD_ALPHABET)
    expect_result(host.run("verify", arn, pending), "verify", pending, "verified")


def test_set_with_every_printable_ascii_character(host):
    # Beyond what the function generates: quotes, backslash, $, backtick, ;|&()<> and spaces.
    user = host.new_login("Start-Pass-5")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-5"))
    pending = host.put_pending(arn, host.secret_value(user, PRINTABLE))
    expect_result(host.run("set", arn, pending), "set", pending, "changed")
    assert host.server.can_login(user, PRINTABLE)
    expect_result(host.run("set", arn, pending), "set", pending, "unchanged")


def test_set_with_a_non_ascii_password(host):
    # U+00A0 and the "fi" ligature change under SASLprep (RFC 4013), which libpq applies before
    # hashing: the host's SCRAM verifier must do the same or the login fails.
    password = "p\u00e4ss\u00a0w\u00f6rd-\ufb01x-\u00df"
    user = host.new_login("Start-Pass-6")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-6"))
    pending = host.put_pending(arn, host.secret_value(user, password))
    expect_result(host.run("set", arn, pending), "set", pending, "changed")
    assert host.server.can_login(user, password)


def test_set_for_a_missing_login_exits_3_and_creates_nothing(host):
    user = "ghost_" + os.urandom(5).hex()
    arn, current = host.create_secret(host.secret_value(user, "Ghost-Pass-7"))
    expect_failure(host.run("set", arn, current), 3, "does not exist")
    assert not host.server.login_exists(user)


def test_set_after_an_out_of_band_change(host):
    # Someone changed the password by hand: set puts the secret's version back.
    user = host.new_login("Start-Pass-8")
    arn, current = host.create_secret(host.secret_value(user, "Start-Pass-8"))
    host.server.set_password(user, "Manual-Pass-8")
    host.secrets_seen.append("Manual-Pass-8")
    expect_failure(host.run("verify", arn, current), 5)
    expect_result(host.run("set", arn, current), "set", current, "changed")
    assert host.server.can_login(user, "Start-Pass-8")
    assert not host.server.can_login(user, "Manual-Pass-8")


def test_set_exits_5_when_the_changed_password_is_still_refused(host):
    """The change succeeds but the login still cannot log in (a NOLOGIN role, a locked account):
    only the verify after the change can tell, and the step must fail (exit 5), not claim
    outcome=changed for a password nobody can use."""
    user = host.new_login("Start-Pass-8b")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-8b"))
    pending = host.put_pending(arn, host.secret_value(user, "Next-Pass-8b"))
    if host.engine == "postgres":
        disable, enable = f'ALTER ROLE "{user}" NOLOGIN;\n', f'ALTER ROLE "{user}" LOGIN;\n'
    else:
        disable, enable = f"ALTER USER '{user}'@'%' ACCOUNT LOCK;\n", f"ALTER USER '{user}'@'%' ACCOUNT UNLOCK;\n"
    host.server.admin_sql(disable)
    expect_failure(host.run("set", arn, pending), 5, "refused")
    # The change itself was made: what failed is the login the verify tried.
    host.server.admin_sql(enable)
    assert host.server.can_login(user, "Next-Pass-8b")
    assert not host.server.can_login(user, "Start-Pass-8b")


def test_set_when_the_admin_socket_is_missing_exits_6(host, tmp_path):
    user = host.new_login("Start-Pass-9")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-9"))
    pending = host.put_pending(arn, host.secret_value(user, "Next-Pass-9"))
    if host.engine == "postgres":
        env = host.env(PGHOST=str(tmp_path), PGPORT="1")
    else:
        env = host.env(MYSQL_UNIX_PORT=str(tmp_path / "missing.sock"))
    expect_failure(host.run("set", arn, pending, env=env), 6, "administered")
    assert host.server.can_login(user, "Start-Pass-9")


# ---- the secret --------------------------------------------------------------------------


def test_unreadable_secret_version_exits_4(host):
    user = host.new_login("Start-Pass-10")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-10"))
    missing_version = "0" * 8 + "-0000-4000-8000-" + "0" * 12
    result = host.run("set", arn, missing_version)
    # Named as the CLI's failure, not as the empty answer the parser would then see.
    expect_failure(result, 4)
    assert result.stderr.startswith("rotator: the secret version cannot be read: An error occurred "
                                    "(ResourceNotFoundException) when calling the GetSecretValue operation"), result.stderr


@pytest.mark.parametrize(
    "value, fragment",
    [
        ("not json at all", "not valid JSON"),
        ('["a list"]', "not a JSON object"),
        ({"username": "x", "port": 5432}, "'password'"),
        ({"password": "Some-Pass-11", "port": 5432}, "'username'"),
        ({"username": "x", "password": "Some-Pass-11", "port": "fifty"}, "'port'"),
        ({"username": "x", "password": "line\nbreak", "port": 5432}, "control characters"),
    ],
    ids=["not-json", "not-object", "no-password", "no-username", "bad-port", "control-chars"],
)
def test_unusable_secret_json_exits_4(host, value, fragment):
    arn, current = host.create_secret(value)
    expect_failure(host.run("set", arn, current), 4, fragment)


# ---- parameters --------------------------------------------------------------------------

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotator/test-AbCdEf"
VERSION = "7d9b6e54-1f0a-4b8c-9d2e-0a1b2c3d4e5f"
BAD_PARAMETERS = [
    ({"SecretId": [ARN], "VersionId": [VERSION]}, "Action"),
    ({"Action": ["rotate"], "SecretId": [ARN], "VersionId": [VERSION]}, "Action"),
    ({"Action": ["set\n"], "SecretId": [ARN], "VersionId": [VERSION]}, "Action"),
    ({"Action": ["set; id"], "SecretId": [ARN], "VersionId": [VERSION]}, "Action"),
    ({"Action": ["set"], "VersionId": [VERSION]}, "SecretId"),
    ({"Action": ["set"], "SecretId": ["my-secret"], "VersionId": [VERSION]}, "SecretId"),
    ({"Action": ["set"], "SecretId": [ARN + "$(id)"], "VersionId": [VERSION]}, "SecretId"),
    ({"Action": ["set"], "SecretId": [ARN.replace("secretsmanager", "ssm")], "VersionId": [VERSION]}, "SecretId"),
    ({"Action": ["set"], "SecretId": [ARN]}, "VersionId"),
    ({"Action": ["set"], "SecretId": [ARN], "VersionId": ["too-short"]}, "VersionId"),
    ({"Action": ["set"], "SecretId": [ARN], "VersionId": ["a" * 65]}, "VersionId"),
    ({"Action": ["set"], "SecretId": [ARN], "VersionId": [VERSION + " "]}, "VersionId"),
    ({"Action": ["set"], "SecretId": [ARN], "VersionId": [VERSION + "\n"]}, "VersionId"),
    ({"Action": ["set"], "SecretId": [ARN], "VersionId": [VERSION], "Login": ["app; id"]}, "Login"),
    ({"Action": ["set"], "SecretId": [ARN], "VersionId": [VERSION], "Login": ["tag:OtherTag"]}, "Login"),
    ({"Action": ["set"], "SecretId": [ARN], "VersionId": [VERSION], "Login": ["a" * 129]}, "Login"),
]


@pytest.mark.parametrize("parameters, name", BAD_PARAMETERS, ids=[f"{i}-{n}" for i, (_, n) in enumerate(BAD_PARAMETERS)])
def test_bad_parameters_are_refused_by_ssm_and_by_the_script(host, parameters, name):
    with pytest.raises(InvalidParameters) as refused:
        validate_parameters(host.document, parameters)
    assert name in refused.value.message
    result = host.run(None, None, None, parameters=parameters)
    expect_failure(result, 2, f"parameter {name}")


def test_undeclared_parameter_is_refused_by_ssm(host):
    with pytest.raises(InvalidParameters):
        validate_parameters(
            host.document, {"Action": ["set"], "SecretId": [ARN], "VersionId": [VERSION], "Password": ["x"]}
        )


def test_good_parameters_pass_validation(host):
    values = validate_parameters(host.document, {"Action": ["verify"], "SecretId": [ARN], "VersionId": [VERSION]})
    # Login takes its default (the local stack's documents pin no login: empty).
    assert values == {"Action": "verify", "SecretId": ARN, "VersionId": VERSION, "Login": ""}


# ---- tools -------------------------------------------------------------------------------


@pytest.mark.parametrize("missing", ["client", "aws", "bash"])
def test_missing_tool_exits_7(host, missing, tmp_path):
    """Also bash: the agent starts the script with sh (dash here), and the script's first line
    re-executes it under bash, or exits 7 when there is none."""
    client = "psql" if host.engine == "postgres" else "mysql"
    name = client if missing == "client" else missing
    tools = ["sh", "bash", "env", "mktemp", "rm", "grep", "cut", "tr", "head", "cat", "find", "python3", "runuser",
             "flock", "sha256sum", "stat", "id", "mkdir"]
    tools += [client, "aws"]
    tools.remove(name)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    env = host.env()
    for tool in tools:
        found = shutil.which(tool, path=env["PATH"])
        assert found, tool
        (bindir / tool).symlink_to(found)
    user = host.new_login("Start-Pass-12")
    arn, current = host.create_secret(host.secret_value(user, "Start-Pass-12"))
    env["PATH"] = str(bindir)
    assert Path(os.path.realpath(bindir / "sh")).name != "bash", "sh is bash here: a missing bash cannot be shown"
    expect_failure(host.run("verify", arn, current, env=env), 7, "bash is not installed" if missing == "bash" else f"'{name}'")


def test_an_unexpected_failure_exits_6_and_says_where(host, tmp_path):
    """A command that fails where the script expects none (here mktemp, for the working directory)
    ends the run through the ERR trap: exit 6 (not the command's own status, which could mean
    something else to the function) and one line saying where. mktemp runs in a command
    substitution, whose subshell inherits the trap (set -E) and ends through it silently with 6;
    the script's own shell then says so, once: "status 6"."""
    user = host.new_login("Start-Pass-18")
    arn, current = host.create_secret(host.secret_value(user, "Start-Pass-18"))
    env = host.env()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "mktemp").symlink_to(shutil.which("false", path=env["PATH"]))
    env["PATH"] = f"{bindir}:{env['PATH']}"
    result = host.run("verify", arn, current, env=env)
    expect_failure(result, 6)
    assert re.fullmatch(r"rotator: internal error \(status 6 at line \d+\)\n", result.stderr), result.stderr


def failing_helper_env(host, tmp_path, command: str) -> dict[str, str]:
    """The host's environment with python3 on PATH standing in (pytests/hosts/failing_helper.sh):
    the helper's `command` fails, every other call is the real python3's."""
    env = host.env()
    env.update(STAND_IN_FAIL=command, STAND_IN_REAL_PYTHON3=shutil.which("python3", path=env["PATH"]))
    bindir = tmp_path / "failing-helper"
    bindir.mkdir()
    (bindir / "python3").symlink_to(Path(__file__).with_name("failing_helper.sh"))
    env["PATH"] = f"{bindir}:{env['PATH']}"
    return env


# What a set does to the login as the administrator, each step guarded: when one fails (the SQL
# the helper builds, or the client sending it, or the helper telling its answer), the run ends
# there with exit 6 and the step named, and the password is unchanged.
@pytest.mark.parametrize("host, command, message", [
    ("postgres", "privileged-sql", "is privileged could not be read"),
    ("postgres", "alter-sql", "could not be changed"),
    ("mysql", "authentication-sql", "the authentication of '{user}' could not be read"),
    ("mysql", "authentication", "the authentication of '{user}' could not be told"),
    ("mysql", "privileges-sql", "the privileges of '{user}' could not be read"),
    ("mysql", "privileged", "the privileges of '{user}' could not be told"),
    ("mysql", "alter-sql", "the password of '{user}' could not be changed"),
], indirect=["host"])
def test_a_failing_step_of_set_exits_6_naming_it_and_changes_nothing(host, tmp_path, command, message):
    user = host.new_login("Start-Pass-19")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-19"))
    pending = host.put_pending(arn, host.secret_value(user, "Next-Pass-19"))
    result = host.run("set", arn, pending, env=failing_helper_env(host, tmp_path, command))
    expect_failure(result, 6, message.format(user=user))
    assert host.server.can_login(user, "Start-Pass-19")


# ---- engine specifics --------------------------------------------------------------------


def test_postgres_log_never_sees_the_clear_text_password(make_host, postgres):
    host = make_host("postgres")
    new = "Log-Check-" + os.urandom(6).hex()
    user = host.new_login("Start-Pass-13")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-13"))
    pending = host.put_pending(arn, host.secret_value(user, new))
    expect_result(host.run("set", arn, pending), "set", pending, "changed")
    log = postgres.server_log()
    assert f'ALTER ROLE "{user}" PASSWORD \'SCRAM-SHA-256$4096:' in log, "log_statement=all is not logging"
    assert new not in log


@contextlib.contextmanager
def trusting_tcp(postgres):
    """The server lets anyone in over 127.0.0.1 without asking for a password (`trust`) meanwhile."""
    hba = postgres.datadir / "pg_hba.conf"
    original = hba.read_text()
    try:
        hba.write_text(original.replace("127.0.0.1/32 scram-sha-256", "127.0.0.1/32 trust"))
        postgres.reload()
        yield
    finally:
        hba.write_text(original)
        postgres.reload()


def test_postgres_refuses_to_verify_when_passwords_are_not_checked(make_host, postgres):
    """With `trust` on 127.0.0.1 any password "works": the script must not call that verified."""
    host = make_host("postgres")
    user = host.new_login("Start-Pass-14")
    arn, current = host.create_secret(host.secret_value(user, "Start-Pass-14"))
    pending = host.put_pending(arn, host.secret_value(user, "Next-Pass-14"))
    with trusting_tcp(postgres):
        expect_failure(host.run("verify", arn, current), 6, "does not check passwords")
        expect_failure(host.run("set", arn, pending), 6, "does not check passwords")
    assert postgres.can_login(user, "Start-Pass-14")


def test_postgres_with_psql_16_refuses_to_verify_when_passwords_are_not_checked(make_host, postgres, tmp_path):
    """psql 16 itself refuses the trusting server (pytests/hosts/psql16.sh): that refusal means
    "passwords not checked" (exit 6, docs/host-contract.md), not "the password was refused" (exit 5)."""
    host = make_host("postgres")
    user = host.new_login("Start-Pass-17")
    arn, current = host.create_secret(host.secret_value(user, "Start-Pass-17"))
    pending = host.put_pending(arn, host.secret_value(user, "Next-Pass-17"))
    env = host.env()
    calls = tmp_path / "calls"
    env.update(STAND_IN_REAL_PSQL=shutil.which("psql", path=env["PATH"]), STAND_IN_CALLS=str(calls))
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "psql").symlink_to(Path(__file__).with_name("psql16.sh"))
    env["PATH"] = f"{bindir}:{env['PATH']}"
    with trusting_tcp(postgres):
        expect_failure(host.run("verify", arn, current, env=env), 6, "does not check passwords")
        expect_failure(host.run("set", arn, pending, env=env), 6, "does not check passwords")
    assert calls.read_text().splitlines()[0] == f"tcp {user}", "the stand-in psql 16 was not in the login's way"
    assert postgres.can_login(user, "Start-Pass-17")


def test_mariadb_changes_every_host_entry_and_logs_no_clear_text(make_host, mariadb):
    host = make_host("mysql")
    user = host.new_login("Start-Pass-15")
    mariadb.create_login(user, "Start-Pass-15", host="localhost")
    mariadb.create_login(user, "Start-Pass-15", host="10.0.%")
    new = "Log-Check-" + os.urandom(6).hex()
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-15"))
    pending = host.put_pending(arn, host.secret_value(user, new))
    expect_result(host.run("set", arn, pending), "set", pending, "changed")
    hashes = mariadb.admin_sql(
        "SELECT DISTINCT authentication_string FROM mysql.user WHERE User = '%s';" % user
    ).split()
    assert len(hashes) == 1, "every host entry of the user holds the new password"
    assert mariadb.can_login(user, new)
    log = mariadb.general_log()
    assert f"ALTER USER '{user}'@" in log, "the general log is not logging"
    assert new not in log


def _closed_port() -> int:
    return free_port()


def test_no_temporary_files_are_left_behind(host, tmp_path):
    base = tmp_path / "tmp"  # TMPDIR: this test's own, so concurrent runs elsewhere do not count
    base.mkdir(mode=0o700)
    # What a run killed by the agent (SIGKILL on timeout or cancel) leaves: swept once stale.
    stale = base / "rotator.0123456789"
    recent = base / "rotator.9876543210"
    for path in (stale, recent):
        path.mkdir(mode=0o700)
        (path / "password").write_text("left-over")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    env = host.env(TMPDIR=str(base))
    user = host.new_login("Start-Pass-16")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-16"))
    pending = host.put_pending(arn, host.secret_value(user, "Next-Pass-16"))
    expect_result(host.run("set", arn, pending, env=env), "set", pending, "changed")
    expect_failure(host.run("set", arn, "f" * 36, env=env), 4)
    assert sorted(p.name for p in base.iterdir()) == [recent.name], "left behind, or swept too eagerly"
