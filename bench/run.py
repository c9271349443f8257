"""`make bench`: our rotation function against the one a user would write in Python instead.

The peer (bench/peer/) is a boto3 rotation function in the style of AWS's rotation templates, run by
awslambdaric, AWS's Python runtime interface client, behind its own bootstrap. Both run on the
same local stack (moto with signature checks, the Lambda Runtime API of local/runtime_api.py, the
SSM documents of template.yaml run for real against a real PostgreSQL), alternating, RUNS times
each. One run of a function:

  1. its code is (re)deployed: the next invocation starts a fresh process, a cold start;
  2. RotateSecret, and the four steps run in that fresh process (the cold rotation);
  3. RotateSecret again, all four steps warm (the warm rotation);
  4. the process's peak RSS (VmHWM) is read while it waits for the next event.

Then the SigV4 signing rate (`sigv4-bench` against botocore's SigV4Auth on bench/sigv4-requests.json,
alternating), and the deployment packages. The report is docs/BENCHMARKS.md with the chart
docs/benchmarks.svg (bench/chart.py); the raw samples go to docs/benchmarks.json.

Usage: python3 -m bench.run [--runs N] [--out DIR] [--report-from RESULTS_JSON]
(--out writes the report, chart and results to DIR instead: the tiny run of `make test` does;
--report-from rewrites the report from saved samples, e.g. after editing bench/notes.md.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import chart

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
PEER_DIR = BENCH / "peer"
PEER_REQUIREMENTS = PEER_DIR / "requirements.txt"
WORK = REPO / ".build-bench"
PEER_VENV = WORK / "peer-venv"
PEER_PYTHON = PEER_VENV / "bin" / "python3"
OURS_PACKAGE = REPO / "dist" / "rotator"
OURS_ZIP = REPO / "dist" / "rotator.zip"
SIGV4_BENCH = REPO / ".build" / "release" / "sigv4-bench"
SIGV4_REQUESTS = BENCH / "sigv4-requests.json"
NOTES = BENCH / "notes.md"          # what was done where a target was missed, written by hand
INSTANCE_ID = "i-0be0c0000000000b1"
STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]
# SDK packages the peer ships when it brings its own SDK (awslambdaric is the runtime: left out).
PEER_SDK = ("boto3", "botocore")


class BenchError(RuntimeError):
    pass


@dataclass(frozen=True)
class Contender:
    name: str          # "ours" | "peer"
    command: list[str]


# ------------------------------------------------------------------------------------ set-up
def ensure_peer_runtime() -> None:
    """The peer's runtime (awslambdaric + boto3, pinned) in its own virtualenv, rebuilt when the
    requirements change."""
    stamp = PEER_VENV / ".requirements-sha256"
    wanted = hashlib.sha256(PEER_REQUIREMENTS.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted and PEER_PYTHON.exists():
        return
    shutil.rmtree(PEER_VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    subprocess.run([str(PEER_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "-r", str(PEER_REQUIREMENTS)], check=True)
    stamp.write_text(wanted)


def check_ours() -> None:
    for path, how in ((OURS_PACKAGE / "bootstrap", "make package"), (OURS_ZIP, "make package"),
                      (SIGV4_BENCH, "make build")):
        if not path.exists():
            raise BenchError(f"{path} is missing: run `{how}` first (make bench does)")


def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.strip()


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines()
                      if line.startswith("MemTotal")))
    try:
        swift = sh("swift", "--version").splitlines()[0]
    except (OSError, subprocess.CalledProcessError):
        swift = "unknown"
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gib": round(mem_kb / 2**20, 1),
            "kernel": platform.release(), "os": platform.freedesktop_os_release().get("PRETTY_NAME", ""),
            "python": platform.python_version(), "swift": swift,
            "load_at_start": os.getloadavg(), "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}


# ------------------------------------------------------------------------------------ rotations
def peak_rss_mib(pid: int) -> float:
    """VmHWM: the most resident memory the process has had since it started."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"no VmHWM for process {pid}")


def rotate(stack: Any, arn: str) -> Any:
    """RotateSecret as the operator would, and the record of its four steps once they are done."""
    before = len(stack.rotations)
    stack.client("secretsmanager").rotate_secret(SecretId=arn)
    record = stack.wait_rotation(arn)
    if len(stack.rotations) == before or not record.ok:
        failed = record.failed_step
        raise BenchError(f"rotation of {arn} failed: {failed.step if failed else record.error}: "
                         f"{failed.error_message if failed else ''}\n{stack.function_log()[-3000:]}")
    return record


