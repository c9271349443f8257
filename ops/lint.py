"""Every linter the repository answers to: `make lint` (python3 -m ops.lint).

- cfn-lint on template.yaml, template-fleet.yaml and template-secret.yaml: no error, no warning;
- sam validate, and sam validate --lint (SAM CLI, from the tools virtualenv: `make tools`);
- shellcheck on bootstrap and every shell script: `*.sh` files and files whose first line is a sh or
  bash shebang, outside build output and virtualenvs; and on the Linux host scripts of
  template.yaml's documents, exactly as the SSM agent writes them;
- shellcheck on each piece of those host scripts (hosts/linux/*.sh) as a file of its own, less the
  findings that only the joined script can settle (a variable or function another piece defines);
- ruff on the Python of the repository (pyproject.toml), the host helpers (hosts/linux/*.py) included;
- the templates are what `make template` makes from their sources and hosts/ (ops/template.py);
- actionlint on .github/workflows/ (it runs shellcheck on the `run:` steps too).

pytests/template runs each of these and fails on any finding. Nothing here needs the network: SAM
is run in an empty network namespace when this machine allows one (as root), to prove it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS_BIN = REPO / ".build-tools" / "venv" / "bin"
TEMPLATE = REPO / "template.yaml"
# Every deployable template: the single stack, and the shared layout's two (docs/deploying.md).
TEMPLATES = [TEMPLATE, REPO / "template-fleet.yaml", REPO / "template-secret.yaml"]
HOST_PIECES = REPO / "hosts" / "linux"
# What a piece of a host script cannot know alone: the variables the prologue and the flow assign,
# and whether a function another piece calls passes arguments. The joined script is checked in full.
CROSS_PIECE_FINDINGS = "SC2034,SC2119,SC2120,SC2154"

# Directories never searched for scripts: version control, build output, virtualenvs, caches.
_SKIP_DIR = re.compile(r"^(\.git|\.build.*|\.venv.*|venv|\.aws-sam|\.local-state|\.pytest_cache|__pycache__"
                       r"|node_modules|dist|\.benchmarks)$")
_SHELL_SHEBANG = re.compile(rb"^#!\s*(/usr)?/bin/(env\s+)?(-S\s+)?(sh|bash|dash)(\s|$)")


@dataclass
class Result:
    name: str
    command: list[str]
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.output.strip()


def shell_scripts(root: Path = REPO) -> list[Path]:
    """bootstrap and every shell script under root, sorted; not the host script pieces (host_pieces)."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames
                             if not _SKIP_DIR.match(d) and not (Path(dirpath) / d / "pyvenv.cfg").exists())
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink() or not path.is_file() or path.parent == HOST_PIECES:
                continue
            if name.endswith(".sh"):
                found.append(path)
                continue
            try:
                with open(path, "rb") as handle:
                    first = handle.readline(200)
            except OSError:
                continue
            if _SHELL_SHEBANG.match(first):
                found.append(path)
    return found


def document_scripts(directory: Path) -> list[Path]:
    """The Linux documents' scripts as the SSM agent writes them (_script.sh), in `directory`."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from local.ssm_runner import load_documents, shell_script

    out = []
    for name, content in sorted(load_documents(TEMPLATE).items()):
        if content["mainSteps"][0]["action"] != "aws:runShellScript":
            continue
        path = directory / f"{name}.sh"
        path.write_text(shell_script(content), encoding="utf-8")
        out.append(path)
    return out


def host_pieces() -> list[Path]:
    """The pieces the Linux documents' scripts are joined from (ops/template.py)."""
    return sorted(HOST_PIECES.glob("*.sh"))


def tool(name: str) -> str | None:
    """A linter from the tools virtualenv, else from PATH."""
    candidate = TOOLS_BIN / name
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return shutil.which(name)


def no_network() -> list[str]:
    """A command prefix that runs without any network (a fresh network namespace), if allowed here."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"], capture_output=True).returncode == 0:
        return [unshare, "-n"]
    return []


def sam_environment() -> dict[str, str]:
    """SAM CLI needs a region for `validate`; never credentials here: it must not call AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") or k == "AWS_CA_BUNDLE"}
    env.update({"SAM_CLI_TELEMETRY": "0", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull})
    return env


