"""Helpers of the host-script tests: a database host of the local stack and the checks every
script run must pass (no password in any output, the result line or one error line)."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from local.ssm_runner import InvocationResult, aws_cli_host_env, run_document

REGION = "us-east-1"
RESULT_RE = re.compile(
    r"^ROTATOR-RESULT action=(set|verify) version=([A-Za-z0-9-]{32,64}) outcome=(changed|unchanged|verified)$"
)


class ProcessWatcher:
    """Scans every process's argv and environment for given strings while a script runs."""

    def __init__(self, needles: list[str]) -> None:
        self.needles = [n.encode("utf-8") for n in needles if n]
        self.hits: list[str] = []
        self.scans = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        own = str(os.getpid())
        while not self._stop.is_set():
            for pid in os.listdir("/proc"):
                if not pid.isdigit() or pid == own:
                    continue
                for part in ("cmdline", "environ"):
                    try:
                        with open(f"/proc/{pid}/{part}", "rb") as handle:
                            data = handle.read()
                    except OSError:
                        continue
                    for needle in self.needles:
                        if needle in data:
                            self.hits.append(f"{pid}/{part}")
            self.scans += 1
            self._stop.wait(0.002)


@dataclass
class Host:
    """One database host of the local stack: its engine, document, server and secrets."""

    engine: str  # "postgres" | "mysql"
    document: dict
    server: object
    sm: object
    endpoint: str
    secrets_seen: list[str] = field(default_factory=list)

    def env(self, **overrides: str) -> dict[str, str]:
        env = aws_cli_host_env(self.endpoint, REGION)
        env.update(self.server.host_env())
        env.update(overrides)
        return env

    def new_login(self, password: str) -> str:
        name = "app_" + uuid.uuid4().hex[:10]
        self.server.create_login(name, password)
        self.secrets_seen.append(password)
        return name

    def secret_value(self, username: str, password: str, **extra) -> dict:
        value = {
            "engine": "postgres" if self.engine == "postgres" else "mariadb",
            "host": "db.internal.example",
            "port": self.server.port,
            "username": username,
            "password": password,
            "instanceIds": ["i-0123456789abcdef0"],
        }
        if self.engine == "postgres":
            value["dbname"] = "postgres"
        value.update(extra)
        return {k: v for k, v in value.items() if v is not None}

    def create_secret(self, value) -> tuple[str, str]:
        """A secret whose AWSCURRENT holds `value`; returns (ARN, current VersionId)."""
        text = value if isinstance(value, str) else json.dumps(value)
        if isinstance(value, dict) and "password" in value:
            self.secrets_seen.append(value["password"])
        arn = self.sm.create_secret(Name="rotator/test/" + uuid.uuid4().hex, SecretString=text)["ARN"]
        stages = self.sm.describe_secret(SecretId=arn)["VersionIdsToStages"]
        current = next(v for v, s in stages.items() if "AWSCURRENT" in s)
        return arn, current

    def put_pending(self, arn: str, value) -> str:
        """A new AWSPENDING version holding `value`; returns its VersionId (the rotation token)."""
        token = str(uuid.uuid4())
        text = value if isinstance(value, str) else json.dumps(value)
        if isinstance(value, dict) and "password" in value:
            self.secrets_seen.append(value["password"])
        self.sm.put_secret_value(
            SecretId=arn, ClientRequestToken=token, SecretString=text, VersionStages=["AWSPENDING"]
        )
        return token

    def run(self, action: str | None, arn: str | None, version: str | None, *, env=None,
            parameters=None, watch: bool = False) -> InvocationResult:
        """Run the document as the agent would (no SendCommand validation) and check the
        invariants every run must keep: no password in any output, and the output shape."""
        if parameters is None:
            parameters = {}
            if action is not None:
                parameters["Action"] = [action]
            if arn is not None:
                parameters["SecretId"] = [arn]
            if version is not None:
                parameters["VersionId"] = [version]
        host_env = env if env is not None else self.env()
        if watch:
            with ProcessWatcher(self.secrets_seen) as watcher:
                result = run_document(self.document, parameters, host_env, timeout_seconds=90)
            assert watcher.scans > 0
            assert watcher.hits == [], f"a password appeared in a process's argv or environment: {watcher.hits}"
        else:
            result = run_document(self.document, parameters, host_env, timeout_seconds=90)
        for secret in self.secrets_seen:
            assert secret not in result.stdout, "a password reached stdout"
            assert secret not in result.stderr, "a password reached stderr"
        if result.status == "Success":
            assert result.response_code == 0
            assert result.stderr == "", result.stderr
            lines = result.stdout.splitlines()
            assert lines, "no result line"
            assert RESULT_RE.match(lines[-1]), lines[-1]
        else:
            assert result.status == "Failed", result
            # one line on stderr, saying what went wrong
            assert result.stderr.startswith("rotator: "), result.stderr
            assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n"), result.stderr
            assert "ROTATOR-RESULT" not in result.stdout
        return result


