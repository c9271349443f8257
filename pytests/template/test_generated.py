"""template.yaml is generated from template.in.yaml and the host scripts in hosts/ (ops/template.py):
the committed file is current, the source holds no script text, and the scripts repeat nothing."""

from __future__ import annotations

import hashlib
import re
import shutil

import pytest
import yaml

from local import ssm_runner
from ops import lint, template

REPO = template.REPO


def test_committed_template_is_what_the_generator_makes():
    assert template.render() == template.OUTPUT.read_text(encoding="utf-8"), \
        "template.yaml is out of date: run `make template` and commit it"
    assert template.main(["--check"]) == 0


def test_the_check_fails_on_a_stale_template(tmp_path, monkeypatch):
    stale = tmp_path / "template.yaml"
    stale.write_text(template.OUTPUT.read_text(encoding="utf-8").replace("set -Eeuo pipefail", "set -e", 1))
    monkeypatch.setattr(template, "OUTPUT", stale)
    assert template.main(["--check"]) == 1


def test_committed_shipped_documents_swift_is_what_the_generator_makes():
    expected = template.render_swift(template.OUTPUT.read_text(encoding="utf-8"))
    assert expected == template.SWIFT_OUTPUT.read_text(encoding="utf-8"), \
        "Sources/Rotation/ShippedDocuments.swift is out of date: run `make template` and commit it"


def test_the_check_fails_on_a_stale_shipped_documents_swift(tmp_path, monkeypatch, capsys):
    stale = tmp_path / "ShippedDocuments.swift"
    text = template.SWIFT_OUTPUT.read_text(encoding="utf-8")
    digest = re.search(r'scriptSHA256: "([0-9a-f]{64})"', text)[1]
    stale.write_text(text.replace(digest, "0" * 64, 1))
    monkeypatch.setattr(template, "SWIFT_OUTPUT", stale)
    assert template.main(["--check"]) == 1
    assert "ShippedDocuments.swift is out of date" in capsys.readouterr().err
    # A host script changed without `make template` leaves both files stale.
    monkeypatch.setattr(template, "SWIFT_OUTPUT", template.REPO / "Sources" / "Rotation" / "ShippedDocuments.swift")
    changed = template.render().replace("set -Eeuo pipefail", "set -e", 1)
    assert template.render_swift(changed) != template.SWIFT_OUTPUT.read_text(encoding="utf-8")


def test_the_shipped_digests_are_of_the_scripts_the_agent_runs():
    """Each engine's digest is the SHA-256 of the script the local agent writes for the document the
    function's environment names (ssm_runner.shell_script of template.yaml's resolved document)."""
    documents = ssm_runner.load_documents(template.OUTPUT)
    text = template.SWIFT_OUTPUT.read_text(encoding="utf-8")
    for engine, logical in (("postgres", "PostgresRotationDocument"), ("mysql", "MySQLRotationDocument"),
                            ("sqlserver", "SQLServerRotationDocument")):
        content = documents[logical]
        digest = hashlib.sha256(ssm_runner.shell_script(content).encode("utf-8")).hexdigest()
        block = text.split(f".{engine}: ShippedDocument(", 1)[1].split("]),", 1)[0]
        assert f'action: "{content["mainSteps"][0]["action"]}", scriptSHA256: "{digest}"' in block, engine
        for name, spec in content["parameters"].items():
            pattern = f'"{spec["allowedPattern"]}"' if "allowedPattern" in spec else "nil"   # Login: allowedValues
            assert f'"{name}": .init(type: "String", allowedPattern: {pattern}, ' \
                   f'interpolationType: "ENV_VAR")' in block, (engine, name)


class _SourceLoader(yaml.SafeLoader):
    """template.in.yaml as data: every tag kept as (tag, value)."""


_SourceLoader.add_multi_constructor("!", lambda loader, suffix, node: (
    suffix, loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else loader.construct_sequence(node)))


