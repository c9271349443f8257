"""What the zip holds: bootstrap at its root, the stripped binary, and exactly the shared libraries
its closure needs beyond what provided.al2023 has; nothing of glibc, libstdc++ or libgcc."""

from __future__ import annotations

import os
import re
import subprocess
import zipfile
from pathlib import Path

from .conftest import REPO, system_libs


def readelf(*args: str | Path) -> str:
    return subprocess.run(["readelf", *map(str, args)], capture_output=True, text=True, check=True).stdout


def needed(path: Path) -> list[str]:
    return re.findall(r"\(NEEDED\)\s+Shared library: \[(.+)\]", readelf("-d", path))


def elf_files(root: Path) -> list[Path]:
    return [p for p in sorted(root.rglob("*")) if p.is_file() and p.read_bytes()[:4] == b"\x7fELF"]


def test_bootstrap_and_binary_at_the_root_and_executable(package_zip: Path):
    with zipfile.ZipFile(package_zip) as z:
        entries = {i.filename: i.external_attr >> 16 for i in z.infolist()}
    assert entries["bootstrap"] & 0o111 == 0o111, oct(entries["bootstrap"])
    assert entries["rotator"] & 0o111 == 0o111, oct(entries["rotator"])
    others = set(entries) - {"bootstrap", "rotator"}
    assert others and all(re.fullmatch(r"lib/[^/]+\.so[.0-9]*", n) for n in others), sorted(others)
    assert (REPO / "bootstrap").read_bytes() == zipfile.ZipFile(package_zip).read("bootstrap")


def test_every_elf_file_is_stripped(unpacked: Path):
    for path in elf_files(unpacked):
        sections = re.findall(r"\]\s+(\.\S+)", readelf("-S", "-W", path))
        leftovers = [s for s in sections if s == ".symtab" or s.startswith(".debug")]
        assert not leftovers, f"{path.relative_to(unpacked)} is not stripped: {leftovers}"


def test_no_glibc_libstdcxx_or_libgcc_inside(unpacked: Path):
    shipped = {p.name for p in (unpacked / "lib").iterdir()}
    assert not shipped & system_libs()
    assert not [n for n in shipped if re.match(r"(ld-linux|libc\.|libm\.|libstdc\+\+|libgcc_s)", n)]


def test_shipped_libraries_are_exactly_the_closure(unpacked: Path):
    """Walking DT_NEEDED from the binary through the shipped libraries reaches every shipped
    library (none is dead weight), and whatever it needs that is not shipped is a system library."""
    lib = unpacked / "lib"
    shipped = {p.name for p in lib.iterdir()}
    reached: set[str] = set()
    from_system: set[str] = set()
    todo = needed(unpacked / "rotator")
    while todo:
        name = todo.pop()
        if name in shipped and name not in reached:
            reached.add(name)
            todo += needed(lib / name)
        elif name not in shipped:
            from_system.add(name)
    assert reached == shipped, f"shipped but never needed: {sorted(shipped - reached)}"
    missing = from_system - system_libs()
    assert not missing, f"needed, but neither shipped nor on Amazon Linux 2023: {missing}"


def test_libcurl_is_inside_the_binary_and_only_openssl_is_shipped(unpacked: Path):
    """libcurl is linked statically (packaging/build-libcurl.sh), built for HTTPS over OpenSSL only:
    Debian's shared libcurl would bring some thirty libraries, most of a cold start."""
    assert not [n for n in needed(unpacked / "rotator") if n.startswith("libcurl")]
    assert sorted(p.name for p in (unpacked / "lib").iterdir()) == ["libcrypto.so.3", "libssl.so.3"]


def test_the_packaged_libraries_win_over_the_systems(unpacked: Path):
    """Lambda's LD_LIBRARY_PATH lists /lib64 and /usr/lib64 before /var/task/lib, and Amazon Linux
    has an OpenSSL there: the binary's DT_RPATH ($ORIGIN/lib) must win. Here, with this machine's
    own OpenSSL first on LD_LIBRARY_PATH."""
    assert "Library rpath: [$ORIGIN/lib]" in readelf("-d", unpacked / "rotator")
    env = dict(os.environ, LD_LIBRARY_PATH="/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu")
    out = subprocess.run(["ldd", str(unpacked / "rotator")], env=env, capture_output=True, text=True,
                         check=True).stdout
    resolved = dict(re.findall(r"^\s*(\S+) => (\S+)", out, re.M))
    for name in (p.name for p in (unpacked / "lib").iterdir()):
        assert resolved.get(name) == str(unpacked / "lib" / name), f"{name} -> {resolved.get(name)}"
