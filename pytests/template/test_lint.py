"""shellcheck on every shell script, actionlint on the workflows, and what the workflows and the
Makefile's operating targets promise."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from ops import lint

REPO = lint.REPO


# ---------------------------------------------------------------------------------- shellcheck
def test_finds_every_shell_script(tmp_path):
    scripts = lint.shell_scripts()
    rel = {str(p.relative_to(REPO)) for p in scripts}
    assert {"bootstrap", ".ci/run"} <= rel, rel
    # Nothing from build output or virtualenvs.
    assert not any(part.startswith((".build", ".venv", ".aws-sam", "dist")) for r in rel for part in Path(r).parts), rel

    # The finder itself: suffix, shebangs (sh, bash, env bash), and what it must leave alone.
    (tmp_path / "a.sh").write_text("echo a\n")
    (tmp_path / "b").write_text("#!/bin/sh\necho b\n")
    (tmp_path / "c").write_text("#!/usr/bin/env bash\necho c\n")
    (tmp_path / "d.py").write_text("#!/usr/bin/env python3\n")
    (tmp_path / "e").write_text("#!/bin/bashful\n")
    for skipped in (".build/x", ".build-tools/venv/bin", "venv/bin", "dist/rotator", "node_modules/m"):
        (tmp_path / skipped).mkdir(parents=True)
        (tmp_path / skipped / "s.sh").write_text("echo no\n")
    (tmp_path / "anyvenv").mkdir()
    (tmp_path / "anyvenv" / "pyvenv.cfg").write_text("home = /usr\n")
    (tmp_path / "anyvenv" / "activate.sh").write_text("echo no\n")
    assert [p.name for p in lint.shell_scripts(tmp_path)] == ["a.sh", "b", "c"]


def test_shellcheck_is_clean_on_every_shell_script(tmp_path):
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed: `make apt-deps` installs it", pytrace=False)
    scripts = lint.shell_scripts() + lint.document_scripts(tmp_path)
    assert len(scripts) >= 4
    r = lint.shellcheck(scripts)
    assert r.ok, r.output


# ---------------------------------------------------------------------------------- workflows
@pytest.fixture(scope="module")
def workflows():
    d = REPO / ".github" / "workflows"
    return {p.name: yaml.safe_load(p.read_text()) for p in sorted(d.glob("*.yml"))}


def test_actionlint_has_no_finding():
    if lint.tool("actionlint") is None:
        pytest.fail("actionlint is not installed: run `make tools` (make test does)", pytrace=False)
    r = lint.actionlint()
    assert r.ok, r.output


def test_actionlint_would_catch_a_mistake(tmp_path):
    """The proof above is only worth something if the linter looks: a broken workflow fails."""
    exe = lint.tool("actionlint")
    if exe is None:
        pytest.fail("actionlint is not installed: run `make tools`", pytrace=False)
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
                   "      - run: echo ${{ github.event.head_commit.message }}\n      - uses: actions/checkout@v5\n"
                   "        with: {nonsense: 1}\n")
    proc = subprocess.run([exe, "-no-color", str(bad)], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode != 0 and "nonsense" in proc.stdout and "untrusted" in proc.stdout, proc.stdout


def _on(workflow):
    # YAML 1.1 reads the key `on` as True.
    return workflow.get("on", workflow.get(True))


def test_ci_builds_and_tests_every_push(workflows):
    ci = workflows["ci.yml"]
    assert "push" in _on(ci) and _on(ci)["push"] in (None, {})          # every branch, every push
    job = ci["jobs"]["test"]
    assert str(job["container"]).startswith("swift:6"), "Swift 6, as on the project's machines"
    runs = [s.get("run", "") for s in job["steps"]]
    assert any(r.strip() == "make test" for r in runs), runs


def test_the_tests_run_once_per_push(workflows):
    """One workflow runs on push, nothing calls it, and one job of it runs make test."""
    on_push = [name for name, wf in workflows.items() if "push" in (_on(wf) or {})]
    assert on_push == ["ci.yml"], on_push
    assert "workflow_call" not in _on(workflows["ci.yml"])
    callers = [(name, job_name) for name, wf in workflows.items() for job_name, job in wf["jobs"].items()
               if "ci.yml" in str(job.get("uses", ""))]
    assert not callers, callers
    testing = [job_name for job_name, job in workflows["ci.yml"]["jobs"].items()
               if any("make test" in s.get("run", "") for s in job.get("steps", []))]
    assert testing == ["test"], testing


def test_deploy_ships_the_tested_zip_with_oidc_on_main(workflows):
    ci = workflows["ci.yml"]
    # Only the deploy job gets a token (pytests/template/test_hardening.py), on main, after the tests.
    assert "id-token" not in ci["permissions"]
    test, deploy = ci["jobs"]["test"], ci["jobs"]["deploy"]
    assert deploy["permissions"]["id-token"] == "write"
    assert "refs/heads/main" in deploy["if"] and "pull_request" in deploy["if"]
    assert set(deploy["needs"]) == {"test", "container-route"}
    # The test job hands over the zip make test built, its template, and their checksums as outputs.
    test_runs = "\n".join(s.get("run", "") for s in test["steps"])
    assert "make deploy-template" in test_runs and "make package" not in test_runs
    # ... the zip whose SHA-256 pytests/package recorded when it started testing it.
    assert "sha256sum --check --strict rotator.zip.sha256" in test_runs
    assert test_runs.index("make test") < test_runs.index("make deploy-template")
    upload = next(s for s in test["steps"] if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["with"]["path"].split() == ["dist/rotator.zip", "dist/template.yaml"]
    assert set(test["outputs"]) == {"zip-sha256", "template-sha256"}
    steps = deploy["steps"]
    download = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("actions/download-artifact@"))
    assert steps[download]["with"]["name"] == upload["with"]["name"]
    verify = steps[download + 1]
    assert verify["env"] == {"ZIP_SHA256": "${{ needs.test.outputs.zip-sha256 }}",
                             "TEMPLATE_SHA256": "${{ needs.test.outputs.template-sha256 }}"}
    assert "sha256sum --check --strict" in verify["run"]
    creds = next(s for s in steps if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@"))
    assert "role-to-assume" in creds["with"] and "aws-access-key-id" not in creds["with"]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert "--no-confirm-changeset --no-fail-on-empty-changeset" in runs
    assert '--template-file "$RUNNER_TEMP/package/template.yaml"' in runs
    # A first deploy without samconfig.toml: the stack and its parameters from repository variables.
    deploy_step = steps[-1]
    assert deploy_step["env"]["STACK_NAME"] == "${{ vars.ROTATOR_STACK_NAME }}"
    assert deploy_step["env"]["PARAMETERS"] == "${{ vars.ROTATOR_PARAMETERS }}"
    assert '--parameter-overrides "$PARAMETERS"' in deploy_step["run"] and "--resolve-s3" in deploy_step["run"]
    # The artifact arrives and is verified before credentials exist; the deploy after.
    order = [download, steps.index(verify), steps.index(creds), len(steps) - 1]
    assert order == sorted(order) and len(set(order)) == 4


# ---------------------------------------------------------------------------------- Makefile
def _make(*args, cwd=REPO, env=None):
    return subprocess.run(["make", "--no-print-directory", "-f", str(REPO / "Makefile"), *args], cwd=cwd,
                          capture_output=True, text=True, env=env, timeout=120)


def test_make_deploy_is_guided_the_first_time_only(tmp_path):
    """`make deploy` with SAM replaced by echo, from a directory without and then with samconfig.toml."""
    p = _make("-o", "sam-build", "deploy", "SAM=echo sam", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "sam deploy --guided" in p.stdout
    (tmp_path / "samconfig.toml").write_text("version = 0.1\n")
    p = _make("-o", "sam-build", "deploy", "SAM=echo sam", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "sam deploy" in p.stdout and "--guided" not in p.stdout


def test_make_rotate_and_the_operator_commands_need_a_secret_id():
    for target in ("rotate", "status", "doctor", "cancel"):
        p = _make(target)
        assert p.returncode != 0 and f"make {target} SECRET_ID=" in p.stderr, (target, p.stderr)
    p = _make("-n", "rotate", "SECRET_ID=db/app")
    assert 'aws secretsmanager rotate-secret --secret-id "db/app"' in p.stdout
    for target in ("status", "doctor", "cancel"):
        p = _make("-n", target, "SECRET_ID=db/app", "ARGS=--json")
        assert f'.build/release/rotator {target} --secret-id "db/app" --json' in p.stdout, p.stdout


def test_the_fleet_targets_deploy_the_shared_stack_and_enrol_a_secret_without_touching_it():
    p = _make("-o", "tools", "-o", "build-deps", "deploy-fleet", "SAM=echo sam", "FLEET=shared")
    assert p.returncode == 0, p.stderr
    assert "sam build --build-in-source --template-file template-fleet.yaml" in p.stdout
    assert 'sam deploy --stack-name "shared"' in p.stdout
    p = _make("enroll", "NAME=orders")
    assert p.returncode != 0 and "make enroll NAME=" in p.stderr
    p = _make("-n", "enroll", "NAME=orders", "FLEET=shared", "PARAMS=LoginName=orders_app")
    assert ('aws cloudformation deploy --template-file template-secret.yaml --stack-name "orders"' in p.stdout
            and 'RotatorStackName="shared" LoginName=orders_app' in p.stdout), p.stdout
    assert "template-fleet" not in p.stdout


def test_sam_build_target_calls_stage_sh_with_the_artifacts_dir():
    p = _make("-n", "build-RotationFunction", "ARTIFACTS_DIR=/tmp/artifacts")
    assert p.stdout.strip() == 'packaging/stage.sh "/tmp/artifacts"', p.stdout


def test_the_tools_are_pinned():
    pins = [line for line in (REPO / "local" / "requirements-tools.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert pins and all("==" in line for line in pins), pins
    assert any(line.startswith("aws-sam-cli==") for line in pins)
    assert os.path.exists(REPO / "local" / "requirements.txt")
