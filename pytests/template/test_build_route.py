"""The build routes: building and deploying install nothing of the tests (Makefile, packaging/apt-deps.sh),
and the container route (packaging/in-container.sh) picks its engine, image, platform and credentials
as docs/deploying.md says. No container engine is reachable here: the engine is a fake on PATH that
records what it was asked to run, a unit test of the script's choices alone; CI's container job
runs the script with the real Docker (.github/workflows/ci.yml)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from local.cfn import load_template
from ops import deploy_template, lint

REPO = lint.REPO
PACKAGING = REPO / "packaging"
TEST_ONLY = ("postgresql", "mariadb-server", "mariadb-client", "shellcheck", "busybox-static")


def pinned_image() -> str:
    lines = [line for line in (PACKAGING / "build-image").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert len(lines) == 1, lines
    return lines[0]


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


# ---------------------------------------------------------------------------------- in-container.sh
SYSTEM_TOOLS = ("bash", "dirname", "basename", "grep", "head", "mkdir", "sed", "env", "cat")


@pytest.fixture()
def route(tmp_path):
    """A checkout holding the script and the pin; PATH with the system tools it needs and, per test,
    fake engines and a fake AWS CLI that record their arguments (NUL-separated) and environment."""
    checkout = tmp_path / "checkout"
    (checkout / "packaging").mkdir(parents=True)
    for name in ("in-container.sh", "build-image"):
        shutil.copy2(PACKAGING / name, checkout / "packaging" / name)
    tools = tmp_path / "tools"
    tools.mkdir()
    for tool in SYSTEM_TOOLS:
        os.symlink(shutil.which(tool), tools / tool)
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    records = tmp_path / "records"
    records.mkdir()

    class Route:
        pass

    r = Route()
    r.checkout, r.records = checkout, records

    def engine(name: str) -> None:
        _executable(fakes / name, f'#!/bin/sh\nprintf "%s\\0" "$(basename "$0")" "$@" >"{records}/argv"\n'
                                  f'env >"{records}/env"\n')

    def aws(export: str, region: str) -> None:
        _executable(fakes / "aws", f'#!/bin/sh\necho "$*" >>"{records}/aws"\n'
                                   'case "$*" in\n'
                                   f'  "configure export-credentials --format env") printf "%s\\n" "{export}" ;;\n'
                                   f'  "configure get region") echo "{region}" ;;\n'
                                   '  *) exit 1 ;;\n'
                                   'esac\n')

    def run(*args: str, **env: str):
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "CONTAINER_", "ARCHITECTURE"))}
        base.update(env, PATH=f"{fakes}:{tools}")
        p = subprocess.run([str(checkout / "packaging" / "in-container.sh"), *args], env=base, capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        argv_file = records / "argv"
        argv = argv_file.read_bytes().decode().split("\0")[:-1] if argv_file.exists() else None
        engine_env = dict(line.split("=", 1) for line in (records / "env").read_text().splitlines()
                          if "=" in line) if argv is not None else None
        return p, argv, engine_env

    r.engine, r.aws, r.run = engine, aws, run
    return r


def _option_values(argv: list[str], option: str) -> list[str]:
    return [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == option]


def test_docker_is_the_default_engine(route):
    route.engine("docker")
    route.engine("podman")
    p, argv, _ = route.run("package")
    assert p.returncode == 0, p.stderr
    assert argv[:3] == ["docker", "run", "--rm"], argv
    assert f"{route.checkout}:/src" in _option_values(argv, "--volume"), argv


def test_podman_when_docker_is_absent_with_a_relabelled_checkout(route):
    route.engine("podman")
    p, argv, _ = route.run("package")
    assert p.returncode == 0, p.stderr
    assert argv[:2] == ["podman", "run"], argv
    assert f"{route.checkout}:/src:z" in _option_values(argv, "--volume"), argv


def test_container_engine_chooses(route):
    route.engine("docker")
    route.engine("podman")
    p, argv, _ = route.run("package", CONTAINER_ENGINE="podman")
    assert p.returncode == 0 and argv[0] == "podman", (p.stderr, argv)
    p, argv, _ = route.run("package", CONTAINER_ENGINE="nerdctl")
    assert p.returncode == 2 and "CONTAINER_ENGINE=nerdctl" in p.stderr, p.stderr


def test_no_engine_is_a_clear_refusal(route):
    p, argv, _ = route.run("package")
    assert p.returncode == 2 and argv is None
    assert "neither docker nor podman" in p.stderr, p.stderr


def test_the_pinned_image_runs_the_make_targets_for_linux_amd64(route):
    route.engine("docker")
    p, argv, _ = route.run("package", "sam-build")
    assert p.returncode == 0, p.stderr
    image = pinned_image()
    assert re.fullmatch(r"swift:[0-9.]+-bookworm@sha256:[0-9a-f]{64}", image), image
    i = argv.index(image)
    assert argv[i + 1:] == ["packaging/in-container.sh", "--inside", "package", "sam-build"], argv
    assert _option_values(argv, "--platform") == ["linux/amd64"], argv
    assert "ARCHITECTURE=x86_64" in _option_values(argv, "--env"), argv
    # The build directories: volumes of this image and architecture, over the checkout's.
    digest = image.rsplit(":", 1)[1][:12]
    volumes = _option_values(argv, "--volume")
    for build_dir in (".build", ".build-curl", ".build-tools"):
        assert f"rotator-{digest}-x86_64{build_dir}:/src/{build_dir}" in volumes, volumes
        assert (route.checkout / build_dir).is_dir(), "the mount point is not made beforehand, by the user"


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_an_arm64_function_gets_the_linux_arm64_image(route, how):
    route.engine("docker")
    args, env = (["package", "ARCHITECTURE=arm64"], {}) if how == "argument" else (["package"], {"ARCHITECTURE": "arm64"})
    p, argv, _ = route.run(*args, **env)
    assert p.returncode == 0, p.stderr
    assert _option_values(argv, "--platform") == ["linux/arm64"], argv
    assert "ARCHITECTURE=arm64" in _option_values(argv, "--env"), argv
    assert all("-arm64." in v for v in _option_values(argv, "--volume")[1:]), argv


@pytest.mark.parametrize("architecture", ["aarch64", "amd64", "", "x86_64 "])
def test_an_architecture_lambda_does_not_name_is_refused_before_the_engine_runs(route, architecture):
    route.engine("docker")
    p, argv, _ = route.run("package", f"ARCHITECTURE={architecture}")
    assert p.returncode == 2 and argv is None, p.stderr
    assert "x86_64 or arm64" in p.stderr, p.stderr


def test_an_image_not_pinned_by_digest_is_refused(route):
    route.engine("docker")
    (route.checkout / "packaging" / "build-image").write_text("# moved\nswift:6.3-bookworm\n")
    p, argv, _ = route.run("package")
    assert p.returncode == 2 and argv is None and "@sha256:" in p.stderr, p.stderr


def test_credentials_travel_by_name_and_only_to_targets_that_call_aws(route):
    route.engine("docker")
    creds = {"AWS_ACCESS_KEY_ID": "AKIAFAKEFAKEFAKE", "AWS_SECRET_ACCESS_KEY": "fake-secret-value",
             "AWS_SESSION_TOKEN": "fake-session-token", "AWS_REGION": "eu-west-1"}
    p, argv, engine_env = route.run("deploy", **creds)
    assert p.returncode == 0, p.stderr
    assert set(creds) <= set(_option_values(argv, "--env")), argv
    for value in creds.values():
        assert not [a for a in argv if value in a], f"{value} on the engine's command line"
    assert all(engine_env[k] == v for k, v in creds.items())

    p, argv, _ = route.run("package", **creds)
    assert p.returncode == 0, p.stderr
    assert not [v for v in _option_values(argv, "--env") if v.startswith("AWS_")], argv


def test_the_aws_cli_profile_is_exported_on_the_host(route):
    """No AWS_* variable: the current profile's credentials and region, through the host's AWS CLI."""
    route.engine("docker")
    route.aws("export AWS_ACCESS_KEY_ID=ASIAPROFILE\nexport AWS_SECRET_ACCESS_KEY=profile-secret\n"
              "export AWS_SESSION_TOKEN=profile-token", "eu-central-1")
    p, argv, engine_env = route.run("doctor", "SECRET_ID=db/app", AWS_PROFILE="team")
    assert p.returncode == 0, p.stderr
    names = set(_option_values(argv, "--env"))
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_REGION"} <= names, argv
    assert "AWS_PROFILE" not in names
    assert not [a for a in argv if "profile-secret" in a or "profile-token" in a], argv
    assert engine_env["AWS_SECRET_ACCESS_KEY"] == "profile-secret" and engine_env["AWS_REGION"] == "eu-central-1"
    assert argv[-3:] == ["--inside", "doctor", "SECRET_ID=db/app"], argv

    (route.records / "aws").unlink()
    p, argv, _ = route.run("package", AWS_PROFILE="team")
    assert p.returncode == 0 and not (route.records / "aws").exists(), "the AWS CLI was asked for a build"


def test_usage_without_a_target(route):
    route.engine("docker")
    p, argv, _ = route.run()
    assert p.returncode == 2 and argv is None and "packaging/in-container.sh package" in p.stderr, p.stderr


@pytest.fixture()
def inside(tmp_path):
    """The script's part inside the container, run on a checkout here with fakes of what it calls
    there (apt-deps.sh, make, chown, setpriv) recording their arguments, one call a line."""
    if os.geteuid() != 0:
        pytest.fail("the container's part runs as root (it hands the checkout's owner over to make)", pytrace=False)
    checkout = tmp_path / "src"
    (checkout / "packaging").mkdir(parents=True)
    shutil.copy2(PACKAGING / "in-container.sh", checkout / "packaging")
    calls = tmp_path / "calls"
    recorder = f'#!/bin/sh\necho "$(basename "$0") $*" >>"{calls}"\n'
    _executable(checkout / "packaging" / "apt-deps.sh", recorder)
    fakes = tmp_path / "fakes"
    fakes.mkdir()
    for name in ("make", "chown", "setpriv"):
        _executable(fakes / name, recorder)
    for build_dir in (".build", ".build-curl", ".build-tools"):
        (checkout / build_dir).mkdir()

    def run(owner: int) -> list[str]:
        os.chown(checkout, owner, owner)
        env = dict(os.environ, PATH=f"{fakes}:{os.environ['PATH']}")
        p = subprocess.run([str(checkout / "packaging" / "in-container.sh"), "--inside", "package", "sam-build"],
                           env=env, capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, p.stderr
        return calls.read_text().splitlines()

    run.checkout = checkout
    return run


def test_inside_root_installs_then_make_runs_as_the_checkouts_owner(inside):
    calls = inside(1000)
    assert calls[:2] == ["apt-deps.sh make", "make --no-print-directory build-deps"], calls
    chown = calls[2].split()
    assert chown[:2] == ["chown", "1000:1000"], calls
    assert chown[2:5] == [str(inside.checkout / d) for d in (".build", ".build-curl", ".build-tools")], calls
    assert calls[3:] == ["setpriv --reuid=1000 --regid=1000 --clear-groups make --no-print-directory package sam-build"]


def test_inside_a_checkout_root_owns_make_runs_as_root(inside):
    """A rootless engine maps the user to root: root's files are the user's, nothing to hand over."""
    calls = inside(0)
    assert calls == ["apt-deps.sh make", "make --no-print-directory build-deps",
                     "make --no-print-directory package sam-build"], calls


# ---------------------------------------------------------------------------------- CI
def _ci() -> dict:
    return yaml.safe_load((REPO / ".github" / "workflows" / "ci.yml").read_text())


def test_every_container_of_ci_is_the_pinned_image():
    """The test job builds and proves the package in the image the container route uses."""
    images = [job["container"] for job in _ci()["jobs"].values() if "container" in job]
    assert images and all(image == pinned_image() for image in images), images


def test_ci_takes_the_container_route_as_a_laptop_does():
    job = _ci()["jobs"]["container-route"]
    assert "container" not in job, "the route runs its own container, from the runner's Docker"
    runs = [s.get("run", "") for s in job["steps"]]
    assert "packaging/in-container.sh package sam-build" in runs, runs


# ---------------------------------------------------------------------------------- deploy template
def test_the_deploy_template_ships_the_zip_and_changes_nothing_else(tmp_path):
    out = tmp_path / "dist" / "template.yaml"
    assert deploy_template.main([str(out)]) == 0
    original, shipped = load_template(lint.TEMPLATE), load_template(out)
    assert original["Resources"]["RotationFunction"]["Properties"]["CodeUri"] == "."
    assert shipped["Resources"]["RotationFunction"]["Properties"]["CodeUri"] == "rotator.zip"
    shipped["Resources"]["RotationFunction"]["Properties"]["CodeUri"] = "."
    assert shipped == original
    # No other local artifact SAM would build or zip instead of uploading the zip as it is.
    assert not [name for name, r in shipped["Resources"].items() if name != "RotationFunction"
                and {"CodeUri", "ContentUri", "DefinitionUri"} & set(r.get("Properties") or {})]


@pytest.mark.parametrize("text", ["Resources:\n  F:\n    Properties:\n      CodeUri: src/\n",
                                  "Resources:\n  F:\n    Properties:\n      CodeUri: .\n  G:\n    Properties:\n      CodeUri: .\n"])
def test_the_deploy_template_refuses_a_template_it_cannot_read_one_way(text):
    with pytest.raises(ValueError, match="exactly one"):
        deploy_template.deploy_template(text)


def test_sam_validates_the_deploy_template(tmp_path, sam):
    out = tmp_path / "template.yaml"
    assert deploy_template.main([str(out)]) == 0
    p = subprocess.run([*lint.no_network(), sam, "validate", "--template", str(out), "--region", "us-east-1"],
                       cwd=tmp_path, capture_output=True, text=True, env=lint.sam_environment(), timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr


def test_the_documented_repository_parameters_are_what_sam_reads_as_the_templates(template):
    """docs/deploying.md's example of ROTATOR_PARAMETERS, parsed by SAM CLI's own --parameter-overrides
    type (from the tools virtualenv), names template parameters only, with the values meant."""
    text = (REPO / "docs" / "deploying.md").read_text()
    (example,) = re.findall(r"^ *\| `ROTATOR_PARAMETERS` \|.* e\.g\. `([^`]+)` \|$", text, re.M)
    python = lint.TOOLS_BIN / "python"
    if not python.exists():
        pytest.fail("the tools virtualenv is missing: run `make tools`", pytrace=False)
    code = ("import json, sys\nfrom samcli.cli.types import CfnParameterOverridesType\n"
            "print(json.dumps(CfnParameterOverridesType().convert((sys.argv[1],), None, None)))")
    p = subprocess.run([str(python), "-c", code, example], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    parsed = yaml.safe_load(p.stdout)
    assert set(parsed) <= set(template["Parameters"]), set(parsed) - set(template["Parameters"])
    assert parsed["DatabaseInstanceIds"] == "i-0123456789abcdef0" and parsed["RotateImmediately"] == "false"
