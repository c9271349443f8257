"""The build routes: building and deploying install nothing of the tests (Makefile, packaging/apt-deps.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ops import lint

REPO = lint.REPO
PACKAGING = REPO / "packaging"
TEST_ONLY = ("postgresql", "mariadb-server", "mariadb-client", "shellcheck", "busybox-static")


def _executable(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


# ---------------------------------------------------------------------------------- Makefile
def _make_n(*targets: str) -> str:
    p = subprocess.run(["make", "-n", "--no-print-directory", *targets], cwd=REPO, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stdout


@pytest.mark.parametrize("target", ["build", "package", "sam-build", "deploy"])
def test_building_and_deploying_install_no_database(target):
    """What `make deploy` and `make package` would run: the build packages' check, never the tests'."""
    commands = _make_n(target)
    checks = [line for line in commands.splitlines() if "apt-deps.sh" in line]
    assert checks, commands
    for line in checks:
        assert not set(line.split()) & set(TEST_ONLY), line
    assert "apt-get" not in commands


def test_the_tests_still_get_their_databases():
    (check,) = [line for line in _make_n("apt-deps").splitlines() if "apt-deps.sh" in line]
    assert set(TEST_ONLY) <= set(check.split()), check


def test_no_gnu_only_tool_in_what_the_host_runs():
    """The Makefile's recipes may run on macOS (make rotate, the checks of make package before the
    build refuses): none of GNU's spellings that BSD's tools lack."""
    text = (REPO / "Makefile").read_text()
    for gnu_only in ("stat -c", "sed -i", "readlink -f", "date -d", "cp -T"):
        assert gnu_only not in text, gnu_only


# ---------------------------------------------------------------------------------- apt-deps.sh
@pytest.fixture()
def debian_host(tmp_path):
    """A fake dpkg-query (ROTATOR_FAKE_INSTALLED lists what is installed), apt-get and id on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt-get.log"
    _executable(bin_dir / "dpkg-query",
                '#!/bin/sh\nfor p in $ROTATOR_FAKE_INSTALLED; do [ "$p" = "$3" ] && { printf "install ok installed"; exit 0; }; done\n'
                'exit 1\n')
    _executable(bin_dir / "apt-get", f'#!/bin/sh\necho "$*" >>"{log}"\n')
    _executable(bin_dir / "id", '#!/bin/sh\necho "$ROTATOR_FAKE_UID"\n')

    def run(*packages: str, installed: str = "", uid: int = 0, path: str | None = None):
        env = dict(os.environ, PATH=path or f"{bin_dir}:{os.environ['PATH']}", ROTATOR_FAKE_INSTALLED=installed,
                   ROTATOR_FAKE_UID=str(uid))
        p = subprocess.run([shutil.which("bash"), str(PACKAGING / "apt-deps.sh"), *packages], env=env,
                           capture_output=True, text=True, timeout=60)
        return p, (log.read_text().splitlines() if log.exists() else [])

    run.bin_dir = bin_dir
    return run


def test_apt_deps_installs_only_what_is_missing_as_root(debian_host):
    p, apt = debian_host("zip", "patchelf", "unzip", installed="zip")
    assert p.returncode == 0, p.stderr
    assert apt == ["update -qq", "install -y -qq --no-install-recommends patchelf unzip"], apt


def test_apt_deps_does_nothing_when_all_is_installed(debian_host):
    p, apt = debian_host("zip", "unzip", installed="zip unzip", uid=1000)
    assert p.returncode == 0 and apt == [], (p.stderr, apt)


def test_apt_deps_never_installs_as_another_user(debian_host):
    p, apt = debian_host("zip", "patchelf", installed="zip", uid=1000)
    assert p.returncode == 1 and apt == []
    assert "missing Debian packages: patchelf" in p.stderr and "sudo apt-get install" in p.stderr, p.stderr
    assert "packaging/in-container.sh" in p.stderr, p.stderr


def test_apt_deps_on_a_host_without_dpkg_points_to_the_container(debian_host, tmp_path):
    """macOS, Fedora: no dpkg-query on PATH, and apt-get (were it there) is never run."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for tool in ("uname",):
        os.symlink(shutil.which(tool), bare / tool)
    os.symlink(debian_host.bin_dir / "apt-get", bare / "apt-get")
    p, apt = debian_host("zip", "patchelf", path=str(bare))
    assert p.returncode == 1 and apt == []
    assert "no dpkg" in p.stderr and "zip patchelf" in p.stderr and "packaging/in-container.sh" in p.stderr, p.stderr
