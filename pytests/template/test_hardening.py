"""What an attacker inside the account, on a database host, or upstream of the build could use, closed.

- the secret's resource policy: only the rotation function and the listed administrators change the
  secret; CloudFormation (as a listed deployer) can still deploy, and a stack without administrators
  still deploys as it is;
- the database hosts' role: what the SSM agent needs for Run Command, no ssm:GetParameter(s);
- Secrets Manager may invoke the function for this stack's secret only;
- the instance ids cannot break (or add to) the secret's JSON;
- packaging/build-libcurl.sh: HTTPS only, and every downloaded file checked against a committed sha256
  before it is read;
- the deploy workflow: actions pinned by commit, OIDC tokens only in a job that builds nothing.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from ops import lint

from .test_template import as_list, evaluate, resources, statements

# Each test is one try of the attack table of docs/RELIABILITY.md (docs/THREAT-MODEL.md, 12 to 17).
pytestmark = pytest.mark.chaos("Attacks: the template's and the build's hardening (static)")

REPO = lint.REPO
ACCOUNT = "123456789012"
FUNCTION = "arn:RotationFunctionRole"            # what evaluate() makes of !GetAtt RotationFunctionRole.Arn
HOSTS = "arn:DatabaseHostRole"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"
DEPLOYER = f"arn:aws:iam::{ACCOUNT}:role/github-deploy"
SSO_ADMIN = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_0123"
STRANGER = f"arn:aws:iam::{ACCOUNT}:role/some-app"

# What changes the secret, its rotation, its policy or its tags.
VALUE_WRITES = ["secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"]
SECRET_CHANGES = ["secretsmanager:UpdateSecret", "secretsmanager:DeleteSecret", "secretsmanager:RestoreSecret",
                  "secretsmanager:ReplicateSecretToRegions", "secretsmanager:RemoveRegionsFromReplication",
                  "secretsmanager:StopReplicationToReplica"]
MANAGEMENT = ["secretsmanager:RotateSecret", "secretsmanager:CancelRotateSecret", "secretsmanager:PutResourcePolicy",
              "secretsmanager:DeleteResourcePolicy", "secretsmanager:TagResource", "secretsmanager:UntagResource"]
WRITES = VALUE_WRITES + SECRET_CHANGES + MANAGEMENT
# What CloudFormation calls on the secret for this template's resources after creating it: UpdateSecret
# (DatabaseSecret), RotateSecret / CancelRotateSecret (RotationSchedule), Put/DeleteResourcePolicy
# (DatabaseSecretPolicy), Tag/UntagResource (stack tags).
CLOUDFORMATION = ["secretsmanager:UpdateSecret", *MANAGEMENT]


# ---------------------------------------------------------------------------------- the secret's policy
def secret_policy(template, overrides=None) -> list[dict[str, Any]]:
    (pol,) = resources(template, "AWS::SecretsManager::ResourcePolicy").values()
    out = []
    for st in statements(evaluate(template, pol["Properties"]["ResourcePolicy"], overrides)):
        if st == "AWS::NoValue":                      # an !If's dropped branch
            continue
        if st.get("Condition") == "AWS::NoValue":
            st = {k: v for k, v in st.items() if k != "Condition"}
        out.append(st)
    return out


def denied(policy: list[dict[str, Any]], principal: str, action: str) -> bool:
    """Whether a Deny of the resource policy applies to `principal` calling `action` (ArnNotLike on
    aws:PrincipalArn, the only condition these statements use; ArnLike's * and ? wildcards)."""
    for st in policy:
        if st["Effect"] != "Deny" or st["Principal"] != "*" or action not in as_list(st["Action"]):
            continue
        cond = st.get("Condition")
        if cond is None:
            return True
        assert set(cond) == {"ArnNotLike"} and set(cond["ArnNotLike"]) == {"aws:PrincipalArn"}, cond
        patterns = as_list(cond["ArnNotLike"]["aws:PrincipalArn"])
        assert patterns and all(patterns), f"an empty ARN in {patterns}"
        if not any(fnmatch.fnmatchcase(principal, p) for p in patterns):
            return True
    return False


def test_without_administrators_only_the_function_writes_values_and_the_stack_still_deploys(template):
    policy = secret_policy(template)
    for action in VALUE_WRITES:
        assert not denied(policy, FUNCTION, action), action
        for other in (HOSTS, STRANGER, DEPLOYER, ROOT):
            assert denied(policy, other, action), (other, action)
    for action in SECRET_CHANGES:
        for anyone in (FUNCTION, HOSTS, STRANGER, DEPLOYER):
            assert denied(policy, anyone, action), (anyone, action)
    # Rotation settings, the policy itself and tags stay with IAM: CloudFormation (as the deployer)
    # can create the schedule after the policy and update the policy, and nothing is locked.
    for action in MANAGEMENT:
        assert not denied(policy, DEPLOYER, action), action
    # Reading is as before.
    for reader in (FUNCTION, HOSTS):
        assert not denied(policy, reader, "secretsmanager:GetSecretValue")
    assert denied(policy, STRANGER, "secretsmanager:GetSecretValue")


def test_with_administrators_only_they_and_the_function_change_the_secret(template):
    admins = [DEPLOYER, f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/*"]
    policy = secret_policy(template, {"SecretAdministratorArns": admins})
    for action in WRITES:
        assert denied(policy, STRANGER, action), action
        assert denied(policy, HOSTS, action), action
        assert not denied(policy, SSO_ADMIN, action), action       # a pattern
    # The deployer listed: every call CloudFormation makes on the secret goes through.
    for action in CLOUDFORMATION:
        assert not denied(policy, DEPLOYER, action), action
    # The function: exactly its two writes.
    for action in WRITES:
        assert denied(policy, FUNCTION, action) == (action not in VALUE_WRITES), action
    # The account's root user may still replace the policy (a list naming no one who can act), and
    # nothing else.
    for action in WRITES:
        assert denied(policy, ROOT, action) == (action not in MANAGEMENT), action
    # The readers do not become writers.
    policy = secret_policy(template, {"SecretAdministratorArns": admins, "SecretReaderArns": [STRANGER]})
    assert not denied(policy, STRANGER, "secretsmanager:GetSecretValue")
    assert all(denied(policy, STRANGER, a) for a in WRITES)


def test_the_administrators_parameter(template):
    p = template["Parameters"]["SecretAdministratorArns"]
    assert p["Type"] == "CommaDelimitedList" and p["Default"] == ""
    assert "deploy" in p["Description"]
    assert evaluate(template, template["Conditions"]["HasSecretAdministrators"]) is False
    assert evaluate(template, template["Conditions"]["HasSecretAdministrators"],
                    {"SecretAdministratorArns": [DEPLOYER]}) is True
    text = (REPO / "docs" / "deploying.md").read_text()
    assert "SecretAdministratorArns" in text and "Who may change the secret" in text


# ---------------------------------------------------------------------------------- the hosts' role
def host_role_statements(template) -> list[dict[str, Any]]:
    out = []
    role = template["Resources"]["DatabaseHostRole"]["Properties"]
    for pol in role.get("Policies", []):
        out += statements(pol["PolicyDocument"])
    for r in template["Resources"].values():
        if r["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy") and \
                {"Ref": "DatabaseHostRole"} in r["Properties"].get("Roles", []):
            out += statements(r["Properties"]["PolicyDocument"])
    return out


def test_the_host_role_grants_the_ssm_agent_run_command_and_no_parameter(template):
    role = template["Resources"]["DatabaseHostRole"]["Properties"]
    assert not role.get("ManagedPolicyArns"), "no AWS managed policy (AmazonSSMManagedInstanceCore reads every parameter)"
    allowed = {a for st in host_role_statements(template) if st["Effect"] == "Allow" for a in as_list(st["Action"])}
    agent = {"ssm:UpdateInstanceInformation",
             "ec2messages:AcknowledgeMessage", "ec2messages:DeleteMessage", "ec2messages:FailMessage",
             "ec2messages:GetEndpoint", "ec2messages:GetMessages", "ec2messages:SendReply",
             "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel",
             "ssmmessages:OpenControlChannel", "ssmmessages:OpenDataChannel"}
    assert allowed == agent | {"secretsmanager:GetSecretValue", "kms:Decrypt"}
    assert not any(fnmatch.fnmatchcase("ssm:GetParameter", a) or fnmatch.fnmatchcase("ssm:GetParameters", a)
                   for a in allowed)
    policy = template["Resources"]["DatabaseHostAgentPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    assert "DatabaseHostAgentPolicy" in template["Resources"]["RotationSchedule"]["DependsOn"]
    assert template["Outputs"]["DatabaseHostAgentPolicyArn"]["Value"] == {"Ref": "DatabaseHostAgentPolicy"}


# ---------------------------------------------------------------------------------- invoking the function
def test_secrets_manager_may_invoke_the_function_for_this_secret_only(template):
    (perm,) = resources(template, "AWS::Lambda::Permission").values()
    p = perm["Properties"]
    assert p["Principal"] == "secretsmanager.amazonaws.com"
    assert p["SourceArn"] == {"Ref": "DatabaseSecret"}            # Ref of a secret is its ARN
    assert p["SourceAccount"] == {"Ref": "AWS::AccountId"}


# ---------------------------------------------------------------------------------- the secret's JSON
INSTANCE_IDS_GOOD = ["i-0123abcd", "i-0123456789abcdef0", "mi-0123456789abcdef0"]
INSTANCE_IDS_BAD = ["", "i-", "i-0123456789abcdef", "i-0123456789ABCDEF0", "mi-0123abcd", "x-0123456789abcdef0",
                    " i-0123456789abcdef0", "i-0123456789abcdef0 ", 'i-0123456789abcdef0"', "i-0123456789abcdef0\\",
                    'i-0123456789abcdef0"],"masterarn":"arn:aws:secretsmanager:eu-west-1:123456789012:secret:x',
                    "i-0123456789abcdef0\n", "*", "i-0123456789abcdef0,i-0fedcba9876543210"]


def allowed_by(param: dict[str, Any], value: str) -> bool:
    """CloudFormation's check of one value (one item of a CommaDelimitedList): the whole value must match."""
    if "AllowedValues" in param:
        return value in [str(v) for v in param["AllowedValues"]]
    return re.fullmatch(param["AllowedPattern"], value) is not None


def test_instance_ids_are_instance_ids(template):
    param = template["Parameters"]["DatabaseInstanceIds"]
    assert param["Type"] == "CommaDelimitedList" and "AllowedPattern" in param
    for good in INSTANCE_IDS_GOOD:
        assert allowed_by(param, good), good
    for bad in INSTANCE_IDS_BAD:
        assert not allowed_by(param, bad), bad


def test_no_parameter_can_break_the_secrets_json(template):
    """Every parameter spliced into SecretStringTemplate is limited to values that cannot end a JSON
    string or number (quote, backslash, control characters, brackets, braces); and the values they
    allow make the JSON the function expects, the instance ids list included."""
    gen = template["Resources"]["DatabaseSecret"]["Properties"]["GenerateSecretString"]["SecretStringTemplate"]
    spliced = set(re.findall(r'"Ref": "(\w+)"', json.dumps(gen))) | set(re.findall(r"\$\{(\w+)\}", json.dumps(gen)))
    spliced &= set(template["Parameters"])
    assert {"DatabaseEngine", "DatabaseHost", "LoginName", "DatabaseInstanceIds", "DatabasePort", "DatabaseName",
            "MasterSecretArn"} <= spliced
    samples = {"DatabaseHost": "db.internal", "LoginName": "app", "DatabaseInstanceIds": "i-0123456789abcdef0",
               "DatabasePort": "6432", "DatabaseName": "app", "DatabaseEngine": "postgres",
               "MasterSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:m-AbCdEf"}
    for name in sorted(spliced):
        param = template["Parameters"][name]
        assert "AllowedValues" in param or "AllowedPattern" in param, f"{name} takes any value into the JSON"
        assert allowed_by(param, samples[name]), name
        for evil in ['"', "\\", "\n", "\x00", "}", "]", '","x":"', "\u2028"]:
            for value in (evil, samples[name] + evil, evil + samples[name]):
                assert not allowed_by(param, value), (name, value)
    ids = ["i-0123abcd", "mi-0fedcba9876543210"]
    v = json.loads(evaluate(template, gen, {"DatabaseInstanceIds": ids,
                                            "MasterSecretArn": samples["MasterSecretArn"]}))
    assert v["instanceIds"] == ids and v["masterarn"] == samples["MasterSecretArn"]
    assert set(v) == {"engine", "host", "port", "username", "dbname", "instanceIds", "masterarn", "passwordPlaceholder"}
    assert v["passwordPlaceholder"] is True


# ---------------------------------------------------------------------------------- build-libcurl.sh
SCRIPT = REPO / "packaging" / "build-libcurl.sh"
PINS = REPO / "packaging" / "libcurl.sha256"
FAKE_VERSION = "7.0.0-1+test1"
PATCHES = {"debian/patches/series": "00_one.patch\n",
           "debian/patches/00_one.patch": "--- /dev/null\n+++ b/PATCHED\n@@ -0,0 +1 @@\n+patched\n"}


def _tar(mode: str, files: dict[str, str], prefix: str = "") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(prefix + name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _dsc(files: dict[str, bytes]) -> bytes:
    lines = "".join(f" {hashlib.sha256(b).hexdigest()} {len(b)} {n}\n" for n, b in files.items())
    return f"Format: 3.0 (quilt)\nSource: curl\nVersion: {FAKE_VERSION}\nChecksums-Sha256:\n{lines}".encode()


@pytest.fixture()
def fake_debian(tmp_path):
    """A copy of the script beside pins for a made-up curl, a fake `curl` serving a mirror directory
    (and logging each call) and a fake `dpkg-query` that reports an Ubuntu libcurl: the script builds
    the version pinned, whatever the host has. The made-up curl's configure leaves a marker: it runs
    only if the script accepted the source."""
    marker = tmp_path / "configure-ran"
    orig = _tar("w:gz", {"configure": f"#!/bin/sh\ntouch '{marker}'\nexit 1\n"}, "curl-7.0.0/")
    debian = _tar("w:xz", PATCHES)
    names = {"orig": "curl_7.0.0.orig.tar.gz", "debian": f"curl_{FAKE_VERSION}.debian.tar.xz",
             "dsc": f"curl_{FAKE_VERSION}.dsc"}
    genuine = {names["orig"]: orig, names["debian"]: debian}
    genuine[names["dsc"]] = _dsc({names["orig"]: orig, names["debian"]: debian})
    pkg = tmp_path / "packaging"
    pkg.mkdir()
    shutil.copy(SCRIPT, pkg / "build-libcurl.sh")
    (pkg / "libcurl.sha256").write_text("# test pins\n" + "".join(
        f"{hashlib.sha256(b).hexdigest()}  {n}\n" for n, b in genuine.items()))
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "curl.log"
    (bin_dir / "curl").write_text(
        "#!/bin/sh\n"
        f"echo \"$*\" >>'{log}'\n"
        "out=; url=\n"
        "while [ $# -gt 0 ]; do case $1 in -o) out=$2; shift ;; -*) ;; *) url=$1 ;; esac; shift; done\n"
        f"f='{mirror}'/${{url##*/}}\n"
        "[ -f \"$f\" ] || exit 22\n"
        "cp \"$f\" \"$out\"\n")
    (bin_dir / "dpkg-query").write_text("#!/bin/sh\nprintf '%s' '8.5.0-2ubuntu10.6'\n")
    for f in bin_dir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IXUSR)

    class Fake:
        pass

    fake = Fake()
    fake.genuine, fake.names, fake.mirror, fake.marker, fake.log, fake.pkg = genuine, names, mirror, marker, log, pkg

    def serve(files: dict[str, bytes]) -> None:
        for n, b in files.items():
            (mirror / n).write_bytes(b)

    def run(script: Path = pkg / "build-libcurl.sh") -> subprocess.CompletedProcess[str]:
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
        return subprocess.run(["bash", str(script), str(tmp_path / "out")], env=env, capture_output=True,
                              text=True, timeout=120)

    fake.serve, fake.run = serve, run
    fake.src = tmp_path / "out" / FAKE_VERSION / "src"
    return fake