def expect_result(result: InvocationResult, action: str, version: str, outcome: str) -> None:
    assert result.status == "Success", result
    assert result.stdout.splitlines()[-1] == (
        f"ROTATOR-RESULT action={action} version={version} outcome={outcome}"
    )


def stand_in_tool(env: dict[str, str], bindir: Path, name: str, script: str,
                  real_names: tuple[str, ...] = ()) -> dict[str, str]:
    """env with an executable bash `script` named `name` first on PATH (in bindir); the script finds
    the tool it stands in for (`real_names`, the first on env's PATH, default `name`) in $real."""
    real = next(filter(None, (shutil.which(n, path=env["PATH"]) for n in real_names or (name,))))
    bindir.mkdir(exist_ok=True)
    tool = bindir / name
    tool.write_text(f"#!/bin/bash\nreal={real}\n" + script)
    tool.chmod(0o755)
    return {**env, "PATH": f"{bindir}:{env['PATH']}"}


def expect_failure(result: InvocationResult, code: int, fragment: str = "") -> None:
    assert result.status == "Failed", result
    assert result.response_code == code, result
    assert fragment in result.stderr, result.stderr


# ---- MySQL / MariaDB: statements and privileges whatever the names hold ----------------------


def my_name(name: str) -> str:
    """An identifier in backticks (a backtick doubled)."""
    return "`" + name.replace("`", "``") + "`"


def my_prepared(server, *statements: str) -> str:
    """Run statements as root with their text in hex (PREPARE): the client never reads a name, so
    names with quotes, backslashes and control characters reach the server as they are."""
    sql = ["SET SESSION sql_mode = '';"]
    for statement in statements:
        sql.append(f"SET @t = CONVERT(0x{statement.encode('utf-8').hex()} USING utf8mb4);"
                   " PREPARE t FROM @t; EXECUTE t; DEALLOCATE PREPARE t;")
    return server.admin_sql("\n".join(sql) + "\n")


def my_privileges(server, user: str) -> dict[str, set]:
    """Every privilege row of `user` (all host entries) in MariaDB's tables, the user left out, the
    names decoded: what two logins with the same grants have in common."""
    literal = "CONVERT(0x%s USING utf8mb4)" % user.encode("utf-8").hex()
    queries = {
        "global": "SELECT HEX(Host), JSON_VALUE(Priv, '$.access'), HEX(IFNULL(JSON_VALUE(Priv, '$.default_role'), ''))"
                  " FROM mysql.global_priv",
        "db": "SELECT HEX(Host), HEX(Db), Select_priv, Insert_priv, Update_priv, Delete_priv, Create_priv,"
              " Drop_priv, Grant_priv, Alter_priv, Execute_priv, Delete_history_priv FROM mysql.db",
        "table": "SELECT HEX(Host), HEX(Db), HEX(Table_name), HEX(CONCAT('', Table_priv)),"
                 " HEX(CONCAT('', Column_priv)) FROM mysql.tables_priv",
        "column": "SELECT HEX(Host), HEX(Db), HEX(Table_name), HEX(Column_name), HEX(CONCAT('', Column_priv))"
                  " FROM mysql.columns_priv",
        "routine": "SELECT HEX(Host), HEX(Db), HEX(Routine_name), Routine_type, HEX(CONCAT('', Proc_priv))"
                   " FROM mysql.procs_priv",
        "role": "SELECT HEX(Host), HEX(Role), Admin_option FROM mysql.roles_mapping",
        "proxy": "SELECT HEX(Host), HEX(Proxied_user), HEX(Proxied_host), With_grant FROM mysql.proxies_priv",
    }
    found: dict[str, set] = {}
    for kind, query in queries.items():
        out = server.admin_sql(f"{query} WHERE User = {literal};\n")
        rows = set()
        for line in out.splitlines():
            rows.add(tuple(bytes.fromhex(v).decode("utf-8") if re.fullmatch(r"(?:[0-9A-F]{2})+", v) and kind != "global"
                           or (kind == "global" and i != 1 and re.fullmatch(r"(?:[0-9A-F]{2})*", v)) else v
                           for i, v in enumerate(line.split("\t"))))
        found[kind] = rows
    return found
