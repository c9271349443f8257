"""The fleet simulator (`make fleet`): N secrets rotated within one window on the local stack, under
account-wide quotas, to measure how the function's SSM calls behave at scale (docs/FLEET.md).

    python3 -m local.fleet --secrets 100 --hosts 1 --concurrency 10
    python3 -m local.fleet --secrets 100 --compare .build/fleet-before/bootstrap   # before / after

The layout is the shared one by default (docs/deploying.md, "Deploying a fleet"): the local stack
runs template-fleet.yaml, and each secret is enrolled as its owners enrol it (LocalStack.enroll_login:
its own unit from template-secret.yaml, and a line in the enrolment file of each of its hosts).
`--layout single` runs template.yaml instead, the secrets made under it directly. A previous build
given to --compare must ship today's documents (docs/FLEET.md: the function of dd8a794 does not).

What runs: the real function binary (as many processes as `--concurrency`, Lambda's reserved
concurrency: invocations beyond it wait, as Lambda queues asynchronous ones), the local stack's moto
with its SSM emulator, and the fault proxy metering every call of every function process against
token buckets (local/quotas.py: SendCommand, ListCommandInvocations, GetCommandInvocation, Secrets
Manager's writes). Rotations start as Secrets Manager starts them: RotateSecret for every secret at
random moments within the first `--spread` seconds of the window. A step that fails is invoked again
after Lambda's asynchronous retry delays (1 and 2 minutes, `--retry-delays`), as AWS retries it.

Hosts: most are stand-ins that hold the login's password in memory and answer the host contract
(docs/host-contract.md) after a random delay around `--host-delay`, and in the shared layout change
the login only for a secret their enrolment file lists (read by the host scripts' own code); the
first `--real` secrets are logins on a real PostgreSQL and a real MariaDB server, changed by the
template's real scripts.

The report: rotations completed, failed, retried; throttled calls by API; calls per rotation by API;
the time from the first RotateSecret to the last rotation's end; the peak of function processes
serving at once; and the lockout check: every host holds the password AWSCURRENT names. With it, what
the cost table (local/fleet_cost.py) and the chart (local/fleet_chart.py) read: the function's
seconds and log bytes per rotation, the real hosts' own Secrets Manager calls, and a timeline.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import random
import string
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local.fault_proxy import THROTTLED_BY_QUOTA as THROTTLED
from local.quotas import Quotas, assumed_limits

REPO = Path(__file__).resolve().parent.parent
TEMPLATES = {"shared": REPO / "template-fleet.yaml", "single": REPO / "template.yaml"}
# The calls the report counts per rotation, in this order; any other call is counted as "other".
REPORTED_CALLS = ["SendCommand", "ListCommandInvocations", "GetCommandInvocation", "CancelCommand",
                  "GetSecretValue", "DescribeSecret", "GetRandomPassword", "PutSecretValue", "UpdateSecretVersionStage", "GetDocument",
                  "Publish"]


def _password(rng: random.Random, n: int = 24) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(rng.choice(alphabet) for _ in range(n))


# The host scripts' own reading of the enrolment file (hosts/linux/secret.py, `enrolled`), run as the
# documents run the helper: the stand-ins follow the same file, by the same code.
_ENROLLED_PROGRAM = (REPO / "hosts/linux/secret.py").read_text(encoding="utf-8") + "\nrun({}, None, {})\n"


def enrolled_login(enrolment_file: Path, secret_arn: str) -> tuple[str | None, str]:
    """The login this host's owner lets `secret_arn` change here, or None and why not."""
    done = subprocess.run([sys.executable, "-I", "-c", _ENROLLED_PROGRAM, "enrolled", str(enrolment_file), secret_arn],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None, done.stderr
    master, login = done.stdout.split("\n")[:2]
    return (login, "") if not master else (None, "a master secret is not simulated\n")


class StandInHost:
    """A database host in memory for one login: it holds the login's password and answers `set`
    and `verify` as the host scripts do (the version read from Secrets Manager, the result line
    last), after a delay drawn for each command. A cancelled command changes nothing. With an
    enrolment file (the shared layout) a `set` changes the login only for a secret listed there, for
    the login listed (exit 3 otherwise, as hosts/linux/flow.sh)."""

    def __init__(self, password: str, read_version: Any, delay_s: Any, enrolment_file: Path | None = None):
        self.password = password
        self._read_version = read_version     # (secret ARN, version id) -> the version's JSON or None
        self._delay_s = delay_s
        self._enrolment_file = enrolment_file
        self._lock = threading.Lock()

    def __call__(self, parameters: dict[str, list[str]], cancel: threading.Event) -> tuple[str, int, str, str]:
        action, arn, version = (parameters[k][0] for k in ("Action", "SecretId", "VersionId"))
        if cancel.wait(self._delay_s()):
            return "Cancelled", -1, "", ""
        value = self._read_version(arn, version)
        if value is None or not isinstance(value.get("password"), str):
            return "Failed", 4, "", "cannot read the secret version\n"
        if action == "set" and self._enrolment_file is not None:
            login, refusal = enrolled_login(self._enrolment_file, arn)
            if login is None or value.get("username") not in (login, f"{login}_clone"):
                return "Failed", 3, "", refusal or f"this host lets the secret change only '{login}'\n"
        with self._lock:
            if action == "set":
                outcome = "unchanged" if self.password == value["password"] else "changed"
                self.password = value["password"]
            elif self.password != value["password"]:
                return "Failed", 5, "", "the database refused the password\n"
            else:
                outcome = "verified"
        return "Success", 0, f"ROTATOR-RESULT action={action} version={version} outcome={outcome}\n", ""


@dataclass
class Enrolled:
    arn: str
    username: str
    stand_ins: list[StandInHost] = field(default_factory=list)
    server: Any = None                        # a real database server, for the real subset
    attempts: int = 0                         # invocations of failed steps again (Lambda's retries)
    ok: bool = False
    finished_at: float | None = None


@dataclass
class FleetOptions:
    secrets: int = 20
    hosts: int = 1                  # stand-in hosts per secret
    real: int = 2                   # secrets on the real databases (half PostgreSQL, half MariaDB)
    concurrency: int = 10           # function processes at most (reserved concurrency; make fleet's own stack)
    spread_s: float = 10.0          # RotateSecret calls spread over this much of the window's start
    host_delay_s: float = 3.0       # a stand-in answers after 0.5x to 1.5x this
    send_rate: float = 5.0
    poll_rate: float = 10.0
    secrets_write_rate: float = 50.0
    quotas: bool = True
    retry_delays_s: tuple[float, ...] = (60.0, 120.0)
    bootstrap: str | None = None
    seed: int = 1
    layout: str = "shared"          # "shared": template-fleet.yaml and a unit per secret; "single": template.yaml


def run_fleet(opts: FleetOptions) -> dict[str, Any]:
    """`make fleet`: a local stack of its own, with `opts.concurrency` function processes at most."""
    from local.stack import LocalStack

    with contextlib.ExitStack() as resources:
        template = TEMPLATES[opts.layout]
        stack = resources.enter_context(LocalStack(template=template, bootstrap=opts.bootstrap, max_concurrency=opts.concurrency,
                                                   host_poll_milliseconds=None))
        servers = _real_databases(stack, resources) if opts.real else {}
        return rotate_fleet(stack, opts, servers)


def rotate_fleet(stack: Any, opts: FleetOptions, servers: dict[str, tuple[Any, str, str]] | None = None,
                 prefix: str = "fleet") -> dict[str, Any]:
    """Enroll the fleet on `stack` (its function processes: the stack's max_concurrency), rotate it
    under the quotas, and report. `servers`: engine -> (server, instance id, dbname) for the real subset."""
    from local.names import ACCOUNT, REGION

    rng = random.Random(opts.seed)

    def read_version(arn: str, version: str) -> dict[str, Any] | None:
        # What the host's GetSecretValue returns; read in-process (reads are not metered).
        from moto.secretsmanager.models import secretsmanager_backends
        secret = secretsmanager_backends[ACCOUNT][REGION].secrets.get(arn)
        text = getattr(secret, "versions", {}).get(version, {}).get("secret_string") if secret else None
        return json.loads(text) if text else None

    def host_delay() -> float:
        return opts.host_delay_s * (0.5 + rng.random())

    fleet = _enroll(stack, opts, rng, read_version, host_delay, servers or {}, prefix)
    if opts.quotas:
        stack.faults.quotas = Quotas(assumed_limits(opts.send_rate, opts.poll_rate, opts.secrets_write_rate))
    try:
        mark = _Mark(calls=len(stack.faults.calls), auth=len(stack.auth_log), log_bytes=stack.log_path.stat().st_size,
                     monotonic=time.monotonic(), wall=time.time())
        for watcher in _start_window(stack, fleet, opts, rng):
            watcher.join()
        window_s = max((e.finished_at or mark.monotonic) for e in fleet) - mark.monotonic
    finally:
        stack.faults.quotas = None
    stack.ssm.wait_idle(30)
    return _report(stack, fleet, opts, mark, window_s)


@dataclass
class _Mark:
    """Where the window started, in each record the report reads."""
    calls: int              # the function's calls so far (stack.faults.calls)
    auth: int               # every request so far (stack.auth_log): the real hosts' own
    log_bytes: int          # the function's log
    monotonic: float        # the function pool's clock
    wall: float             # the calls' and requests' clock


def _real_databases(stack: Any, resources: contextlib.ExitStack) -> dict[str, tuple[Any, str, str]]:
    """A real PostgreSQL and a real MariaDB, each a host of the stack running the template's scripts."""
    from local.databases import MariaDBServer, PostgresServer
    servers = {}
    for engine, cls, iid, dbname in (("postgres", PostgresServer, "i-0f1ee70000000000a", "postgres"),
                                     ("mariadb", MariaDBServer, "i-0f1ee70000000000b", "information_schema")):
        server = resources.enter_context(cls())
        stack.register_instance(iid, "Linux", server.host_env())
        servers[engine] = (server, iid, dbname)
    return servers


def _enroll(stack: Any, opts: FleetOptions, rng: random.Random, read_version: Any, host_delay: Any,
            servers: dict[str, tuple[Any, str, str]], prefix: str) -> list[Enrolled]:
    """Each secret of the fleet with its hosts, enrolled as `opts.layout` enrols a login. A host
    starts with a password of its own: in the shared layout the secret holds the unit's placeholder
    until its first rotation, as deployed."""
    if Path(stack.template_path).resolve() != TEMPLATES[opts.layout]:
        raise ValueError(f"the {opts.layout} layout runs {TEMPLATES[opts.layout].name}, not {stack.template_path}")
    shared = opts.layout == "shared"
    fleet: list[Enrolled] = []
    for i in range(opts.secrets):
        username, unit = f"{prefix}_{i:04d}", f"{prefix}-{i:04d}"
        password = _password(rng)
        if i < opts.real and servers:
            engine = "postgres" if i % 2 == 0 else "mariadb"
            server, iid, dbname = servers[engine]
            server.create_login(username, password)
            if shared:
                arn = stack.enroll_login(unit, engine, username, [iid], port=server.port, dbname=dbname)
            else:
                arn = stack.create_db_secret(f"{prefix}/{username}", engine, server, username, password, [iid], dbname=dbname)
            fleet.append(Enrolled(arn, username, server=server))
            continue
        # Instance ids of the stand-ins: 17 hex digits, distinct per prefix, secret and host.
        base = int.from_bytes(prefix.encode()[:4].ljust(4, b"_"), "big") << 32
        ids = [f"i-{base + (i + 1) * 64 + h:017x}" for h in range(opts.hosts)]
        hosts = [StandInHost(password, read_version, host_delay, stack.enrolment_file(iid) if shared else None) for iid in ids]
        for iid, host in zip(ids, hosts, strict=True):
            stack.register_stand_in(iid, host)
        if shared:
            arn = stack.enroll_login(unit, "postgres", username, ids)
        else:
            value = {"engine": "postgres", "host": "127.0.0.1", "port": 5432, "username": username,
                     "password": password, "dbname": "postgres", "instanceIds": ids}
            arn = stack.create_db_secret(f"{prefix}/{username}", "postgres", None, username, password, ids,
                                         secret_string=json.dumps(value))
        fleet.append(Enrolled(arn, username, stand_ins=hosts))
    return fleet


def _start_window(stack: Any, fleet: list[Enrolled], opts: FleetOptions, rng: random.Random) -> list[threading.Thread]:
    """RotateSecret for every secret at a random moment of the window's first `spread_s`, and a
    watcher per rotation that invokes a failed step again after each retry delay."""
    moments = sorted((rng.uniform(0, opts.spread_s), e) for e in fleet) if fleet else []
    watchers: list[threading.Thread] = []
    sm = stack.client("secretsmanager")
    origin = time.monotonic()
    for moment, enrolled in sorted(moments, key=lambda m: m[0]):
        time.sleep(max(0.0, origin + moment - time.monotonic()))
        sm.rotate_secret(SecretId=enrolled.arn)
        t = threading.Thread(target=_follow, args=(stack, enrolled, opts), daemon=True)
        t.start()
        watchers.append(t)
    return watchers


def _follow(stack: Any, enrolled: Enrolled, opts: FleetOptions) -> None:
    rec = stack.wait_rotation(enrolled.arn, timeout_s=3600)
    failed = rec.failed_step.step if rec.failed_step else None
    ok = bool(rec.ok)
    for delay in opts.retry_delays_s:
        if ok or failed is None:
            break
        time.sleep(delay)
        enrolled.attempts += 1
        # Lambda invokes the failed step again; the steps after it follow as Secrets Manager goes on.
        start = [e["Step"] for e in rec.events].index(failed)
        failed = None
        for event in rec.events[start:]:
            result = stack.runtime.invoke(event, stack.function_timeout_s)
            rec.steps.append(_step_record(event, result))
            if not result.ok:
                failed = event["Step"]
                break
        ok = failed is None
    enrolled.ok = ok
    enrolled.finished_at = time.monotonic()


def _step_record(event: dict[str, Any], result: Any) -> Any:
    from local.rotation_driver import StepRecord
    return StepRecord(step=event["Step"], ok=result.ok, duration_s=result.duration_s, request_id=result.request_id,
                      error_type=result.error_type, error_message=result.error_message)


def _peak_concurrency(invocations: list[Any]) -> int:
    edges = []
    for inv in invocations:
        if inv.delivered_at is not None and inv.finished_at is not None:
            edges += [(inv.delivered_at, 1), (inv.finished_at, -1)]
    peak = current = 0
    for _, change in sorted(edges, key=lambda e: (e[0], e[1])):
        current += change
        peak = max(peak, current)
    return peak


HOLDS, LOCKED_OUT, PLACEHOLDER = "every host holds AWSCURRENT", "locked out", "still the unit's placeholder"


def hosts_state(enrolled: Enrolled, current: dict[str, Any]) -> str:
    """The lockout check of one secret, given its AWSCURRENT value: whether every host holds the
    password it names (a real database: whether it logs in)."""
    if current.get("passwordPlaceholder") is True:
        # A unit's secret whose first rotation did not finish: AWSCURRENT never named a password
        # anyone could log in with, so a host not holding it locks no one out (the rotation counts
        # as failed).
        return PLACEHOLDER
    if enrolled.server is not None:
        holds = [enrolled.server.can_login(current["username"], current["password"])]
    else:
        holds = [host.password == current["password"] for host in enrolled.stand_ins]
    return HOLDS if holds and all(holds) else LOCKED_OUT


def _timeline(stack: Any, fleet: list[Enrolled], mark: _Mark, window_s: float, invocations: list[Any]) -> dict[str, Any]:
    """The window in buckets (at most about 300): rotations finished, the function's SSM calls made
    and refused, and the function processes busy on average, in each."""
    bucket_s = max(1, math.ceil(window_s / 300))
    buckets = [{"completed": 0, "failed": 0, "calls": Counter(), "throttled": Counter(), "busy_s": 0.0}
               for _ in range(int(window_s // bucket_s) + 1)]

    def at(t: float) -> dict[str, Any]:
        return buckets[min(len(buckets) - 1, max(0, int(t // bucket_s)))]

    for enrolled in fleet:
        if enrolled.finished_at is not None:
            at(enrolled.finished_at - mark.monotonic)["completed" if enrolled.ok else "failed"] += 1
    for call in stack.faults.calls[mark.calls:]:
        if call.service == "ssm":
            bucket = at(call.at - mark.wall)
            bucket["calls"][call.operation] += 1
            if call.outcome == THROTTLED:
                bucket["throttled"][call.operation] += 1
    for inv in invocations:
        if inv.delivered_at is None or inv.finished_at is None:
            continue
        start, end = inv.delivered_at - mark.monotonic, inv.finished_at - mark.monotonic
        for k in range(max(0, int(start // bucket_s)), min(len(buckets) - 1, int(end // bucket_s)) + 1):
            buckets[k]["busy_s"] += max(0.0, min(end, (k + 1) * bucket_s) - max(start, k * bucket_s))
    return {"bucket_s": bucket_s, "buckets": [
        {"t": k * bucket_s, "completed": b["completed"], "failed": b["failed"], "ssm_calls": dict(b["calls"]),
         "ssm_throttled": dict(b["throttled"]), "busy_functions": round(b["busy_s"] / bucket_s, 2)}
        for k, b in enumerate(buckets)]}


def _report(stack: Any, fleet: list[Enrolled], opts: FleetOptions, mark: _Mark, window_s: float) -> dict[str, Any]:
    calls = stack.faults.calls[mark.calls:]
    made = Counter(c.operation for c in calls)
    throttled = Counter(c.operation for c in calls if c.outcome == THROTTLED)
    n = max(1, len(fleet))
    states: dict[str, list[str]] = {LOCKED_OUT: [], PLACEHOLDER: [], HOLDS: []}
    sm = stack.client("secretsmanager")    # one client: a session per secret costs minutes at N = 1,000
    for enrolled in fleet:
        current = json.loads(sm.get_secret_value(SecretId=enrolled.arn, VersionStage="AWSCURRENT")["SecretString"])
        states[hosts_state(enrolled, current)].append(enrolled.arn)
    lockouts, placeholders = states[LOCKED_OUT], states[PLACEHOLDER]
    invocations = [i for i in stack.runtime.invocations if i.queued_at >= mark.monotonic]
    busy_s = sum(i.finished_at - i.delivered_at for i in invocations if i.delivered_at is not None and i.finished_at is not None)
    # What the real hosts asked Secrets Manager themselves (the stand-ins read in-process): per host
    # and rotation, each real secret having one host.
    real = sum(e.server is not None for e in fleet)
    host_calls = Counter(r.action for r in stack.auth_log[mark.auth:] if r.principal == "host")
    per_rotation = {op: round(made[op] / n, 2) for op in REPORTED_CALLS if made[op]}
    other = sum(v for op, v in made.items() if op not in REPORTED_CALLS)
    if other:
        per_rotation["other"] = round(other / n, 2)
    return {
        "options": {k: v for k, v in vars(opts).items() if k != "bootstrap"} | {"bootstrap": opts.bootstrap or "./bootstrap"},
        "rotations": len(fleet),
        "completed": sum(e.ok for e in fleet),
        "completed_first_attempt": sum(e.ok and e.attempts == 0 for e in fleet),
        "failed": sum(not e.ok for e in fleet),
        "retried": sum(e.attempts > 0 for e in fleet),
        "throttled_calls": sum(throttled.values()),
        "throttled_by_api": dict(throttled),
        "calls_per_rotation": per_rotation,
        "calls": sum(made.values()),
        "window_s": round(window_s, 1),
        "peak_concurrent_functions": _peak_concurrency(invocations),
        "lockouts": len(lockouts),
        "locked_out": lockouts,
        "still_placeholders": len(placeholders),
        "layout": opts.layout,
        "function_memory_mb": stack.function_memory_mb,
        "invocations_per_rotation": round(len(invocations) / n, 2),
        "function_seconds_per_rotation": round(busy_s / n, 3),
        "log_bytes_per_rotation": round((stack.log_path.stat().st_size - mark.log_bytes) / n),
        "real_host_calls_per_rotation": {op: round(v / real, 2) for op, v in sorted(host_calls.items())} if real else {},
        "timeline": _timeline(stack, fleet, mark, window_s, invocations),
    }


def _markdown(results: dict[str, dict[str, Any]]) -> str:
    names = list(results)
    rows = [("rotations", "rotations"), ("completed", "completed"), ("completed_first_attempt", "completed on the first attempt"),
            ("failed", "failed"), ("retried", "retried"), ("throttled_calls", "throttled calls"),
            ("window_s", "time to finish the window (s)"), ("peak_concurrent_functions", "peak concurrent functions"),
            ("lockouts", "lockouts (a host not holding AWSCURRENT's password)"),
            ("still_placeholders", "secrets still on their unit's placeholder")]
    out = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key, label in rows:
        out.append(f"| {label} | " + " | ".join(str(results[n].get(key, "-")) for n in names) + " |")
    apis = [op for op in REPORTED_CALLS + ["other"] if any(op in results[n]["calls_per_rotation"] for n in names)]
    for op in apis:
        out.append(f"| {op} per rotation | " + " | ".join(str(results[n]["calls_per_rotation"].get(op, 0)) for n in names) + " |")
    for op in ("SendCommand", "ListCommandInvocations", "GetCommandInvocation", "PutSecretValue", "UpdateSecretVersionStage"):
        if any(results[n]["throttled_by_api"].get(op) for n in names):
            out.append(f"| {op} throttled | " + " | ".join(str(results[n]["throttled_by_api"].get(op, 0)) for n in names) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = FleetOptions()
    p.add_argument("--secrets", "-n", type=int, default=d.secrets)
    p.add_argument("--hosts", type=int, default=d.hosts, help="stand-in hosts per secret")
    p.add_argument("--real", type=int, default=d.real, help="secrets on the real PostgreSQL and MariaDB")
    p.add_argument("--concurrency", type=int, default=d.concurrency, help="function processes at most")
    p.add_argument("--spread", type=float, default=d.spread_s, help="seconds over which RotateSecret calls start")
    p.add_argument("--host-delay", type=float, default=d.host_delay_s)
    p.add_argument("--send-rate", type=float, default=d.send_rate, help="SendCommand per second (assumed)")
    p.add_argument("--poll-rate", type=float, default=d.poll_rate,
                   help="ListCommandInvocations, and GetCommandInvocation, per second each (assumed)")
    p.add_argument("--secrets-write-rate", type=float, default=d.secrets_write_rate)
    p.add_argument("--no-quotas", action="store_true", help="meter nothing (calls per rotation unthrottled)")
    p.add_argument("--retry-delays", default=",".join(str(int(x)) for x in d.retry_delays_s),
                   help="seconds before each new invocation of a failed step (Lambda: 60,120)")
    p.add_argument("--bootstrap", default=None, help="the function to run (default ./bootstrap)")
    p.add_argument("--compare", default=None, metavar="BOOTSTRAP",
                   help="also run this function (e.g. the previous binary) on the same fleet, and print both")
    p.add_argument("--layout", choices=sorted(TEMPLATES), default=d.layout,
                   help="shared: template-fleet.yaml, a unit per secret; single: template.yaml (a function older than the shared layout)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--json", default=None, help="write the report(s) here")
    args = p.parse_args(argv)
    opts = FleetOptions(secrets=args.secrets, hosts=args.hosts, real=min(args.real, args.secrets), concurrency=args.concurrency,
                        spread_s=args.spread, host_delay_s=args.host_delay, send_rate=args.send_rate,
                        poll_rate=args.poll_rate, secrets_write_rate=args.secrets_write_rate, quotas=not args.no_quotas,
                        retry_delays_s=tuple(float(x) for x in args.retry_delays.split(",") if x.strip()),
                        bootstrap=args.bootstrap, seed=args.seed, layout=args.layout)
    if args.compare:
        # One LocalStack per process (moto is process-wide): each function in a process of its own.
        results = {}
        for name, bootstrap in (("before", args.compare), ("after", args.bootstrap)):
            child = [a for a in (argv if argv is not None else sys.argv[1:])]
            child = _without(child, "--compare", "--json", "--bootstrap")
            out = Path(f".local-state/fleet-{name}.json")
            out.parent.mkdir(exist_ok=True)
            cmd = [sys.executable, "-m", "local.fleet", *child, "--json", str(out)]
            if bootstrap:
                cmd += ["--bootstrap", bootstrap]
            subprocess.run(cmd, check=False, cwd=REPO)
            results[name] = json.loads(out.read_text())
    else:
        results = {"run": run_fleet(opts)}
    print(json.dumps(results, indent=2))
    print(_markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results["run"] if "run" in results else results, indent=2))
    # The run under test decides the exit status (with --compare, the previous binary may fail).
    last = list(results.values())[-1]
    return 0 if last["failed"] == 0 and last["lockouts"] == 0 else 1


def _without(argv: list[str], *options: str) -> list[str]:
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a in options:
            skip = True
            continue
        if any(a.startswith(o + "=") for o in options):
            continue
        out.append(a)
    return out


if __name__ == "__main__":
    sys.exit(main())