def test_build_libcurl_fetches_over_https_only():
    text = SCRIPT.read_text()
    assert not re.search(r"http://", text), "a plain-HTTP download"
    assert "--proto '=https'" in text and "--proto-redir '=https'" in text


def test_build_libcurl_uses_the_genuine_files(fake_debian):
    fake_debian.serve(fake_debian.genuine)
    r = fake_debian.run()
    assert fake_debian.marker.exists(), r.stderr        # it got as far as configure
    calls = fake_debian.log.read_text().splitlines()
    assert len(calls) == 3 and all("--proto =https" in c and " https://" in c for c in calls), calls


def test_build_libcurl_refuses_a_dsc_and_patches_rewritten_together(fake_debian):
    """A mirror serving another Debian patch set with a .dsc that vouches for it: the .dsc's own
    checksums are not trusted, the committed pins are, and nothing of it is unpacked or run."""
    n = fake_debian.names
    evil = _tar("w:xz", {**PATCHES, "debian/patches/01_more.patch": PATCHES["debian/patches/00_one.patch"]})
    served = {n["orig"]: fake_debian.genuine[n["orig"]], n["debian"]: evil}
    served[n["dsc"]] = _dsc(served)
    fake_debian.serve(served)
    r = fake_debian.run()
    assert r.returncode != 0
    assert not fake_debian.marker.exists() and not fake_debian.src.exists()
    assert "sha256" in r.stderr and n["dsc"] in r.stderr, r.stderr


