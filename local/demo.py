"""`make demo`: rotate a PostgreSQL and a MariaDB password end to end, on the local stack.

For each engine: start a real database, create the login `app` and its secret, run the operator's
own `aws secretsmanager rotate-secret --secret-id <arn>`, show the function's four steps with their
wall times (as the Runtime API saw them), then prove the result:

  - the new AWSCURRENT password logs in, the old one is refused;
  - the new version is AWSCURRENT, the old one AWSPREVIOUS, and no AWSPENDING is left;

and, once both are done, that no password, credential or RotationToken reached the function's log
and that moto accepted every request the function signed. Exit status 0 only if every proof passes.
Passwords are never printed. Nothing keeps running afterwards.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from local.databases import MariaDBServer, PostgresServer
from local.stack import LocalStack, binary_problem

ENGINES = [
    # label, server class, secret engine, instance id of the "host"
    ("PostgreSQL", PostgresServer, "postgres", "i-0de70000000000001"),
    ("MariaDB", MariaDBServer, "mariadb", "i-0de70000000000002"),
]
LOGIN = "app"
DBNAME = "appdb"

_TTY = sys.stdout.isatty() and os.environ.get("NO_COLOR") is None


def _c(code: str, text: str) -> str:
    return f"\033[{code}m{text}\033[0m" if _TTY else text


PASS = _c("1;32", "PASS")
FAIL = _c("1;31", "FAIL")


@dataclass
class Proofs:
    results: list[tuple[str, str, bool, str]] = field(default_factory=list)   # (section, claim, ok, detail)

    def check(self, section: str, claim: str, test: Callable[[], Any]) -> bool:
        detail = ""
        try:
            outcome = test()
            ok, detail = (outcome if isinstance(outcome, tuple) else (bool(outcome), ""))
        except Exception as e:  # a proof that cannot be evaluated has failed
            ok, detail = False, f"{type(e).__name__}: {e}"
        self.results.append((section, claim, ok, detail))
        print(f"    {PASS if ok else FAIL}  {claim}" + (f"  ({detail})" if detail else ""))
        return ok

    @property
    def failed(self) -> list[tuple[str, str, bool, str]]:
        return [r for r in self.results if not r[2]]


def _short(version_id: str | None) -> str:
    return (version_id or "-")[:8]


def _redacted_tail(text: str, secrets_: list[str], lines: int = 8) -> str:
    for s in secrets_:
        if s:
            text = text.replace(s, "***")
    return "\n".join("      | " + line for line in text.strip().splitlines()[-lines:])


def _prepare_database(label: str, server: Any, password: str) -> None:
    server.create_login(LOGIN, password)
    if label == "PostgreSQL":
        server.admin_sql(f'CREATE DATABASE {DBNAME} OWNER "{LOGIN}";\n')
    else:
        server.admin_sql(f"CREATE DATABASE {DBNAME};\nGRANT ALL ON {DBNAME}.* TO '{LOGIN}'@'%';\n")


def demo_engine(stack: LocalStack, proofs: Proofs, label: str, server_cls: type, engine: str,
                instance_id: str, seen_passwords: list[str]) -> None:
    print()
    print(_c("1", f"== {label} " + "=" * (60 - len(label))))
    t0 = time.monotonic()
    with server_cls() as server:
        print(f"  database   {label} on 127.0.0.1:{server.port}, started in {time.monotonic() - t0:.1f}s "
              f"(temporary directory, removed afterwards)")
        stack.register_instance(instance_id, "Linux", server.host_env())
        print(f"  host       instance {instance_id}: SSM runs the template's {engine} document there")

        initial = secrets.token_urlsafe(24)
        seen_passwords.append(initial)
        _prepare_database(label, server, initial)
        arn = stack.create_db_secret(f"demo/{engine}/{LOGIN}", engine, server, LOGIN, initial,
                                     [instance_id], dbname=DBNAME)
        old_version = stack.version_with(arn, "AWSCURRENT")
        print(f"  login      '{LOGIN}' on database '{DBNAME}', initial password set (not shown)")
        print(f"  secret     {arn}")
        print(f"             version {_short(old_version)}… is AWSCURRENT; rotation: {stack.function_arn}, every 85 days")

        print(f"  operator   $ aws secretsmanager rotate-secret --secret-id {arn}")
        t = time.monotonic()
        p = subprocess.run(["aws", "secretsmanager", "rotate-secret", "--secret-id", arn],
                           env=stack.cli_env(), capture_output=True, text=True, timeout=180)
        cli_s = time.monotonic() - t
        token = None
        if p.returncode == 0:
            token = json.loads(p.stdout).get("VersionId")
            print(f"             answered in {cli_s:.2f}s: rotation started, new version {_short(token)}…")
        else:
            print(f"             {FAIL}: exit status {p.returncode}: {p.stderr.strip()[:300]}")
            proofs.results.append((label, "aws secretsmanager rotate-secret", False, p.stderr.strip()[:200]))
            return

        rec = stack.wait_rotation(arn)
        total = (rec.finished_at or time.time()) - rec.started_at
        print(f"  function   the four steps, each one invocation through the Runtime API "
              f"(total {total:.2f}s):")
        for s in rec.steps:
            note = ""
            if s.cold_start:
                init = stack.runtime.starts[-1]["init_duration_s"] if stack.runtime.starts else None
                note = " (cold start" + (f", init {init * 1000:.0f} ms" if init is not None else "") + ")"
            status = "ok" if s.ok else _c("31", f"{s.error_type}: {s.error_message}")
            print(f"             {s.step:<13} {s.duration_s * 1000:7.0f} ms  {status}{note}")
        if not rec.ok:
            print("             function log (last lines, secrets redacted):")
            print(_redacted_tail(stack.function_log(), seen_passwords + stack.secrets_in_play()))

        print("  proofs")
        current: dict[str, Any] = {}

        def read_current() -> dict[str, Any]:
            if not current:
                current.update(stack.secret_value(arn, "AWSCURRENT"))
                seen_passwords.append(current["password"])
            return current

        proofs.check(label, "all four steps succeeded", lambda: (bool(rec.ok), "" if rec.ok else "see above"))
        proofs.check(label, "the AWSCURRENT password logs in",
                     lambda: server.can_login(LOGIN, read_current()["password"]))
        proofs.check(label, "the old password is refused", lambda: not server.can_login(LOGIN, initial))
        stages = stack.stages(arn)
        proofs.check(label, f"the new version {_short(token)}… is AWSCURRENT",
                     lambda: ("AWSCURRENT" in stages.get(token, []), f"stages: {stages.get(token)}"))
        proofs.check(label, f"the old version {_short(old_version)}… is AWSPREVIOUS",
                     lambda: ("AWSPREVIOUS" in stages.get(old_version, []), f"stages: {stages.get(old_version)}"))
        proofs.check(label, "no AWSPENDING is left",
                     lambda: not any("AWSPENDING" in v for v in stages.values()))
    print(f"  database   {label} stopped")


def main() -> int:
    print(_c("1", "Secret rotation, end to end on the local stack"))
    print("  moto (Secrets Manager, SSM, SNS, IAM, STS) checks every signature and IAM policy;")
    print("  the Swift function runs as ./bootstrap behind a Lambda Runtime API on loopback;")
    print("  SSM runs the template's scripts against real databases.")
    problem = binary_problem()
    if problem:
        print(f"\n{FAIL}: {problem}: run `make build` first.")
        return 2

    proofs = Proofs()
    seen_passwords: list[str] = []
    with ExitStack() as es:
        t = time.monotonic()
        stack = es.enter_context(LocalStack())
        print(f"\n  stack      up in {time.monotonic() - t:.1f}s: moto {stack.url}, Runtime API {stack.runtime.address}")
        print(f"             function log {stack.log_path}")
        for label, cls, engine, iid in ENGINES:
            try:
                demo_engine(stack, proofs, label, cls, engine, iid, seen_passwords)
            except Exception as e:
                print(f"    {FAIL}  {label}: {type(e).__name__}: {e}")
                proofs.results.append((label, "demo ran", False, str(e)))

        print()
        print(_c("1", "== The function " + "=" * 46))
        log = stack.function_log()
        proofs.check("function", "no password, credential or RotationToken in the function log",
                     lambda: not any(s and s in log for s in seen_passwords + stack.secrets_in_play()))
        reqs = stack.function_requests()
        proofs.check("function", "moto accepted every request the function signed (SigV4 + IAM)",
                     lambda: (bool(reqs) and all(r.ok for r in reqs),
                              f"{sum(r.ok for r in reqs)}/{len(reqs)} requests, "
                              f"{'all' if all(r.session_token for r in reqs) else 'NOT all'} with a session token"))
        deaths = list(stack.runtime.deaths)
        proofs.check("function", "one warm process served every invocation",
                     lambda: (not deaths and len(stack.runtime.starts) == 1,
                              f"{len(stack.runtime.invocations)} invocations, {len(stack.runtime.starts)} start(s)"))
    # The stack and the databases are closed here; nothing of ours is left running.

    print()
    if proofs.failed:
        print(_c("1;31", f"{len(proofs.failed)} of {len(proofs.results)} proofs FAILED:"))
        for section, claim, _, detail in proofs.failed:
            print(f"  - {section}: {claim}" + (f" ({detail})" if detail else ""))
        return 1
    print(_c("1;32", f"All {len(proofs.results)} proofs passed."))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; everything was stopped")
        sys.exit(130)