def test_the_source_template_embeds_no_script():
    source = yaml.load(template.SOURCE.read_text(encoding="utf-8"), Loader=_SourceLoader)  # noqa: S506
    linux = source["Mappings"]["HostScripts"]["Linux"]
    assert linux == {"Prologue": ("HostScript", "hosts/linux/prologue.sh"), "Flow": ("HostScript", "hosts/linux/flow.sh")}
    documents = {name: r for name, r in source["Resources"].items() if r["Type"] == "AWS::SSM::Document"}
    assert len(documents) == 3
    for name, resource in documents.items():
        for step in resource["Properties"]["Content"]["mainSteps"]:
            for item in step["inputs"]["runCommand"]:
                assert isinstance(item, tuple) and item[0] in ("HostScript", "FindInMap"), (name, str(item)[:80])
    # And no multi-line string anywhere else that a script could hide in.
    assert not re.search(r"^\s*(- |\w+: )\|", template.SOURCE.read_text(encoding="utf-8"), re.M)


def test_an_include_is_the_helper_joined_without_its_imports():
    script = template.script_text(REPO / "hosts" / "linux" / "postgres.sh")
    assert "#include" not in script
    helper = script.split("<<'PYTHON' || true\n", 1)[1].split("\nPYTHON\n", 1)[0]
    assert "from secret import" not in helper
    assert helper.index("def read_version(") < helper.index("def scram_verifier(")
    compile(helper, "helper", "exec")


def test_the_generator_refuses_what_would_break_a_document(tmp_path):
    (tmp_path / "a.py").write_text("x = 1\nPYTHON\n")
    (tmp_path / "s.sh").write_text("read -r -d '' helper <<'PYTHON' || true\n#include a.py\nPYTHON\n")
    with pytest.raises(template.TemplateError, match="delimiter"):
        template.script_text(tmp_path / "s.sh")
    (tmp_path / "t.sh").write_text("echo trailing\n\n")
    with pytest.raises(template.TemplateError, match="newline"):
        template.script_text(tmp_path / "t.sh")
    source = tmp_path / "in.yaml"
    source.write_text("X:\n  - !HostScript ../etc/passwd\n")
    with pytest.raises(template.TemplateError, match="outside"):
        template.render(source, root=tmp_path)
    source.write_text("X:\n  - !HostScript a.sh b.sh\n")
    with pytest.raises(template.TemplateError, match="one path"):
        template.render(source, root=tmp_path)


def _windows(path, size=6):
    lines = [re.sub(r"\s+", " ", line).strip() for line in path.read_text(encoding="utf-8").splitlines()]
    lines = [line for line in lines if line and not line.startswith("#")]
    return {tuple(lines[i:i + size]) for i in range(len(lines) - size + 1)}


def test_no_host_script_repeats_another():
    """The helpers the engines share live once (hosts/linux/secret.py): no six lines in a row
    appear in two host script files."""
    files = sorted(p for p in (REPO / "hosts").rglob("*") if p.suffix in (".sh", ".py", ".ps1"))
    assert len(files) >= 8, files
    seen: dict[tuple[str, ...], str] = {}
    for path in files:
        for window in _windows(path):
            other = seen.setdefault(window, path.name)
            assert other == path.name, f"{path.name} repeats six lines of {other}: {window}"


def test_the_repetition_check_would_catch_a_copy(tmp_path):
    original = REPO / "hosts" / "linux" / "secret.py"
    copy = tmp_path / "copy.py"
    copy.write_text("\n".join(original.read_text().splitlines()[40:60]) + "\n")
    assert _windows(original) & _windows(copy)


def test_host_pieces_pass_shellcheck_as_files():
    if shutil.which("shellcheck") is None:
        pytest.fail("shellcheck is not installed: `make apt-deps` installs it", pytrace=False)
    pieces = lint.host_pieces()
    assert [p.name for p in pieces] == ["flow.sh", "mysql.sh", "postgres.sh", "prologue.sh"]
    result = lint.shellcheck_pieces(pieces)
    assert result.ok, result.output


def test_ruff_is_clean():
    if lint.tool("ruff") is None:
        pytest.fail("ruff is not installed: run `make tools` (make test does)", pytrace=False)
    result = lint.ruff()
    assert result.ok, result.output


def test_ruff_would_catch_a_mistake(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\n\ndef f():\n    return undefined_name\n")
    exe = lint.tool("ruff")
    if exe is None:
        pytest.fail("ruff is not installed: run `make tools`", pytrace=False)
    import subprocess
    proc = subprocess.run([exe, "check", "--no-cache", "--config", str(REPO / "pyproject.toml"), str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "F401" in proc.stdout and "F821" in proc.stdout, proc.stdout