@pytest.mark.parametrize("which", ["orig", "debian"])
def test_build_libcurl_refuses_each_tampered_tarball(fake_debian, which):
    n = fake_debian.names
    served = dict(fake_debian.genuine)
    served[n[which]] = served[n[which]] + b"\0"
    fake_debian.serve(served)
    r = fake_debian.run()
    assert r.returncode != 0 and not fake_debian.marker.exists() and not fake_debian.src.exists()
    assert n[which] in r.stderr, r.stderr
    assert not (fake_debian.pkg.parent / "out" / "downloads" / n[which]).exists(), "the tampered file is kept"


def test_build_libcurl_downloads_nothing_for_a_version_not_pinned(fake_debian):
    (fake_debian.pkg / "libcurl.sha256").write_text("# nothing pinned\n")
    fake_debian.serve(fake_debian.genuine)
    r = fake_debian.run()
    assert r.returncode != 0 and "packaging/libcurl.sha256" in r.stderr, r.stderr
    assert not fake_debian.log.exists(), "it downloaded before knowing what to expect"


def test_the_pins_cover_every_file_of_each_version():
    entries = [line.split() for line in PINS.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert entries and all(len(e) == 2 and re.fullmatch(r"[0-9a-f]{64}", e[0]) for e in entries), entries
    files = {e[1] for e in entries}
    dscs = [f for f in files if f.endswith(".dsc")]
    assert dscs
    for dsc in dscs:
        version = dsc[len("curl_"):-len(".dsc")]
        upstream = version.split("-")[0]
        assert f"curl_{version}.debian.tar.xz" in files and f"curl_{upstream}.orig.tar.gz" in files, version


# ---------------------------------------------------------------------------------- workflows
WORKFLOWS = REPO / ".github" / "workflows"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _workflows() -> dict[str, tuple[str, dict[str, Any]]]:
    return {p.name: (p.read_text(), yaml.safe_load(p.read_text())) for p in sorted(WORKFLOWS.glob("*.yml"))}


def test_every_action_is_pinned_by_commit():
    seen = 0
    for name, (text, _) in _workflows().items():
        for m in re.finditer(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", text, re.M):
            ref, rest = m.group(1), m.group(2)
            if ref.startswith("./"):                    # this repository's own workflow
                continue
            seen += 1
            assert PINNED.match(ref), f"{name}: {ref} is not pinned by a full commit SHA"
            assert re.match(r"\s+#\s*v\d", rest), f"{name}: {ref} does not name its tag in a comment"
    assert seen >= 5


def test_only_the_deploy_job_may_get_an_oidc_token_and_it_builds_nothing():
    flows = _workflows()
    for name, (_, wf) in flows.items():
        assert "id-token" not in (wf.get("permissions") or {}), f"{name}: id-token at the workflow level"
        for job_name, job in wf["jobs"].items():
            perms = job.get("permissions") or {}
            if (name, job_name) == ("ci.yml", "deploy"):
                continue
            assert perms.get("id-token") in (None, "none"), (name, job_name)
            if "uses" in job:                           # a called workflow gets the caller's permissions
                assert perms == {} or "id-token" not in perms, (name, job_name)
    wf = flows["ci.yml"][1]
    deploy, build = wf["jobs"]["deploy"], wf["jobs"]["test"]
    assert deploy["permissions"] == {"contents": "read", "id-token": "write"}
    assert "test" in deploy["needs"]
    assert deploy["environment"] == "production" and "environment" not in build
    assert "container" not in deploy
    runs = "\n".join(s.get("run", "") for s in deploy["steps"])
    commands = "\n".join(line for line in runs.splitlines() if not line.strip().startswith("echo "))
    for building in ("make", "swift", "sam build", "sam-build", "stage.sh", "build-libcurl", "apt-get", "zip "):
        assert building not in commands, f"the deploy job runs {building!r}"
    uses = [s.get("uses", "").split("@")[0] for s in deploy["steps"]]
    assert "actions/download-artifact" in uses and "actions/upload-artifact" not in uses
    assert re.search(r'/sam"? deploy ', runs) and '--template-file "$RUNNER_TEMP/package/template.yaml"' in runs
    assert "--only-binary :all:" in runs
    # Credentials are asked for after everything else but the deploy itself.
    creds = next(i for i, s in enumerate(deploy["steps"])
                 if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert creds == len(deploy["steps"]) - 2 and re.search(r'/sam"? deploy ', deploy["steps"][-1]["run"])
    # The test job builds, proves and hands over the package.
    build_runs = "\n".join(s.get("run", "") for s in build["steps"])
    assert "make test" in build_runs
    assert any(s.get("uses", "").startswith("actions/upload-artifact@") for s in build["steps"])
    assert not any("configure-aws-credentials" in s.get("uses", "") for s in build["steps"])
    for _, (_, wf) in flows.items():
        for job in wf["jobs"].values():
            for s in job.get("steps", []):
                if s.get("uses", "").startswith("actions/checkout@"):
                    assert s.get("with", {}).get("persist-credentials") is False
