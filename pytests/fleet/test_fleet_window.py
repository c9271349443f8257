"""The fleet simulator's short form (`make fleet` is the long one, local/fleet.py), on the shared
layout: 20 secrets, each enrolled as its own unit (template-secret.yaml) with two stand-in hosts that
list it in their enrolment files, rotated within one window by the real function of the package's
template-fleet.yaml stack (its 10 function processes), under account-wide quotas low enough that SSM
throttles it. Every rotation completes on its first attempt (a throttled call fails no step) and
every host holds the password AWSCURRENT names. No time is asserted. (`make fleet` adds logins on
the real PostgreSQL and MariaDB.)
"""

from __future__ import annotations

from local.fleet import FleetOptions, rotate_fleet
from local.stack import STACK_NAME, LocalStack


def test_a_throttled_fleet_of_enrolled_units_rotates_every_secret_with_no_lockout(fleet: LocalStack):
    opts = FleetOptions(secrets=20, hosts=2, real=0, spread_s=1.0, host_delay_s=1.0, send_rate=4.0, poll_rate=8.0,
                        retry_delays_s=())
    report = rotate_fleet(fleet, opts, prefix="shortfleet")
    # Each secret was a unit of the shared stack: named under its prefix, tagged for it, on its key.
    assert report["layout"] == "shared"
    listed = fleet.client("secretsmanager").list_secrets(
        Filters=[{"Key": "name", "Values": [f"rotator/{STACK_NAME}/shortfleet-"]}], MaxResults=100)["SecretList"]
    assert len(listed) == 20, [s["Name"] for s in listed]
    for secret in listed:
        assert {"Key": "RotatorFleet", "Value": STACK_NAME} in secret["Tags"], secret
        assert secret["KmsKeyId"] == fleet.exports()[f"{STACK_NAME}-SecretKeyArn"], secret
    # The quotas bit: calls were refused (else this proves nothing about throttling).
    assert report["throttled_calls"] > 0, report
    assert report["completed_first_attempt"] == report["rotations"] == 20, report
    assert report["failed"] == 0 and report["lockouts"] == 0, report