def step_invocations(stack: Any, record: Any) -> dict[str, Any]:
    by_id = {inv.request_id: inv for inv in stack.runtime.invocations}
    return {step.step: by_id[step.request_id] for step in record.steps}


def ssm_reactions_ms(stack: Any, record: Any) -> list[float]:
    """For setSecret and testSecret: from the moment the host's command completed (the SSM
    emulator's end time of the last instance) to the moment the step answered the Runtime API."""
    invocations = step_invocations(stack, record)
    reactions = []
    for step, action in (("setSecret", "set"), ("testSecret", "verify")):
        # The step's own command, sent before it answered: our finishSecret later sends a `set` of
        # the same version too (its settle).
        invocation = invocations[step]
        commands = [c for c in stack.commands
                    if c.parameters.get("VersionId") == [record.token] and c.action == action
                    and c.requested_at.timestamp() <= invocation.answered_at]
        if len(commands) != 1:
            raise BenchError(f"{step} of {record.token} sent {len(commands)} {action} commands, expected 1")
        ended = max(inv.ended_at for inv in commands[0].invocations.values())
        reactions.append((invocation.answered_at - ended.timestamp()) * 1000)
    return reactions


def handler_ms(invocation: Any) -> float:
    """From the event's delivery (its /next answered) to the step's answer."""
    return (invocation.finished_at - invocation.delivered_at) * 1000


def one_run(stack: Any, contender: Contender, arn: str) -> dict[str, Any]:
    stack.runtime.replace_command(contender.command)
    cold = rotate(stack, arn)
    pid = stack.runtime.proc.pid
    warm = rotate(stack, arn)
    if stack.runtime.proc is None or stack.runtime.proc.pid != pid:
        raise BenchError(f"{contender.name}: the process changed between the two rotations")
    start = next(s for s in stack.runtime.starts if s["pid"] == pid)
    cold_steps, warm_steps = step_invocations(stack, cold), step_invocations(stack, warm)
    if not cold.steps[0].cold_start or any(s.cold_start for s in warm.steps):
        raise BenchError(f"{contender.name}: the first rotation was not a cold start, or the second was")
    return {
        "cold_start_ms": start["init_duration_s"] * 1000,
        "cold_start_cpu_ms": start["init_cpu_s"] * 1000,
        "peak_rss_mib": peak_rss_mib(pid),
        "first_create_ms": handler_ms(cold_steps["createSecret"]),
        "warm_create_ms": handler_ms(warm_steps["createSecret"]),
        "cold_rotation_ms": (cold.finished_at - cold.started_at) * 1000,
        "warm_rotation_ms": (warm.finished_at - warm.started_at) * 1000,
        "ssm_reaction_ms": ssm_reactions_ms(stack, cold) + ssm_reactions_ms(stack, warm),
    }


def measure_rotations(contenders: list[Contender], runs: int) -> dict[str, list[dict[str, Any]]]:
    from local.databases import PostgresServer
    from local.stack import LocalStack

    samples: dict[str, list[dict[str, Any]]] = {c.name: [] for c in contenders}
    with PostgresServer() as pg, LocalStack(bootstrap=OURS_PACKAGE / "bootstrap") as stack:
        stack.register_instance(INSTANCE_ID, "Linux", pg.host_env())
        arns = {}
        for c in contenders:
            user, password = f"bench_{c.name}", secrets.token_urlsafe(24)
            pg.create_login(user, password)
            arns[c.name] = stack.create_db_secret(f"bench/{c.name}", "postgres", pg, user, password,
                                                  [INSTANCE_ID], dbname="postgres")
        for n in range(runs):
            # Alternate which goes first, so a drift of the machine's load hits both alike.
            for c in contenders if n % 2 == 0 else contenders[::-1]:
                samples[c.name].append(one_run(stack, c, arns[c.name]))
                print(f"  run {n + 1}/{runs} {c.name}: cold start {samples[c.name][-1]['cold_start_ms']:.1f} ms, "
                      f"warm rotation {samples[c.name][-1]['warm_rotation_ms']:.0f} ms", flush=True)
    return samples


