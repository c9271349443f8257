"""The arithmetic of the cost table in docs/FLEET.md (local/fleet_cost.py). The expected values are
worked out by hand in the comments from the prices the module states, not taken from its output."""

from __future__ import annotations

import json

import pytest

from local.cfn import load_template
from local.fleet_cost import STACK_RESOURCES, RotationUse, markdown, monthly_cost_per_secret, rotation_use, rotations_per_month
from local.stack import REPO

# Two rotations a month of a rotation that makes 20 Secrets Manager calls, 10 KMS requests, 4 Lambda
# requests of 3 GB-s in all, a thousandth of a GB of log, no alert, 3 commands and 9 metrics.
USE = RotationUse(secrets_manager_calls=20, kms_requests=10, lambda_requests=4, lambda_gb_seconds=3,
                  log_bytes=2 ** 30 / 1000, sns_publishes=0, run_commands=3, metrics=9)
# Per month, the use alone:
#   Secrets Manager  2 x 20 x $0.05/10,000               = 0.0002
#   KMS requests     2 x 10 x $0.03/10,000               = 0.00006
#   Lambda           2 x (4 x $0.20/1e6 + 3 x $0.0000166667) = 2 x 0.0000508001 = 0.0001016002
#   logs             2 x 0.001 GB x $0.50                = 0.001
#   metrics          2 x 9 x $0.30 / 730 hours           = 0.0073972603
#   SNS, Run Command 0
#   sum                                                  = 0.0087588605
USE_PER_MONTH = 0.0087588605


def test_rotations_a_month_of_a_rate_schedule():
    # A month is 365.25 / 12 = 30.4375 days.
    assert rotations_per_month("rate(85 days)") == pytest.approx(0.3580882, rel=1e-6)
    assert rotations_per_month("rate(30 days)") == pytest.approx(1.0145833, rel=1e-6)
    assert rotations_per_month("rate(1 day)") == pytest.approx(30.4375)
    with pytest.raises(ValueError):
        rotations_per_month("cron(0 16 1,15 * ? *)")


@pytest.mark.parametrize("layout, secrets, resources", [
    ("single", 1, 0.40 + 2.00 + 0.10),         # a stack each: its secret, two keys, an alarm
    ("single", 1000, 0.40 + 2.00 + 0.10),      # the same at any size
    ("shared", 1, 0.40 + 2.00 + 0.10),         # one secret pays the shared stack alone
    ("shared", 10, 0.40 + 0.20 + 0.01),        # $2.10 of shared stack over 10 secrets
    ("shared", 1000, 0.40 + 0.002 + 0.0001),   # ... over 1,000
])
def test_the_cost_per_secret_a_month(layout: str, secrets: int, resources: float):
    items = monthly_cost_per_secret(layout, secrets, USE, rotations=2)
    assert sum(items.values()) == pytest.approx(resources + USE_PER_MONTH, rel=1e-9)
    assert items["metrics"] == pytest.approx(0.0073972603, rel=1e-8)
    assert items["SSM Run Command"] == 0


def test_a_runs_report_as_one_rotations_use():
    run = {"calls_per_rotation": {"GetSecretValue": 7, "DescribeSecret": 4, "GetRandomPassword": 1, "PutSecretValue": 1,
                                  "UpdateSecretVersionStage": 2, "SendCommand": 3, "ListCommandInvocations": 12, "Publish": 0.5},
           "real_host_calls_per_rotation": {"GetSecretValue": 3, "DescribeSecret": 2},
           "invocations_per_rotation": 4, "function_seconds_per_rotation": 10, "function_memory_mb": 512,
           "log_bytes_per_rotation": 8000}
    use = rotation_use(run, hosts_per_secret=2)
    assert use.secrets_manager_calls == 15 + 2 * 5       # the function's 15, each host's 5 (ListCommandInvocations is SSM's)
    assert use.kms_requests == (7 + 1) + 2 * 3            # every GetSecretValue and PutSecretValue
    assert use.lambda_gb_seconds == 5                     # 10 s at half a GB
    assert (use.lambda_requests, use.log_bytes, use.sns_publishes, use.run_commands) == (4, 8000, 0.5, 3)
    with pytest.raises(ValueError):
        rotation_use(dict(run, real_host_calls_per_rotation={}))


def test_the_billed_resources_are_the_templates():
    def count(template: str, kind: str) -> int:
        resources = load_template(REPO / template)["Resources"].values()
        return sum(resource.get("Type") == kind for resource in resources)

    for layout, template in (("single", "template.yaml"), ("shared", "template-fleet.yaml")):
        assert STACK_RESOURCES[layout] == {"keys": count(template, "AWS::KMS::Key"), "alarms": count(template, "AWS::CloudWatch::Alarm")}
    # A unit holds nothing billed by the month but its secret.
    assert count("template-secret.yaml", "AWS::KMS::Key") == count("template-secret.yaml", "AWS::CloudWatch::Alarm") == 0


def test_fleet_md_holds_the_tables_computed_from_the_committed_runs():
    """docs/FLEET.md's cost tables are local/fleet_cost.py's from the runs committed beside it
    (docs/fleet.json, the shared layout's make fleet N=1000; docs/fleet-single.json, the single
    stack's): regenerate them with `python3 -m local.fleet_cost docs/fleet.json docs/fleet-single.json`."""
    runs = {}
    for name in ("fleet.json", "fleet-single.json"):
        run = json.loads((REPO / "docs" / name).read_text())
        runs[run["layout"]] = run
    assert set(runs) == {"shared", "single"}
    assert markdown(runs) in (REPO / "docs" / "FLEET.md").read_text()
