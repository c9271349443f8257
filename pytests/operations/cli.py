"""The operator's two ways to run the commands against the local stack: the release binary itself
(`rotator status|doctor|cancel ...`) and the Makefile's targets (`make status SECRET_ID=...`), with
the stack's admin credentials in the environment as `make` exports a profile's. Everything they
print is kept, for the leak checks of the modules that use them."""

from __future__ import annotations

import subprocess
import sys

from local.stack import REPO, LocalStack

ROTATOR = REPO / ".build" / "release" / "rotator"


class OperatorCLI:
    def __init__(self) -> None:
        self.outputs: list[str] = []

    def rotator(self, stack: LocalStack, *args: str) -> subprocess.CompletedProcess:
        return self._run(stack, [str(ROTATOR), *args])

    def make(self, stack: LocalStack, *args: str) -> subprocess.CompletedProcess:
        return self._run(stack, ["make", "--no-print-directory", "-C", str(REPO), *args, f"PYTHON={sys.executable}"])

    def _run(self, stack: LocalStack, command: list[str]) -> subprocess.CompletedProcess:
        p = subprocess.run(command, env=stack.cli_env(), capture_output=True, text=True, timeout=600)
        self.outputs.extend([p.stdout, p.stderr])
        return p
