"""What a rotated secret costs a month in each layout (docs/FLEET.md, "Cost per secret"), computed
from stated prices and from what `make fleet` measured per rotation, never typed in by hand.

    python3 -m local.fleet_cost docs/fleet.json docs/fleet-single.json    # the tables, in Markdown

Two parts:
- **Resources by the month**: the secret, the customer-managed KMS keys and the CloudWatch alarm.
  The single-stack layout (template.yaml) has a stack per secret, so each secret pays for its own
  two keys (the secret's and the alert topic's) and its alarm; the shared layout
  (template-fleet.yaml) has one of each for the whole fleet, divided among its N secrets, and a
  unit (template-secret.yaml) holds nothing billed but its secret.
- **Use by the rotation**, times the rotations a month of the schedule: Secrets Manager API calls
  (the function's, as the run counted them, and its hosts' own reads, as the run's real hosts made
  them), KMS requests, Lambda requests and GB-seconds, log ingestion, the EMF metrics a rotation
  publishes, SNS alerts. SSM Run Command on EC2 instances is free.

Free tiers are left out: they are per account, whatever the layout.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DAYS_PER_MONTH = 365.25 / 12
GB = 2 ** 30
HOURS_PER_MONTH = 730              # AWS's month for pro-rated prices


@dataclass(frozen=True)
class Prices:
    """US East (N. Virginia), on demand: the prices of the pages in SOURCES, as assumed here (the
    table is only as current as they are; pass others to monthly_cost_per_secret)."""
    secret_month: float = 0.40                 # per secret per month
    secrets_manager_call: float = 0.05 / 10_000
    kms_key_month: float = 1.00                # per customer-managed key per month
    kms_request: float = 0.03 / 10_000         # symmetric requests
    alarm_month: float = 0.10                  # standard-resolution metric alarm
    lambda_request: float = 0.20 / 1_000_000
    lambda_gb_second: float = 0.0000166667     # x86_64
    log_gb: float = 0.50                       # CloudWatch Logs ingestion (standard)
    metric_month: float = 0.30                 # custom metric (EMF), pro rata by the hour it receives data
    sns_publish: float = 0.50 / 1_000_000
    run_command: float = 0.0                   # SSM Run Command on EC2 instances


SOURCES = {
    "Secrets Manager": "https://aws.amazon.com/secrets-manager/pricing/",
    "KMS": "https://aws.amazon.com/kms/pricing/",
    "CloudWatch (alarms, logs, metrics)": "https://aws.amazon.com/cloudwatch/pricing/",
    "Lambda": "https://aws.amazon.com/lambda/pricing/",
    "SNS": "https://aws.amazon.com/sns/pricing/",
    "Systems Manager (Run Command)": "https://aws.amazon.com/systems-manager/pricing/",
}

# What each layout's stacks hold that is billed by the month (the templates' AWS::KMS::Key and
# AWS::CloudWatch::Alarm; pytests/fleet/test_fleet_cost.py checks these against the templates).
STACK_RESOURCES = {"single": {"keys": 2, "alarms": 1}, "shared": {"keys": 2, "alarms": 1}}
# The metrics one successful rotation publishes (docs/deploying.md, "Metrics"): StepDuration by Step
# and by Step and Outcome for each of the four steps, and RotationDuration.
METRICS_PER_ROTATION = 4 + 4 + 1
# Secrets Manager asks KMS once per GetSecretValue (to decrypt the version's data key) and once
# per PutSecretValue (to make one).
KMS_CALLS = ("GetSecretValue", "PutSecretValue")
SECRETS_MANAGER_CALLS = ("GetSecretValue", "DescribeSecret", "GetRandomPassword", "PutSecretValue", "UpdateSecretVersionStage")


@dataclass(frozen=True)
class RotationUse:
    """One rotation's billed use, from a run of `make fleet`."""
    secrets_manager_calls: float
    kms_requests: float
    lambda_requests: float
    lambda_gb_seconds: float
    log_bytes: float
    sns_publishes: float
    run_commands: float
    metrics: float = METRICS_PER_ROTATION


def rotation_use(run: dict[str, Any], hosts_per_secret: int = 1) -> RotationUse:
    """A run's report (local/fleet.py) as one rotation's use, with `hosts_per_secret` hosts each
    making the calls the run's real hosts made per rotation."""
    function = run["calls_per_rotation"]
    hosts = run["real_host_calls_per_rotation"]
    if not hosts:
        raise ValueError("the run had no real host: its hosts' own calls are not measured (run it with --real)")

    def calls(names: tuple[str, ...]) -> float:
        return sum(function.get(n, 0) for n in names) + hosts_per_secret * sum(hosts.get(n, 0) for n in names)

    return RotationUse(secrets_manager_calls=calls(SECRETS_MANAGER_CALLS), kms_requests=calls(KMS_CALLS),
                       lambda_requests=run["invocations_per_rotation"],
                       lambda_gb_seconds=run["function_seconds_per_rotation"] * run["function_memory_mb"] / 1024,
                       log_bytes=run["log_bytes_per_rotation"], sns_publishes=function.get("Publish", 0),
                       run_commands=function.get("SendCommand", 0))


