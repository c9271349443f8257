"""Fixtures for the deployment package's tests. The zip is built here, once per session, by
`make package` (which builds the binary when needed): a fresh clone needs nothing else."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"


def system_libs() -> set[str]:
    """The SONAMEs the package relies on provided.al2023 to have (packaging/system-libs)."""
    lines = (PACKAGING / "system-libs").read_text().splitlines()
    return {line.strip() for line in lines if line.strip() and not line.startswith("#")}


@pytest.fixture(scope="session")
def package_zip() -> Path:
    """dist/rotator.zip, built once; its SHA-256 goes to dist/rotator.zip.sha256 (sha256sum's format), so
    that CI can prove the zip it deploys is the one these tests were run on (.github/workflows/ci.yml)."""
    p = subprocess.run(["make", "--no-print-directory", "package"], cwd=REPO, capture_output=True,
                       text=True)
    if p.returncode != 0:
        pytest.fail(f"make package failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}", pytrace=False)
    zip_path = REPO / "dist" / "rotator.zip"
    digest = hashlib.sha256(zip_path.read_bytes()).hexdigest()
    (zip_path.parent / "rotator.zip.sha256").write_text(f"{digest}  {zip_path.name}\n")
    return zip_path


@pytest.fixture(scope="session")
def unpacked(package_zip: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The zip unpacked as Lambda unpacks it (unzip keeps the mode bits; zipfile would not)."""
    dest = tmp_path_factory.mktemp("unpacked")
    subprocess.run(["unzip", "-q", str(package_zip), "-d", str(dest)], check=True)
    return dest
