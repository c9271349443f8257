"""The SQL Server document's PowerShell, checked statically: PowerShell and SQL Server cannot run
here. tree-sitter-powershell (PyPI) parses the script; plain-text checks cover the rest and run
even without it."""

from __future__ import annotations

import re

import pytest

EXIT_CODES = {0, 2, 3, 4, 5, 6, 7}
ALTER_LOGIN = "N'ALTER LOGIN ' + QUOTENAME(@login) + N' WITH PASSWORD = ' + QUOTENAME(@password, '''')"
CONTRACT_PATTERNS = [
    "^(set|verify)$",
    "^arn:aws[a-z-]{0,16}:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$",
    "^[A-Za-z0-9-]{32,64}$",
]


@pytest.fixture(scope="module")
def script(documents) -> str:
    step = documents["SQLServerRotationDocument"]["mainSteps"][0]
    assert step["action"] == "aws:runPowerShellScript"
    return step["inputs"]["runCommand"][0]


@pytest.fixture(scope="module")
def tree(script):
    tree_sitter = pytest.importorskip("tree_sitter")
    grammar = pytest.importorskip("tree_sitter_powershell")
    parser = tree_sitter.Parser(tree_sitter.Language(grammar.language()))
    return parser.parse(script.encode("utf-8"))


def nodes(node, kind=None):
    stack = [node]
    while stack:
        current = stack.pop()
        if kind is None or current.type == kind:
            yield current
        stack.extend(reversed(current.children))


def text_of(node) -> str:
    return node.text.decode("utf-8")


def top_level_statements(tree) -> list:
    lists = [c for c in tree.root_node.children if c.type == "statement_list"]
    assert len(lists) == 1
    return [c for c in lists[0].children if c.type != "comment"]


# ---- with the parser ---------------------------------------------------------------------


def test_parses_without_errors(tree):
    broken = [(n.type, n.start_point) for n in nodes(tree.root_node) if n.type == "ERROR" or n.is_missing]
    assert not tree.root_node.has_error and broken == []


def test_reads_only_its_three_ssm_variables(tree):
    variables = {text_of(n) for n in nodes(tree.root_node, "variable")}
    env = {v for v in variables if v.lower().startswith("$env:") or v.lower().startswith("${env:")}
    assert env == {"$env:SSM_Action", "$env:SSM_SecretId", "$env:SSM_VersionId"}


def test_every_exit_is_explicit_with_a_contract_code(tree):
    exits = []
    for statement in nodes(tree.root_node, "flow_control_statement"):
        words = text_of(statement).split()
        if words and words[0].lower() == "exit":
            assert len(words) == 2 and words[1].isdigit(), f"exit without an explicit code: {text_of(statement)}"
            exits.append(int(words[1]))
    assert set(exits) == EXIT_CODES, exits
    # the last top-level statement is `exit 0`, after the result line
    assert text_of(top_level_statements(tree)[-1]) == "exit 0"
    # the trap (anything unforeseen) also leaves through an explicit exit
    traps = list(nodes(tree.root_node, "trap_statement"))
    assert len(traps) == 1 and re.search(r"\bexit 6\s*\}\s*$", text_of(traps[0]))


def test_error_action_preference_is_stop_first(tree):
    assert text_of(top_level_statements(tree)[0]) == "$ErrorActionPreference = 'Stop'"


# ---- plain text (always) -----------------------------------------------------------------


def test_text_checks(script):
    assert "{{" not in script
    assert re.findall(r"(?im)^\s*\$ErrorActionPreference\s*=\s*'Stop'", script)
    # only the SSM variables, and no other way into the environment
    assert set(re.findall(r"(?i)\$env:\w+", script)) == {"$env:SSM_Action", "$env:SSM_SecretId", "$env:SSM_VersionId"}
    assert not re.search(r"(?i)GetEnvironmentVariable|\benv:\\|Get-ChildItem\s+env:|\$\{env:", script)
    # explicit exits with every contract code and nothing else
    codes = {int(c) for c in re.findall(r"(?im)\bexit\s+(\d+)\b", script)}
    assert codes == EXIT_CODES
    assert not re.search(r"(?im)\bexit\s*$", script), "an exit without a code"
    for pattern in CONTRACT_PATTERNS:
        assert f"'{pattern}'" in script