def rotations_per_month(schedule: str) -> float:
    """Rotations a month of a `rate(N days)` schedule (the template's RotationScheduleExpression)."""
    days = re.fullmatch(r"rate\((\d+) days?\)", schedule)
    if not days or int(days[1]) < 1:
        raise ValueError(f"{schedule!r}: only rate(N days) schedules are costed here")
    return DAYS_PER_MONTH / int(days[1])


def monthly_cost_per_secret(layout: str, secrets: int, use: RotationUse, rotations: float,
                            prices: Prices = Prices()) -> dict[str, float]:
    """Dollars a month per secret, by item, for `secrets` secrets in `layout` ("single": a stack
    each; "shared": one shared stack and a unit each) rotating `rotations` times a month each."""
    stacks_per_secret = {"single": 1.0, "shared": 1.0 / secrets}[layout]
    held = STACK_RESOURCES[layout]
    return {
        "secret": prices.secret_month,
        "KMS keys": held["keys"] * prices.kms_key_month * stacks_per_secret,
        "alarm": held["alarms"] * prices.alarm_month * stacks_per_secret,
        "Secrets Manager API": rotations * use.secrets_manager_calls * prices.secrets_manager_call,
        "KMS requests": rotations * use.kms_requests * prices.kms_request,
        "Lambda": rotations * (use.lambda_requests * prices.lambda_request + use.lambda_gb_seconds * prices.lambda_gb_second),
        "logs": rotations * use.log_bytes / GB * prices.log_gb,
        # At most: each rotation alone in its hour. Rotations in the same hour share the metrics' hour.
        "metrics": rotations * use.metrics * prices.metric_month / HOURS_PER_MONTH,
        "SNS": rotations * use.sns_publishes * prices.sns_publish,
        "SSM Run Command": rotations * use.run_commands * prices.run_command,
    }


def markdown(runs: dict[str, dict[str, Any]], schedule: str = "rate(85 days)", sizes: tuple[int, ...] = (1, 10, 100, 1000),
             hosts_per_secret: int = 1) -> str:
    """The cost tables of docs/FLEET.md: the total per secret for each layout and size, then each
    item at the largest size, from `runs` (layout -> that layout's run report)."""
    rotations = rotations_per_month(schedule)
    uses = {layout: rotation_use(run, hosts_per_secret) for layout, run in runs.items()}
    layouts = [layout for layout in ("single", "shared") if layout in uses]
    costs = {(layout, n): monthly_cost_per_secret(layout, n, uses[layout], rotations) for layout in layouts for n in sizes}
    out = [f"Per secret per month, {schedule} ({rotations:.3f} rotations a month), {hosts_per_secret} host(s) per secret:", "",
           "| secrets | " + " | ".join(f"{layout} layout" for layout in layouts) + " |",
           "|---:|" + "---:|" * len(layouts)]
    for n in sizes:
        out.append(f"| {n:,} | " + " | ".join(f"${sum(costs[layout, n].values()):.4f}" for layout in layouts) + " |")
    largest = sizes[-1]
    out += ["", f"By item at {largest:,} secrets:", "", "| item | " + " | ".join(layouts) + " |", "|---|" + "---:|" * len(layouts)]
    for item in costs[layouts[0], largest]:
        out.append(f"| {item} | " + " | ".join(f"${costs[layout, largest][item]:.6f}" for layout in layouts) + " |")
    out += ["", "Per rotation, as measured (Secrets Manager calls include the hosts' own reads):", "",
            "| use | " + " | ".join(layouts) + " |", "|---|" + "---:|" * len(layouts)]
    for field, label in (("secrets_manager_calls", "Secrets Manager API calls"), ("kms_requests", "KMS requests"),
                         ("lambda_requests", "Lambda requests"), ("lambda_gb_seconds", "Lambda GB-seconds"),
                         ("log_bytes", "log bytes"), ("sns_publishes", "SNS publishes"), ("metrics", "EMF metrics")):
        out.append(f"| {label} | " + " | ".join(f"{getattr(uses[layout], field):,.2f}" for layout in layouts) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="make fleet's --json reports, one per layout")
    p.add_argument("--schedule", default="rate(85 days)", help="the secrets' RotationScheduleExpression (rate(N days))")
    p.add_argument("--hosts", type=int, default=1, help="hosts per secret")
    args = p.parse_args(argv)
    runs = {}
    for path in args.runs:
        run = json.loads(path.read_text())
        runs[run["layout"]] = run
    print(markdown(runs, args.schedule, hosts_per_secret=args.hosts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
