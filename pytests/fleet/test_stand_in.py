"""The fleet simulator's stand-in host (local/fleet.py, StandInHost) keeps the host's side of the
shared layout: a `set` changes the login only for a secret its enrolment file lists, for the login
listed there (read by hosts/linux/secret.py's own code), as hosts/linux/flow.sh does. Without it,
`make fleet` would count rotations that no real host would have allowed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from local.fleet import HOLDS, LOCKED_OUT, PLACEHOLDER, Enrolled, StandInHost, hosts_state

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotator/rotator-local/app-0001-AbCdEf"
OTHER_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotator/rotator-local/app-0002-GhIjKl"


def enrolment_file(tmp_path: Path, *lines: str) -> Path:
    directory = tmp_path / "etc"
    directory.mkdir(mode=0o700)
    path = directory / "enrolled"
    path.write_text("".join(line + "\n" for line in lines), encoding="ascii")
    path.chmod(0o600)
    return path


def stand_in(path: Path, username: str) -> StandInHost:
    version = {"username": username, "password": "New-Password-1"}
    return StandInHost("Old-Password-1", lambda arn, version_id: version, lambda: 0.0, path)


def run_set(host: StandInHost, arn: str = ARN) -> tuple[str, int, str, str]:
    return host({"Action": ["set"], "SecretId": [arn], "VersionId": ["v2"]}, threading.Event())


def test_a_listed_secret_changes_its_login(tmp_path: Path):
    host = stand_in(enrolment_file(tmp_path, f"{OTHER_ARN} other_app", f"{ARN} app"), "app")
    status, code, out, _ = run_set(host)
    assert (status, code) == ("Success", 0) and "outcome=changed" in out
    assert host.password == "New-Password-1"


@pytest.mark.parametrize("lines, username", [
    ([f"{OTHER_ARN} app"], "app"),                   # the secret is not listed
    ([f"{ARN} app"], "other_app"),                   # listed, but the version names another login
    ([f"{ARN} app", f"{ARN} app"], "app"),           # listed twice: the file reads two ways
], ids=["unlisted", "another-login", "listed-twice"])
def test_a_set_the_enrolment_file_does_not_allow_changes_nothing(tmp_path: Path, lines: list[str], username: str):
    host = stand_in(enrolment_file(tmp_path, *lines), username)
    status, code, _, _ = run_set(host)
    assert (status, code) == ("Failed", 3)
    assert host.password == "Old-Password-1"


def test_a_host_without_an_enrolment_file_refuses_every_fleet_secret(tmp_path: Path):
    host = stand_in(tmp_path / "etc" / "enrolled", "app")
    assert run_set(host)[:2] == ("Failed", 3)
    assert host.password == "Old-Password-1"


def test_the_lockout_check_tells_a_lockout_from_a_secret_never_rotated():
    """make fleet's lockout check (local/fleet.py, hosts_state): a host not holding AWSCURRENT's
    password is a lockout, unless AWSCURRENT is still the unit's placeholder, which never logged
    anyone in (its first rotation failed, before or after a host)."""
    def enrolled(*passwords: str) -> Enrolled:
        return Enrolled(ARN, "app", stand_ins=[StandInHost(p, None, None) for p in passwords])

    current = {"username": "app", "password": "Current-1"}
    assert hosts_state(enrolled("Current-1", "Current-1"), current) == HOLDS
    assert hosts_state(enrolled("Current-1", "Pending-1"), current) == LOCKED_OUT      # one host left behind
    assert hosts_state(enrolled(), current) == LOCKED_OUT                              # no host to hold it
    placeholder = {"username": "app", "password": "Generated-1", "passwordPlaceholder": True}
    assert hosts_state(enrolled("Own-1"), placeholder) == PLACEHOLDER
    assert hosts_state(enrolled("Own-1"), dict(placeholder, passwordPlaceholder="yes")) == LOCKED_OUT
