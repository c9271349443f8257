"""Proof 2: the deployment package rotates a secret end to end inside a root that holds nothing but
what provided.al2023 guarantees: this machine's glibc, libstdc++ and libgcc_s, a static busybox as
/bin/sh, a CA bundle at Amazon Linux's path only; no libcurl, no OpenSSL, no Python
(packaging/minimal-root.sh). The local stack starts it there as Lambda would (cwd /var/task,
Lambda's LD_LIBRARY_PATH), in the same network namespace, so it reaches the Runtime API on
127.0.0.1; its AWS calls go over verified TLS, as on Lambda (tls.py).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from local.databases import PostgresServer
from local.stack import LocalStack

from .conftest import PACKAGING
from .tls import TLSFront

INSTANCE = "i-0a1202300000000f1"
STEPS = ["createSecret", "setSecret", "testSecret", "finishSecret"]


@pytest.fixture(scope="module")
def tls_front(tmp_path_factory: pytest.TempPathFactory):
    front = TLSFront(tmp_path_factory.mktemp("tls"))
    yield front
    front.close()


@pytest.fixture(scope="module")
def root(package_zip: Path, tls_front: TLSFront, tmp_path_factory: pytest.TempPathFactory) -> Path:
    if os.geteuid() != 0:
        pytest.fail("the minimal root needs root (mknod, chroot, a mount namespace)", pytrace=False)
    root = tmp_path_factory.mktemp("al2023") / "root"
    subprocess.run([str(PACKAGING / "minimal-root.sh"), str(package_zip), str(root)], check=True)
    # The throwaway CA joins the root's only bundle, at Amazon Linux's path.
    with open(root / "etc/pki/tls/certs/ca-bundle.crt", "ab") as bundle:
        bundle.write(tls_front.ca_pem)
    return root


@pytest.fixture(scope="module")
def stack(root: Path, tls_front: TLSFront):
    # AWS endpoints over HTTPS; /proc mounted in a mount namespace of the function's own, as
    # Lambda's sandbox has one. Full paths: the function's PATH (Lambda's) has no /usr/sbin.
    command = [shutil.which("env"), f"AWS_ENDPOINT_URL={tls_front.url}",
               shutil.which("unshare"), f"--mount-proc={root}/proc",
               shutil.which("chroot"), str(root), "/var/runtime/init"]
    with LocalStack(function_command=command) as s:
        tls_front.upstream_port = int(s.url.rsplit(":", 1)[1])
        yield s


def mapped_files(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as maps:
        return {f[5] for f in (line.split() for line in maps) if len(f) > 5 and f[5].startswith("/")}


def test_rotation_with_the_package_in_a_minimal_root(stack: LocalStack, root: Path, tls_front: TLSFront):
    user, old = "app_" + secrets.token_hex(4), secrets.token_urlsafe(18)
    with PostgresServer() as pg:
        stack.register_instance(INSTANCE, "Linux", pg.host_env())
        pg.create_login(user, old)
        arn = stack.create_db_secret(f"package/{user}", "postgres", pg, user, old, [INSTANCE])

        stack.client("secretsmanager").rotate_secret(SecretId=arn)
        rec = stack.wait_rotation(arn)

        steps = [(s.step, s.ok, s.error_type, s.error_message) for s in rec.steps]
        assert rec.ok, f"{steps}\n{stack.function_log()[-3000:]}"
        assert [s.step for s in rec.steps] == STEPS
        new = stack.secret_value(arn, "AWSCURRENT")["password"]
        assert new != old
        assert pg.can_login(user, new), "AWSCURRENT does not log in"
        assert not pg.can_login(user, old), "the old password still logs in"

    # The process that did it is the packaged binary inside the root, with every file it maps
    # (its libraries included) from there: the package's own, the rest from the root's /usr/lib64.
    assert tls_front.handshakes, "the function's AWS calls did not go through TLS"
    assert all(r.ok for r in stack.function_requests()), "moto rejected a request of the function"
    assert not stack.runtime.deaths and not stack.runtime.violations
    pid = stack.runtime.proc.pid
    assert os.readlink(f"/proc/{pid}/root") == str(root)
    assert os.readlink(f"/proc/{pid}/exe") == str(root / "var/task/rotator")
    mapped = mapped_files(pid)
    outside = [m for m in mapped if not m.startswith(f"{root}/")]
    assert not outside, outside
    shipped = {str(p) for p in (root / "var/task/lib").iterdir()}
    assert shipped <= mapped, sorted(shipped - mapped)
