"""Proof 1: nothing in the package needs a glibc, libstdc++ or libgcc newer than Amazon Linux
2023's (packaging/check-glibc.sh), and the check does catch what it is there to catch."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .conftest import PACKAGING, REPO

# A call the compiler cannot fold: built on Debian 12, it binds to hypotf@GLIBC_2.35.
PROGRAM = r"""
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
    (void)argc;
    printf("%g\n", hypotf(strtof(argv[1], 0), strtof(argv[2], 0)));
    return 0;
}
"""


def check(target: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(PACKAGING / "check-glibc.sh"), str(target)], capture_output=True, text=True)


def build(tmp_path: Path, *extra_sources: Path) -> Path:
    (tmp_path / "program.c").write_text(PROGRAM)
    out = tmp_path / "bin" / "program"
    out.parent.mkdir()
    # clang comes with the Swift toolchain the project builds with.
    sources = [tmp_path / "program.c", *extra_sources]
    subprocess.run(["clang", "-O2", "-o", str(out), *map(str, sources), "-lm"], check=True)
    return out


def test_the_package_needs_nothing_newer_than_amazon_linux_2023(package_zip: Path):
    p = check(package_zip)
    assert p.returncode == 0, p.stdout + p.stderr


def test_the_check_fails_on_a_binary_that_needs_glibc_2_35(tmp_path: Path):
    program = build(tmp_path)
    p = check(program.parent)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.strip() == "program: GLIBC_2.35 (from libm.so.6)", p.stdout


def test_the_compat_shim_pins_hypotf_to_an_old_version(tmp_path: Path):
    """The same program linked with the binary's shim (Sources/CGlibcCompat) passes, and works."""
    program = build(tmp_path, REPO / "Sources" / "CGlibcCompat" / "hypotf.c")
    p = check(program.parent)
    assert p.returncode == 0, p.stdout + p.stderr
    run = subprocess.run([str(program), "3", "4"], capture_output=True, text=True, check=True)
    assert run.stdout == "5\n"
