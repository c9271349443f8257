"""The operating documentation says what the template does: every IAM statement is explained,
and the EKS example's manifests are well-formed and follow AWSCURRENT."""

from __future__ import annotations

import re

import yaml

from ops import lint

DOCS = lint.REPO / "docs"


def _sids(template):
    out = set()
    for res in template["Resources"].values():
        props = res.get("Properties", {})
        for key in ("PolicyDocument", "KeyPolicy", "ResourcePolicy", "AssumeRolePolicyDocument"):
            doc = props.get(key)
            if isinstance(doc, dict):
                st = doc["Statement"]
                out |= {s["Sid"] for s in (st if isinstance(st, list) else [st]) if "Sid" in s}
    return out


def test_deploying_explains_every_iam_statement(template):
    text = (DOCS / "deploying.md").read_text()
    sids = _sids(template)
    assert len(sids) >= 15
    missing = sorted(s for s in sids if f"`{s}`" not in text)
    assert not missing, f"docs/deploying.md does not explain {missing}"
    for needed in ("make deploy", "make rotate", "make status", "samconfig.toml", "host-contract.md",
                   "ALTER ANY LOGIN", "DatabaseHostAgentPolicy", "SecretAdministratorArns", "RotatorDatabase",
                   "| `ReservedConcurrency` |"):
        assert needed in text, needed


def test_eks_example_manifests(template):
    text = (DOCS / "eks-external-secrets.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    docs = [d for b in blocks for d in yaml.safe_load_all(b) if d]
    kinds = {d["kind"]: d for d in docs}
    assert {"ServiceAccount", "SecretStore", "ExternalSecret"} <= set(kinds)
    es = kinds["ExternalSecret"]["spec"]
    assert es["refreshInterval"]
    refs = [e["extract"] for e in es.get("dataFrom", [])] + [e["remoteRef"] for e in es.get("data", [])]
    assert refs and all(r.get("version", "AWSCURRENT") == "AWSCURRENT" for r in refs)
    store = kinds["SecretStore"]["spec"]["provider"]["aws"]
    assert store["service"] == "SecretsManager" and "serviceAccountRef" in store["auth"]["jwt"]
    assert "eks.amazonaws.com/role-arn" in kinds["ServiceAccount"]["metadata"]["annotations"]
    for needed in ("refreshInterval", "single-user", "SecretReaderArns", "AWSPENDING"):
        assert needed in text, needed