def _run(name: str, command: list[str], **kw) -> Result:
    proc = subprocess.run(command, capture_output=True, text=True, timeout=kw.pop("timeout", 600), **kw)
    return Result(name, command, proc.returncode, (proc.stdout + proc.stderr).strip())


def _missing(name: str, what: str) -> Result:
    return Result(name, [what], 127, f"{what} is not installed: run `make tools` (or `make apt-deps`)")


def cfn_lint() -> Result:
    exe = tool("cfn-lint")
    if exe is None:
        return _missing("cfn-lint", "cfn-lint")
    return _run("cfn-lint", [exe, *map(str, TEMPLATES)], cwd=REPO)


def sam_validate(lint: bool) -> Result:
    exe = tool("sam")
    name = "sam validate --lint" if lint else "sam validate"
    if exe is None:
        return _missing(name, "sam")
    command = [*no_network(), exe, "validate", "--template", str(TEMPLATE), "--region", "us-east-1"]
    if lint:
        command.append("--lint")
    result = _run(name, command, cwd=REPO, env=sam_environment())
    # SAM prints one line of praise on success; anything else is a finding.
    praise = re.compile(r"^\S*template\.yaml is a valid SAM Template\b.*$", re.M)
    result.output = praise.sub("", result.output).strip()
    return result


def shellcheck(paths: list[Path]) -> Result:
    exe = shutil.which("shellcheck")
    if exe is None:
        return _missing("shellcheck", "shellcheck")
    return _run("shellcheck", [exe, "--norc", *map(str, paths)], cwd=REPO)


def shellcheck_pieces(paths: list[Path]) -> Result:
    exe = shutil.which("shellcheck")
    if exe is None:
        return _missing("shellcheck (host pieces)", "shellcheck")
    command = [exe, "--norc", "--shell=bash", f"--exclude={CROSS_PIECE_FINDINGS}", *map(str, paths)]
    return _run("shellcheck (host pieces)", command, cwd=REPO)


def ruff() -> Result:
    exe = tool("ruff")
    if exe is None:
        return _missing("ruff", "ruff")
    return _run("ruff", [exe, "check", "--no-cache", "--quiet", str(REPO)], cwd=REPO)


def template_current() -> Result:
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from ops import template

    stale = [str(path.relative_to(REPO)) for path, text in template.outputs().items()
             if not path.exists() or path.read_text(encoding="utf-8") != text]
    return Result("generated files are current", ["make template"], 1 if stale else 0,
                  "" if not stale else f"{', '.join(stale)} differ from what `make template` makes of template.in.yaml and hosts/")


def actionlint() -> Result:
    exe = tool("actionlint")
    if exe is None:
        return _missing("actionlint", "actionlint")
    workflows = sorted(str(p) for p in (REPO / ".github" / "workflows").glob("*.y*ml"))
    if not workflows:
        return Result("actionlint", [exe], 1, "no workflow in .github/workflows")
    command = [exe, "-no-color"]
    if shutil.which("shellcheck"):
        command += ["-shellcheck", shutil.which("shellcheck")]
    return _run("actionlint", command + workflows, cwd=REPO)


def main() -> int:
    results = [template_current(), cfn_lint(), sam_validate(lint=False), sam_validate(lint=True)]
    scripts = shell_scripts()
    with tempfile.TemporaryDirectory(prefix="rotator-lint-") as tmp:
        results.append(shellcheck(scripts + document_scripts(Path(tmp))))
    results.append(shellcheck_pieces(host_pieces()))
    results.append(ruff())
    results.append(actionlint())
    print("shell scripts: " + " ".join(str(p.relative_to(REPO)) for p in scripts))
    for r in results:
        print(f"{'ok  ' if r.ok else 'FAIL'} {r.name}")
        if not r.ok:
            print(r.output or f"exit status {r.returncode}")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
