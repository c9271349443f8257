"""The fleet simulator's short form (`make fleet` is the long one, local/fleet.py): 20 secrets with
two stand-in hosts each, rotated within one window by the real function on the suite's stack (its
10 function processes), under account-wide quotas low enough that SSM throttles it. Every rotation
completes on its first attempt (a throttled call fails no step) and every host holds the password
AWSCURRENT names. No time is asserted. (`make fleet` adds logins on the real PostgreSQL and MariaDB.)
"""

from __future__ import annotations

from local.fleet import FleetOptions, rotate_fleet
from local.stack import LocalStack


def test_a_throttled_fleet_rotates_every_secret_with_no_lockout(function: LocalStack):
    opts = FleetOptions(secrets=20, hosts=2, real=0, spread_s=1.0, host_delay_s=1.0, send_rate=4.0, poll_rate=8.0,
                        retry_delays_s=())
    report = rotate_fleet(function, opts, prefix="shortfleet")
    # The quotas bit: calls were refused (else this proves nothing about throttling).
    assert report["throttled_calls"] > 0, report
    assert report["completed_first_attempt"] == report["rotations"] == 20, report
    assert report["failed"] == 0 and report["lockouts"] == 0, report
