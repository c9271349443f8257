"""Helpers shared by the end-to-end tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import json
import re
import secrets
import string
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from local.databases import MariaDBServer, PostgresServer
from local.stack import LocalStack, binary_problem  # noqa: F401 (re-exported)

STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]

ENGINES: dict[str, dict[str, Any]] = {
    "postgres": {"server": PostgresServer, "engine": "postgres", "instance_id": "i-0e2e0000000000001",
                 "dbname": "postgres"},
    # A login with no grants may always use information_schema (`mysql` would refuse it).
    "mariadb": {"server": MariaDBServer, "engine": "mariadb", "instance_id": "i-0e2e0000000000002",
                "dbname": "information_schema"},
}


def random_password(n: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits + "-_.+!#%^*"
    return "".join(secrets.choice(alphabet) for _ in range(n))


@dataclass
class DBHost:
    name: str                  # postgres | mariadb
    server: Any                # PostgresServer | MariaDBServer
    engine: str                # the secret's "engine" field
    instance_id: str
    dbname: str


@dataclass
class Login:
    stack: LocalStack
    db: DBHost
    username: str
    password: str              # the initial password
    arn: str
    started_at: float = field(default_factory=time.time)
    passwords: list[str] = field(default_factory=list)   # every password seen: none may leak

    def value(self, stage: str | None = "AWSCURRENT", version_id: str | None = None) -> dict[str, Any]:
        v = self.stack.secret_value(self.arn, stage, version_id)
        if v.get("password") and v["password"] not in self.passwords:
            self.passwords.append(v["password"])
        return v

    def current_password(self) -> str:
        return self.value("AWSCURRENT")["password"]

    def pending_password(self) -> str:
        return self.value("AWSPENDING")["password"]

    def password_of(self, version_id: str) -> str:
        """The password a version holds, labelled or not (and remember it for the leak checks)."""
        return self.value(None, version_id)["password"]

    def can_login(self, password: str) -> bool:
        return self.db.server.can_login(self.username, password)

    def version_logs_in(self, stage: str | None = "AWSCURRENT", version_id: str | None = None) -> bool:
        """Whether the database accepts the login and password a version names: with alternating
        users that login is the clone every other rotation."""
        v = self.value(stage, version_id)
        return self.db.server.can_login(v["username"], v["password"])


def make_login(stack: LocalStack, db: DBHost, **secret_kw: Any) -> Login:
    username = "app_" + secrets.token_hex(4)
    password = random_password()
    db.server.create_login(username, password)
    arn = stack.create_db_secret(f"{db.name}/{username}", db.engine, db.server, username, password,
                                 [db.instance_id], dbname=db.dbname, **secret_kw)
    return Login(stack, db, username, password, arn, passwords=[password])


def make_alternating_login(stack: LocalStack, db: DBHost, table: str) -> Login:
    """A login for the alternating-users strategy: a master secret with a real administrator login
    of the database, the login's secret naming it (`masterarn`), and SELECT for the login on a new
    table `table` of the server's app_database."""
    admin, admin_password = "admin_" + secrets.token_hex(4), random_password()
    db.server.create_admin(admin, admin_password)
    master_arn = stack.client("secretsmanager").create_secret(
        Name=f"{db.name}/{admin}", SecretString=json.dumps({"engine": db.engine, "username": admin,
                                                            "password": admin_password}))["ARN"]
    login = make_login(stack, db, extra={"masterarn": master_arn})
    login.passwords.append(admin_password)
    db.server.create_table(table)
    db.server.grant("SELECT", table, login.username)
    return login


def rotate(stack: LocalStack, arn: str) -> Any:
    """One rotation through RotateSecret, waited for; its RotationRecord."""
    token = stack.client("secretsmanager").rotate_secret(SecretId=arn)["VersionId"]
    rec = stack.wait_rotation(arn)
    assert rec.token == token, f"waited for rotation {rec.token}, started {token}"
    return rec


def assert_invariants(stack: LocalStack, login: Login, since: float, killed: int = 0) -> None:
    """After every scenario: the database and AWSCURRENT agree (AWSCURRENT logs in), the function
    never crashed (but for the `killed` times a test killed it), never broke the Runtime API
    protocol, every request it made passed moto's signature and IAM checks, and no password
    reached its log."""
    stack.ssm.wait_idle(30)
    assert login.version_logs_in("AWSCURRENT"), "AWSCURRENT no longer logs in: the database and the secret disagree"
    deaths = [d for d in stack.runtime.deaths if d["at"] >= since]
    assert len(deaths) == killed and all(d["returncode"] == -9 for d in deaths), \
        f"the function process died {len(deaths)} times ({killed} killed on purpose): {deaths}"
    violations = [v for v in stack.runtime.violations if v.at >= since]
    assert not violations, f"Runtime API protocol violations: {violations}"
    rejected = [r for r in stack.function_requests()
                if r.at >= since and not r.ok and not r.denied_by_withholding]
    assert not rejected, f"requests of the function rejected by moto: {rejected}"
    leaked = leaks(stack.function_log(), login.passwords + stack.secrets_in_play())
    assert not leaked, f"secrets in the function log: {leaked}"