# ------------------------------------------------------------------------------------ SigV4
def measure_sigv4(rounds: int, ours_signatures: int, peer_signatures: int) -> dict[str, Any]:
    """Signatures per CPU-second, alternating; both must sign the shared requests identically."""
    rates: dict[str, list[float]] = {"ours": [], "peer": []}
    authorizations: dict[str, list[str]] = {}
    commands = {"ours": [str(SIGV4_BENCH), str(SIGV4_REQUESTS), str(ours_signatures)],
                "peer": [str(PEER_PYTHON), str(BENCH / "sigv4_botocore.py"), str(SIGV4_REQUESTS), str(peer_signatures)]}
    for n in range(rounds):
        for name in ("ours", "peer") if n % 2 == 0 else ("peer", "ours"):
            out = json.loads(sh(*commands[name]))
            rates[name].append(out["perSecond"])
            authorizations[name] = out["authorizations"]
    if authorizations["ours"] != authorizations["peer"]:
        raise BenchError("the two signers disagree on the same requests:\n"
                         f"ours: {authorizations['ours']}\nbotocore: {authorizations['peer']}")
    return {"rates": rates, "requests": len(authorizations["ours"])}


# ------------------------------------------------------------------------------------ packages
def zip_stats(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as z:
        files = [i for i in z.infolist() if not i.is_dir()]
    return {"bytes": path.stat().st_size, "files": len(files)}


def zip_directory(source: Path, dest: Path) -> None:
    dest.unlink(missing_ok=True)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(source.rglob("*")):
            if path.is_file():
                z.write(path, path.relative_to(source))


def peer_packages() -> dict[str, Any]:
    """The peer's deployment package as AWS documents it for Python: the handler alone (the managed
    runtime's own boto3), and the handler with the SDK pinned beside it (`pip install --target`)."""
    handler_dir, sdk_dir = WORK / "peer-handler", WORK / "peer-with-sdk"
    pins = "\n".join(line for line in PEER_REQUIREMENTS.read_text().splitlines()
                     if line.split("==")[0].strip() in PEER_SDK)
    stamp = WORK / "peer-with-sdk.pins"
    if not (stamp.exists() and stamp.read_text() == pins and sdk_dir.is_dir()):
        shutil.rmtree(sdk_dir, ignore_errors=True)
        subprocess.run([str(PEER_PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        "--target", str(sdk_dir), *pins.split()], check=True)
        stamp.write_text(pins)
    shutil.rmtree(handler_dir, ignore_errors=True)
    handler_dir.mkdir(parents=True)
    out = {}
    for name, d in (("handler", handler_dir), ("with_sdk", sdk_dir)):
        shutil.copy(PEER_DIR / "lambda_function.py", d / "lambda_function.py")
        z = WORK / f"peer-{name}.zip"
        zip_directory(d, z)
        out[name] = zip_stats(z)
    return out


# ------------------------------------------------------------------------------------ report
def median(values: list[float]) -> float:
    return statistics.median(values)


def figures(samples: dict[str, list[dict[str, Any]]], sigv4: dict[str, Any],
            packages: dict[str, Any]) -> list[dict[str, Any]]:
    """The table: one row per figure, medians, the ratio ours / peer, the target and whether it holds."""
    def med(name: str, key: str) -> float:
        values = [v for s in samples[name] for v in (s[key] if isinstance(s[key], list) else [s[key]])]
        return median(values)

    rows = []

    def row(label: str, unit: str, ours: float, peer: float, target: str = "", met: bool | None = None,
            digits: int = 1) -> None:
        rows.append({"label": label, "unit": unit, "ours": ours, "peer": peer, "ratio": ours / peer,
                     "target": target, "met": met, "digits": digits})

    cold, cold_peer = med("ours", "cold_start_ms"), med("peer", "cold_start_ms")
    row("Cold start: process start to first `GET /next`", "ms", cold, cold_peer,
        "≤ 10 ms and ≥ 30× faster", cold <= 10 and cold_peer / cold >= 30)
    cold_cpu, cold_cpu_peer = med("ours", "cold_start_cpu_ms"), med("peer", "cold_start_cpu_ms")
    row("Cold start, CPU time used by then", "ms", cold_cpu, cold_cpu_peer,
        "the same, in CPU time", cold_cpu <= 10 and cold_cpu_peer / cold_cpu >= 30)
    rss = med("ours", "peak_rss_mib")
    row("Peak RSS (VmHWM), start through two rotations", "MiB", rss, med("peer", "peak_rss_mib"), "≤ 20 MiB", rss <= 20)
    row("`createSecret`, first invocation after start", "ms", med("ours", "first_create_ms"), med("peer", "first_create_ms"))
    row("`createSecret`, warm", "ms", med("ours", "warm_create_ms"), med("peer", "warm_create_ms"))
    row("Full rotation (4 steps), cold process", "ms", med("ours", "cold_rotation_ms"), med("peer", "cold_rotation_ms"), digits=0)
    row("Full rotation (4 steps), warm", "ms", med("ours", "warm_rotation_ms"), med("peer", "warm_rotation_ms"), digits=0)
    ssm = med("ours", "ssm_reaction_ms")
    row("SSM reaction: command completed to step answered", "ms", ssm, med("peer", "ssm_reaction_ms"),
        "≤ 250 ms", ssm <= 250, digits=0)
    ours_rate, peer_rate = median(sigv4["rates"]["ours"]), median(sigv4["rates"]["peer"])
    row("SigV4 signatures per CPU-second (botocore's SigV4Auth for the peer)", "/s", ours_rate, peer_rate,
        "≥ 10× the peer", ours_rate / peer_rate >= 10, digits=0)
    ours_zip = packages["ours"]
    row("Deployment package (zip), peer with its SDK", "MiB", ours_zip["bytes"] / 2**20,
        packages["peer"]["with_sdk"]["bytes"] / 2**20, "≤ 10 MiB", ours_zip["bytes"] <= 10 * 2**20, digits=2)
    row("Files in the package, peer with its SDK", "", ours_zip["files"], packages["peer"]["with_sdk"]["files"], digits=0)
    row("Deployment package (zip), peer's handler alone", "MiB", ours_zip["bytes"] / 2**20,
        packages["peer"]["handler"]["bytes"] / 2**20, digits=3)
    return rows


def fmt(value: float, digits: int) -> str:
    return f"{value:,.{digits}f}"


def ratio_text(r: dict[str, Any]) -> str:
    ratio = r["ratio"]
    if r["unit"] in ("ms", "MiB") and ratio < 1:
        return f"{ratio:.3g} ({1 / ratio:.3g}× less)"
    return f"{ratio:.3g}"


def render(rows: list[dict[str, Any]], results: dict[str, Any], chart_name: str) -> str:
    m = results["machine"]
    runs = results["runs"]
    table = ["| figure | ours | peer | ours / peer | target | met |", "|---|---:|---:|---:|---|---|"]
    for r in rows:
        unit = f" {r['unit']}" if r["unit"] else ""
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        table.append(f"| {r['label']} | {fmt(r['ours'], r['digits'])}{unit} | {fmt(r['peer'], r['digits'])}{unit} | "
                     f"{ratio_text(r)} | {r['target']} | {met} |")
    sig = results["sigv4"]
    return "\n".join([
        "# Benchmarks: our rotation function against a Python peer",
        "",
        "Written by `make bench` (`bench/run.py`); do not edit by hand. Medians over "
        f"{runs} alternating runs of each function"
        f" ({runs * 4} SSM reactions each: setSecret and testSecret of a cold and a warm rotation),"
        f" and over {len(sig['rates']['ours'])} alternating rounds of each signer.",
        "",
        "**The peer** (`bench/peer/`) is the function a user would write instead: Python with boto3 in the",
        "style of AWS's rotation templates (one function per step, the same guard), the same SSM documents",
        "(parameters `Action`/`SecretId`/`VersionId`, the `ROTATOR-RESULT` line of docs/host-contract.md),",
        "the same secret format and environment, waiting for each host with boto3's `command_executed`",
        "waiter and its defaults (a poll every 5 s); clients built once per process, as Lambda advises.",
        "It runs under `awslambdaric` (AWS's Python runtime interface client) behind its own `bootstrap`,",
        "pinned in `bench/peer/requirements.txt`. **Ours** runs from the deployment package (`make package`,",
        "unpacked in `dist/rotator`). Both run on the same local stack: moto with SigV4 and IAM checks,",
        "the Runtime API of `local/runtime_api.py`, and the template's SSM documents run for real against",
        "a real PostgreSQL (`local/ssm_emulator.py`, which answers `InvocationDoesNotExist` for the first",
        "0.3 s of a command, as SSM does).",
        "",
        *table,
        "",
        "How each figure is taken:",
        "- *Cold start*: from just before the process is spawned to the Runtime API's receipt of its first",
        "  `GET /2018-06-01/runtime/invocation/next` (the Init phase Lambda bills; `local/runtime_api.py`).",
        "  Its *CPU time* is what the process's threads had spent on a CPU by then (`/proc/<pid>/task/*/schedstat`):",
        "  unlike the wall-clock figure it does not grow when the shared machine is busy.",
        "- *Peak RSS*: `VmHWM` of `/proc/<pid>/status` after the cold and the warm rotation of one process.",
        "- *createSecret*: from the event's delivery (its `/next` answered) to the step's answer; the first",
        "  invocation of a fresh process, and the same step in the following, warm, rotation.",
        "- *Full rotation*: from `RotateSecret` to the answer of `finishSecret`; *cold* includes the start.",
        "- *SSM reaction*: from the end of the host's command (the SSM emulator's end time) to the step's",
        "  answer to the Runtime API: how long the function takes to notice and report.",
        f"- *SigV4*: the {sig['requests']} requests of `bench/sigv4-requests.json` (a Secrets Manager, an SSM",
        "  and an SNS call) signed in a loop, each signature reading the clock afresh, per second of CPU time",
        "  (`sigv4-bench`, a separate executable over our `SigV4` module, against botocore's `SigV4Auth` in",
        "  `bench/sigv4_botocore.py`). Both produce the same `Authorization` headers for a fixed time, checked.",
        "- *Package*: ours is `dist/rotator.zip` (binary, `bootstrap`, the libraries Amazon Linux lacks). The",
        "  peer's is its handler with boto3/botocore installed beside it (`pip install --target`, how AWS",
        "  documents pinning an SDK version), or the handler alone when it relies on the managed runtime's",
        "  boto3. awslambdaric and Python itself are the runtime and are not counted.",
        "",
        f"![cold start and warm rotation, every run]({chart_name})",
        "",
        f"`{chart_name}` (from `bench/chart.py`) shows every run: cold starts (wall clock and CPU time) on",
        "logarithmic scales with the 10 ms target dashed, warm rotations on a linear one; the bar marks",
        "the median.",
        "",
        "## Where a target was missed, and what was done",
        "",
        "(Written by hand in `bench/notes.md`; `make bench` copies it here.)",
        "",
        NOTES.read_text().strip(),
        "",
        "## The machine",
        "",
        f"- {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB; {m['os']}, Linux {m['kernel']}",
        f"- {m['swift']}; Python {m['python']} (the peer's interpreter)",
        f"- load average at the start {', '.join(f'{x:.2f}' for x in m['load_at_start'])}, at the end "
        f"{', '.join(f'{x:.2f}' for x in results['load_at_end'])} (the machine is shared; the CPU-time figures are",
        "  the least sensitive to that)",
        f"- run at {m['date']}",
        "",
        "## Rerun",
        "",
        "    make bench                 # builds, packages, installs the peer's runtime, 20 runs each",
        "    make bench BENCH_RUNS=40   # more runs",
        "",
        "The raw samples are in `docs/benchmarks.json`; `python3 -m bench.run --report-from docs/benchmarks.json`",
        "writes the report and chart again from them (after editing `bench/notes.md`). `make test` runs the",
        "benchmark once with a count of 1 (`pytests/bench`), only to prove that it still works; it asserts no timing.",
        "",
    ])


def write_report(results: dict[str, Any], report_dir: Path) -> str:
    chart_name = "benchmarks.svg"
    rows = figures(results["samples"], results["sigv4"], results["packages"])
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / chart_name).write_text(chart.svg(results["samples"]))
    report = render(rows, results, chart_name)
    (report_dir / "BENCHMARKS.md").write_text(report)
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m bench.run", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=20, help="alternating runs of each function (default 20)")
    ap.add_argument("--sigv4-signatures", type=int, default=20000,
                    help="signatures per round for ours (botocore signs a tenth as many)")
    ap.add_argument("--out", type=Path, help="write report, chart and results here instead of docs/")
    ap.add_argument("--report-from", type=Path, metavar="RESULTS_JSON",
                    help="measure nothing: write the report and chart again from saved results")
    args = ap.parse_args(argv)
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    report_dir = args.out or REPO / "docs"

    if args.report_from:
        write_report(json.loads(args.report_from.read_text()), report_dir)
        print(f"report: {report_dir / 'BENCHMARKS.md'}")
        return 0

    check_ours()
    print("peer runtime ...", flush=True)
    ensure_peer_runtime()
    started = machine()
    contenders = [Contender("ours", [str(OURS_PACKAGE / "bootstrap")]),
                  Contender("peer", [str(PEER_DIR / "bootstrap")])]
    print(f"rotations: {args.runs} alternating runs each ...", flush=True)
    samples = measure_rotations(contenders, args.runs)
    print("SigV4 ...", flush=True)
    sigv4 = measure_sigv4(args.runs, args.sigv4_signatures, max(1, args.sigv4_signatures // 10))
    print("packages ...", flush=True)
    packages = {"ours": zip_stats(OURS_ZIP), "peer": peer_packages()}
    results = {"runs": args.runs, "machine": started, "load_at_end": os.getloadavg(),
               "samples": samples, "sigv4": sigv4, "packages": packages}
    report = write_report(results, report_dir)
    (report_dir / "benchmarks.json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(line for line in report.splitlines() if line.startswith("| ")))
    print(f"report: {report_dir / 'BENCHMARKS.md'}; samples: {report_dir / 'benchmarks.json'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
