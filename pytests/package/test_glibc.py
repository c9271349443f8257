"""Proof 1: nothing in the package needs a glibc, libstdc++ or libgcc newer than Amazon Linux
2023's, every ELF file in it is for the function's architecture (packaging/check-glibc.sh), and the
check does catch what it is there to catch."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

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


# e_machine of the ELF header (System V ABI): what the check must judge each file by.
EM_X86_64, EM_AARCH64 = 62, 183


def check(target: Path, architecture: str = "x86_64") -> subprocess.CompletedProcess:
    return subprocess.run([str(PACKAGING / "check-glibc.sh"), architecture, str(target)], capture_output=True,
                          text=True)


def set_machine(path: Path, machine: int) -> None:
    """Rewrites e_machine (bytes 18-19, little-endian) of an ELF file in place."""
    data = bytearray(path.read_bytes())
    assert data[:4] == b"\x7fELF" and data[5] == 1, "not a little-endian ELF file"
    data[18:20] = machine.to_bytes(2, "little")
    path.write_bytes(bytes(data))


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


def test_the_package_is_refused_for_an_arm64_function(package_zip: Path, unpacked: Path):
    """Built here (x86_64), the package is no package for an arm64 function: every ELF file is named."""
    p = check(package_zip, "arm64")
    assert p.returncode == 1, p.stdout + p.stderr
    elf = sorted(str(f.relative_to(unpacked)) for f in unpacked.rglob("*") if f.is_file()
                 and f.read_bytes()[:4] == b"\x7fELF")
    assert len(elf) >= 3, elf
    named = sorted(line.split(":")[0] for line in p.stdout.splitlines())
    assert named == elf, p.stdout
    assert all(f"machine {EM_X86_64} " in line for line in p.stdout.splitlines()), p.stdout


def test_a_binary_for_the_other_machine_is_refused(unpacked: Path, tmp_path: Path):
    """The package with its binary's e_machine turned into AArch64 (what an Apple silicon or Graviton
    host builds): refused for the x86_64 function, naming that file alone."""
    planted = tmp_path / "package"
    shutil.copytree(unpacked, planted, symlinks=True)
    assert check(planted).returncode == 0
    set_machine(planted / "rotator", EM_AARCH64)
    p = check(planted)
    assert p.returncode == 1, p.stdout + p.stderr
    assert p.stdout.strip() == f"rotator: machine {EM_AARCH64} (class 2, data 1), not the x86_64 function's x86-64" \
                               f" ({EM_X86_64}, 64-bit little-endian)", p.stdout
    assert "another machine" in p.stderr, p.stderr


def test_an_arm64_library_passes_for_arm64_only(tmp_path: Path):
    """A genuine AArch64 shared object (clang cross-compiles one without a sysroot): accepted for an
    arm64 function, refused for an x86_64 one. Both directions, so the check is not just "x86_64"."""
    (tmp_path / "f.c").write_text("int rotator_answer(void) { return 42; }\n")
    lib = tmp_path / "pkg" / "lib" / "libanswer.so"
    lib.parent.mkdir(parents=True)
    subprocess.run(["clang", "--target=aarch64-linux-gnu", "-ffreestanding", "-nostdlib", "-shared", "-fuse-ld=lld",
                    "-o", str(lib), str(tmp_path / "f.c")], check=True)
    assert int.from_bytes(lib.read_bytes()[18:20], "little") == EM_AARCH64
    p = check(lib.parent.parent, "arm64")
    assert p.returncode == 0, p.stdout + p.stderr
    p = check(lib.parent.parent, "x86_64")
    assert p.returncode == 1 and p.stdout.startswith(f"lib/libanswer.so: machine {EM_AARCH64} "), p.stdout


@pytest.mark.parametrize("architecture", ["", "aarch64", "amd64", "x86-64"])
def test_an_architecture_lambda_does_not_name_is_refused(tmp_path: Path, architecture: str):
    p = check(tmp_path, architecture)
    assert p.returncode == 2 and "x86_64 and arm64" in p.stderr, p.stderr


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
