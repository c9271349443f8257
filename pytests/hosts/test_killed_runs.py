"""A run the SSM agent kills leaves no password behind (docs/THREAT-MODEL.md).

The agent ends a command at its timeout or at CancelCommand with SIGKILL to its whole process
group: no trap runs, nothing is cleaned up. These tests stand in for it at every point of a real
rotation against real PostgreSQL and MariaDB: stand-ins for the tools the scripts call count each
call and kill the run's process group at call k, before the tool starts or once it has finished.
Afterwards no file under the run's base directory (TMPDIR), /dev/shm or what the run left in /tmp
may hold the version's password or the master's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from local.ssm_runner import run_document
from pytests.e2e import chaos

from .support import expect_result

REPO = Path(__file__).resolve().parents[2]
# The tools a run calls while it holds a password (env starts each database client).
TOOLS = ("aws", "python3", "env", "psql", "mysql", "mariadb")

SHIM = """#!/bin/bash
# A stand-in for {real}: counts the run's tool calls; at call {kill_at} kills the run's process
# group with SIGKILL, as the SSM agent does, {mode} the tool runs.
{{ flock 9; printf '%s\\n' {name} >>{counter}; n=$(wc -l <{counter}); }} 9>>{counter}.lock
if [ "$n" = {kill_at} ]; then
  if [ {mode} = after ]; then {real} "$@"; fi
  kill -KILL 0
fi
exec {real} "$@"
"""


def with_shims(env: dict[str, str], bindir: Path, counter: Path, kill_at: int, mode: str) -> dict[str, str]:
    """The host's environment with every tool of TOOLS replaced by a counting, killing stand-in."""
    bindir.mkdir()
    for name in TOOLS:
        real = shutil.which(name, path=env["PATH"])
        if real is None:
            continue
        shim = bindir / name
        shim.write_text(SHIM.format(real=real, name=name, counter=counter, kill_at=kill_at, mode=mode))
        shim.chmod(0o755)
    return {**env, "PATH": f"{bindir}:{env['PATH']}"}


def files_holding(roots: list[Path], needles: list[bytes], since: float, max_depth: int | None = None) -> list[str]:
    """Every file under roots (changed since `since`) whose content holds one of the needles."""
    found = []
    for root in roots:
        base_depth = len(root.parts)
        for directory, subdirs, files in os.walk(root):
            if max_depth is not None and len(Path(directory).parts) - base_depth >= max_depth:
                subdirs[:] = []
            for name in files:
                path = Path(directory) / name
                try:
                    info = path.lstat()
                    if not path.is_file() or path.is_symlink() or info.st_mtime < since or info.st_size > 4 << 20:
                        continue
                    data = path.read_bytes()
                except OSError:
                    continue
                if any(n in data for n in needles):
                    found.append(str(path))
    return found


@pytest.fixture
def rotation(host):
    """A fresh alternating-users rotation per call: (parameters, the passwords the host reads).
    Alternating users hold every kind of password a run holds: the version's (parsed, handed to
    the SQL helper, to the client for verify) and the master's (the administrator's client)."""
    admin, admin_password = "admin_" + uuid.uuid4().hex[:8], "Admin-Pass-" + uuid.uuid4().hex[:12]
    host.server.create_admin(admin, admin_password)
    master_arn, _ = host.create_secret({"username": admin, "password": admin_password})

    def new(strategy: str):
        app = host.new_login("App-Pass-" + uuid.uuid4().hex[:12])
        password = "Killed-Run-" + uuid.uuid4().hex
        if strategy == "alternating":
            arn, _ = host.create_secret(host.secret_value(app, "Never-Read-Here", masterarn=master_arn))
            version = host.put_pending(arn, host.secret_value(app + "_clone", password, masterarn=master_arn))
            needles = [password, admin_password]
        else:
            arn, _ = host.create_secret(host.secret_value(app, "App-Pass-Old"))
            version = host.put_pending(arn, host.secret_value(app, password))
            needles = [password]
        return {"Action": ["set"], "SecretId": [arn], "VersionId": [version]}, needles

    return new