def run_steps(stack: LocalStack, arn: str, token: str, timeout_s: float | None = None) -> list[tuple[str, Any]]:
    """Secrets Manager's part of a rotation (or of its retry): the four steps with one token, one
    invocation each, stopping at the first that fails. -> [(step, InvokeResult)]"""
    results = []
    for step in STEPS:
        r = stack.invoke(stack.rotation_event(step, arn, token), timeout_s)
        results.append((step, r))
        if not r.ok:
            break
    return results


def assert_working_password_labelled(login: Login) -> None:
    """No version that holds the password the database accepts lost its label: AWSCURRENT or
    AWSPENDING still names it."""
    login.stack.ssm.wait_idle(30)
    labelled = {v: st for v, st in login.stack.stages(login.arn).items()
                if "AWSCURRENT" in st or "AWSPENDING" in st}
    if any(login.version_logs_in(None, v) for v in labelled):
        return
    raise AssertionError(f"no labelled version holds the password the database accepts: {labelled}")


def rotation_outcome(login: Login, token: str, old_version: str) -> str:
    """"completed" (the new version AWSCURRENT, the old AWSPREVIOUS, no AWSPENDING) or "abandoned"
    (AWSPENDING gone, AWSCURRENT unchanged); anything else fails. AWSCURRENT logs in either way."""
    stages = login.stack.stages(login.arn)
    assert no_pending(stages), f"the rotation is neither complete nor abandoned: {stages}"
    if stages.get(token) == ["AWSCURRENT"]:
        assert stages.get(old_version) == ["AWSPREVIOUS"], stages
        outcome = "completed"
    else:
        assert "AWSCURRENT" in stages.get(old_version, []), stages
        outcome = "abandoned"
    assert login.version_logs_in("AWSCURRENT"), f"{outcome}, but AWSCURRENT does not log in"
    return outcome


def run_cli(stack: LocalStack, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """The operator's own `aws` CLI, pointed at the stack through its environment only."""
    return subprocess.run(["aws", *args], env=stack.cli_env(), capture_output=True, text=True,
                          timeout=timeout)


def alerts_since(stack: LocalStack, count_before: int) -> list[dict]:
    """The SNS alerts that arrived after the first count_before."""
    return stack.alerts()[count_before:]


def assert_alert(alerts: list[dict], login: Login, step: str) -> None:
    """An alert names the secret, the step and the host, and holds no password."""
    assert alerts, "no SNS alert arrived"
    text = " ".join(f"{a['subject']}\n{a['message']}" for a in alerts)
    assert login.arn in text, text
    assert step in text, text
    assert login.db.instance_id in text, text
    assert not leaks(text, login.passwords), "a password is in the alert"


def commands_for(stack: LocalStack, arn: str, since: int = 0):
    """The SSM commands sent for the secret arn, after the first `since` commands of the stack."""
    return [c for c in stack.commands[since:] if c.parameters.get("SecretId") == [arn]]


def rotate_with_cli(stack: LocalStack, login: Login):
    """rotate-secret through the operator's aws CLI; the token it returned and the rotation record."""
    p = run_cli(stack, "secretsmanager", "rotate-secret", "--secret-id", login.arn)
    assert p.returncode == 0, p.stderr
    token = json.loads(p.stdout)["VersionId"]
    rec = stack.wait_rotation(login.arn)
    assert rec.token == token
    return token, rec


def describe_rotation(rec: Any) -> str:
    return "; ".join(f"{s.step}: {'ok' if s.ok else f'{s.error_type}: {s.error_message}'} ({s.duration_s:.2f}s)"
                     for s in rec.steps) or f"no steps ({rec.error})"


def describe_steps(results: list[tuple[str, Any]]) -> str:
    """What run_steps returned, one step after the other."""
    return "; ".join(f"{step}: {'ok' if r.ok else f'{r.error_type}: {r.error_message}'} ({r.duration_s:.2f}s)"
                     for step, r in results) or "no steps"


def no_pending(stages: dict[str, list[str]]) -> bool:
    return not any("AWSPENDING" in s for s in stages.values())


# A RotationToken's form (uuid4, as the stack and Secrets Manager write it); a lookahead, so that
# overlapping candidates are all found.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_UUIDS_IN_TEXT = re.compile(f"(?=({_UUID.pattern}))")


def leaks(text: str, needles: list[str]) -> list[str]:
    """Which of the needles (secrets) occur in text; named by a short prefix only.

    Every test checks the function's whole log for every RotationToken the stack ever sent, and
    both grow with the suite: searched one by one that is quadratic (seconds per test late in a
    run). Tokens are instead looked up among the log's UUIDs, found in one pass."""
    tokens = {n for n in needles if _UUID.fullmatch(n)}
    found = set(_UUIDS_IN_TEXT.findall(text)) & tokens
    return [n[:4] + "…" for n in needles if n and (n in found if n in tokens else n in text)]


def dump(obj: Any) -> str:
    return json.dumps(obj, default=str, sort_keys=True)