def test_login_is_changed_with_bound_parameters(script):
    assert ALTER_LOGIN in script
    assert "EXEC sys.sp_executesql @sql" in script
    assert "IF @sql IS NULL" in script, "QUOTENAME returns NULL past 128 characters: refuse, never run NULL"
    assert "Parameters.Add('@login'" in script and "Parameters.Add('@password'" in script
    assert "Parameters['@password'].Value = $password" in script
    # the password is never formatted into SQL or a connection string
    for line in script.splitlines():
        if "$password" in line:
            assert re.search(r"Value = \$password|\$password\.ToCharArray\(\)|\$password = Get-SecretText"
                             # alternating users: the Windows account APIs take it as an argument
                             r"|ValidateCredentials\(\$account, \$password\)|SetPassword\(\$password\)"
                             r"|UserPrincipal\(\$context, \$account, \$password, \$true\)", line), line


def test_admin_uses_windows_authentication_and_verify_sql_authentication(script):
    assert "$builder['Integrated Security'] = $true" in script
    assert "$builder['Integrated Security'] = $false" in script
    assert "System.Data.SqlClient.SqlCredential" in script
    assert script.count("$builder['Pooling'] = $false") == 2, "a pooled connection could verify an old password"
    assert "type = N'S'" in script, "only SQL logins have passwords; a missing one exits 3"


def test_no_password_in_output(script):
    for line in script.splitlines():
        if re.search(r"Write-RotatorError|\[Console\]::|Write-(Host|Output|Error|Warning|Verbose)", line):
            assert not re.search(r"\$(password|secretString|secret|securePassword|awsOutput)\b", line), line
    assert "'the secret value is not valid JSON'" in script, "a JSON error must not quote the secret"


def test_result_line_is_the_contract(script):
    assert (
        "[Console]::Out.WriteLine('ROTATOR-RESULT action=' + $action + ' version=' + $versionId"
        " + ' outcome=' + $outcome)" in script
    )
    for outcome in ("verified", "unchanged", "changed"):
        assert f"$outcome = '{outcome}'" in script


def test_alternating_users_windows_accounts_and_bound_names(script):
    # Only with masterarn, checked as the other identifiers are.
    assert "$masterArn = Get-SecretText 'masterarn' '' 2048" in script
    assert "if (-not (Test-Parameter $masterArn $reSecretId))" in script
    # The master secret and AWSCURRENT are read on the host like the version itself.
    assert "Read-Secret $masterArn '' 'AWSCURRENT' 'the master secret'" in script
    assert "Read-Secret $secretId '' 'AWSCURRENT' 'the AWSCURRENT version'" in script
    # The Windows account is created or reset as the master account; verify asks Windows itself.
    assert "PrincipalContext($kind, $Domain, $AccountName, $AccountPassword)" in script
    assert "$context.ValidateCredentials($account, $password)" in script
    # The SQL login and its roles: names only through QUOTENAME, partner and login bound parameters.
    assert "N'CREATE LOGIN ' + QUOTENAME(@login) + N' FROM WINDOWS'" in script
    assert "Parameters.Add('@partner'" in script and "Parameters['@partner'].Value = $Partner" in script
    assert "SUSER_ID(@partner)" in script and "SUSER_SID(@partner)" in script
    # The login applications hold (AWSCURRENT's) is the source of the grants, never their target.
    assert "if ($partner -ne $username) {" in script
    # Single user is untouched: the alternating path ends on its own before it.
    assert "if ($masterArn.Length -gt 0) {\n    Write-Result (Invoke-AlternatingUsers)\n    exit 0\n}" in script