def run_killed(host, tmp_path: Path, parameters: dict, kill_at: int, mode: str, label: str):
    """Runs the document with the stand-ins: (result, number of tool calls seen, the run's TMPDIR)."""
    work = tmp_path / label
    work.mkdir()
    base = work / "tmp"
    base.mkdir(mode=0o700)
    counter = work / "calls"
    counter.write_text("")
    env = with_shims(host.env(TMPDIR=str(base)), work / "bin", counter, kill_at, mode)
    result = run_document(host.document, parameters, env, timeout_seconds=90)
    return result, len(counter.read_text().splitlines()), base


# make test: alternating users (every kind of password a run holds) killed at POINTS calls spread
# over the run, before and after them in turn; make chaos: both strategies, every call, both ways.
STRATEGIES = ["alternating", "single"] if chaos.FULL else ["alternating"]
POINTS = 5


def kill_points(calls: int) -> list[tuple[int, str]]:
    points = [(k, mode) for k in range(1, calls + 1) for mode in ("before", "after")]
    if chaos.FULL:
        return points
    spread = sorted({1 + round(i * (calls - 1) / (POINTS - 1)) for i in range(POINTS)})
    return [(k, "after" if i % 2 else "before") for i, k in enumerate(spread)]


@pytest.mark.chaos("Attacks: a run killed (SIGKILL) while it holds a password leaves none in a file")
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_run_killed_at_any_point_leaves_no_password_in_a_file(host, rotation, tmp_path, strategy):
    # The whole run once, never killed: how many tool calls it makes, and that it works with the
    # stand-ins in place.
    parameters, needles = rotation(strategy)
    result, calls, _ = run_killed(host, tmp_path, parameters, 0, "before", "whole")
    expect_result(result, "set", parameters["VersionId"][0], "changed")
    assert calls >= 8, f"only {calls} tool calls: the stand-ins are not in the run's way"

    started = time.time()
    leaks = []
    for kill_at, mode in kill_points(calls):
        parameters, needles = rotation(strategy)
        result, seen, base = run_killed(host, tmp_path, parameters, kill_at, mode, f"kill-{kill_at}-{mode}")
        assert seen >= kill_at and result.status == "Failed" and result.response_code == -1, \
            f"call {kill_at} ({mode}): the run was not killed: {result}"
        found = files_holding([base], [n.encode() for n in needles], 0)
        found += files_holding([Path("/dev/shm")], [n.encode() for n in needles], started)
        # What a run without TMPDIR's care would write there (bash here-documents, tempfile).
        # (The test's database servers live there too; the passwords the test itself gave them may
        # be in their logs.)
        found += [f for f in files_holding([Path("/tmp")], [n.encode() for n in needles], started, max_depth=2)
                  if not Path(f).is_relative_to(host.server.tmp)]
        if found:
            leaks.append(f"killed at call {kill_at} ({mode}): {found}")
    assert leaks == [], "a killed run left a password in a file:\n" + "\n".join(leaks)


def test_the_credential_file_has_no_name_without_memfd(tmp_path):
    """Python 3.7 (Amazon Linux 2) has no os.memfd_create: the credential file is then an O_TMPFILE
    in the working directory, which no name ever leads to, so a SIGKILL cannot leave it either."""
    work = tmp_path / "work"
    work.mkdir(mode=0o700)
    program = (
        "import os, sys\n"
        f"sys.path.insert(0, {str(REPO / 'hosts' / 'linux')!r})\n"
        "del os.memfd_create\n"
        "import postgres, secret\n"
        "secret.exec_with_credential(postgres.password_file, sys.argv[1], 'app', 'sh', '-c',\n"
        "    'cat /dev/fd/3; stat -L -c %a /dev/fd/3; ls -A \"$0\"', sys.argv[1])\n"
    )
    password = "No-Name-" + uuid.uuid4().hex
    # The password on descriptor 3, a pipe, as `hand` gives it.
    read, write = os.pipe()
    os.write(write, password.encode())
    os.close(write)
    try:
        out = subprocess.run([sys.executable, "-c", program, str(work)], capture_output=True, text=True,
                             close_fds=False, preexec_fn=lambda: os.dup2(read, 3), check=True)
    finally:
        os.close(read)
    # The password file as libpq reads it, mode 0600, and nothing in the working directory.
    assert out.stdout.splitlines() == [f"*:*:*:*:{password}", "600"], out
    assert list(work.iterdir()) == []
