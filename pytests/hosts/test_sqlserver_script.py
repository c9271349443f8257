"""The SQL Server document's PowerShell, checked statically: PowerShell and SQL Server cannot run
here. tree-sitter-powershell (PyPI) parses the script; plain-text checks cover the rest and run
even without it."""

from __future__ import annotations

import re

import pytest

EXIT_CODES = {0, 2, 3, 4, 5, 6, 7, 8}
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


def test_reads_only_its_document_parameters(tree, documents):
    variables = {text_of(n) for n in nodes(tree.root_node, "variable")}
    env = {v for v in variables if v.lower().startswith("$env:") or v.lower().startswith("${env:")}
    parameters = documents["SQLServerRotationDocument"]["parameters"]
    assert env == {f"$env:SSM_{name}" for name in parameters} == {
        "$env:SSM_Action", "$env:SSM_SecretId", "$env:SSM_VersionId", "$env:SSM_Login"}


@pytest.mark.chaos("Attacks: a version naming a login the stack does not rotate (SQL Server, static)")
def test_the_pinned_login_is_checked_before_any_change(tree, script):
    statements = [text_of(s) for s in top_level_statements(tree)]
    pin = next(i for i, s in enumerate(statements) if s.startswith("if ($action -eq 'set' -and $pinnedLogin.Length -gt 0"))
    assert "$username -cne $pinnedLogin -and $username -cne ($pinnedLogin + '_clone')" in statements[pin]
    assert re.search(r"\n\s*exit 3\n", statements[pin])
    username = statements.index("$username = Get-SecretText 'username' '' 128")
    first_change = next(i for i, s in enumerate(statements) if "Invoke-AdminOrFail" in s or "Set-LoginPassword" in s
                        or "Copy-PartnerLogin" in s)
    assert username < pin < first_change


@pytest.mark.chaos("Attacks: a version naming a login the secret's RotatorLogin tag does not pin (SQL Server, static)")
def test_in_a_fleet_the_secrets_login_tag_is_read_before_the_pin_is_checked(tree, script):
    """The shared documents pass Login=tag:RotatorLogin: the script reads the tag itself, refuses a
    secret without one (exit 3), and the pin check that follows compares the version with the tag."""
    statements = [text_of(s) for s in top_level_statements(tree)]
    read = next(i for i, s in enumerate(statements) if s.startswith("if ($action -eq 'set' -and $pinnedLogin -ceq 'tag:RotatorLogin')"))
    assert "$pinnedLogin = Read-LoginTag $secretId" in statements[read] and re.search(r"\n\s*exit 3\n", statements[read])
    pin = next(i for i, s in enumerate(statements) if s.startswith("if ($action -eq 'set' -and $pinnedLogin.Length -gt 0"))
    assert statements.index("$username = Get-SecretText 'username' '' 128") < read < pin
    function = next(s for s in statements if s.startswith("function Read-LoginTag"))
    assert "Tags[?Key=='RotatorLogin'].Value" in function and "Get-SECSecret " in function
    assert "if ($tags.Count -ne 1) { return '' }" in function


@pytest.mark.chaos("Attacks: a secret's owner chooses another team's login or master by its tags (SQL Server, static)")
def test_in_a_fleet_the_hosts_enrolment_file_decides_the_login_and_the_master(tree, script):
    """As on Linux (threats 33, 34, 38): under the lock, before the pin check and before any change,
    the login comes from this host's enrolment file whenever the document is the fleet's or the file
    exists (a document whose Login is empty does not switch it off); a pin that differs exits 3, and
    so does a version naming another master than the file's."""
    statements = [text_of(s) for s in top_level_statements(tree)]
    lock = statements.index("$secretLock = Enter-SecretLock $secretId")
    tag = next(i for i, s in enumerate(statements) if s.startswith("if ($action -eq 'set' -and $pinnedLogin -ceq 'tag:RotatorLogin')"))
    assert "$fleetDocument = $true" in statements[tag]
    read = next(i for i, s in enumerate(statements)
                if s.startswith("if ($action -eq 'set' -and ($fleetDocument -or (Test-Path -LiteralPath $enrolmentPath)))"))
    block = statements[read]
    assert block.index("$enrolled = Read-EnrolledEntry $enrolmentPath $secretId") < block.index("$pinnedLogin = $enrolled[0]")
    assert re.search(r"if \(\$pinnedLogin.Length -gt 0 -and \$pinnedLogin -cne \$enrolled\[0\]\) \{\n[^}]*\n\s*exit 3\n", block)
    pin = next(i for i, s in enumerate(statements) if s.startswith("if ($action -eq 'set' -and $pinnedLogin.Length -gt 0"))
    master = next(i for i, s in enumerate(statements) if s.startswith("if ($null -ne $enrolled -and $masterArn -cne $enrolled[1])"))
    assert re.search(r"\n\s*exit 3\n", statements[master])
    parsed = next(i for i, s in enumerate(statements) if s.startswith("if ($null -ne $secret.PSObject.Properties['masterarn'])"))
    first_change = next(i for i, s in enumerate(statements) if "Invoke-AdminOrFail" in s or "Set-LoginPassword" in s
                        or "Copy-PartnerLogin" in s)
    assert lock < tag < read < pin and parsed < master < first_change
    function = next(s for s in statements if s.startswith("function Read-EnrolledEntry"))
    # Trusted as the lock directory is, parsed strictly: each refusal exits 3.
    for check in ("[System.IO.FileAttributes]::ReparsePoint", "$trusted -notcontains $acl.Owner", "$writers.Count -ne 0",
                  "$_ -lt 32 -or $_ -gt 126", "$entries.ContainsKey($fields[0])", "$fields[0] -cnotmatch $reCompleteSecretArn",
                  "-not $entries.ContainsKey($Id)"):
        assert check in function, check
    assert "Dictionary[string,string[]]" in function, "a hashtable ignores case: two ARNs would be one entry"
    assert function.count("exit 3") == 6 and "exit " + "6" not in function
    # The complete-ARN pattern is Linux's (secret.py): a name without Secrets Manager's suffix is refused.
    pattern = re.search(r"\$reCompleteSecretArn = '([^']+)'", script)[1]
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotator/fleet/orders"
    assert re.match(pattern, arn + "-AbC123") and not re.match(pattern, arn) and not re.match(pattern, arn + "-AbC12")


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
    assert set(re.findall(r"(?i)\$env:\w+", script)) == {"$env:SSM_Action", "$env:SSM_SecretId", "$env:SSM_VersionId",
                                                         "$env:SSM_Login"}
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
    assert "$bound = [ordered]@{ '@login' = $username; '@partner' = $Partner }" in script
    assert "if ($WithPassword) { $bound['@password'] = $password }" in script
    assert "$command.Parameters[$name].Value = $bound[$name]" in script
    # Passwords (PowerShell names are case-insensitive) are never formatted into SQL or a connection
    # string: they go to a bound parameter or a SqlCredential's SecureString only.
    allowed = [
        r"^\$password = Get-SecretText 'password' '' 128$",
        r"^\$script:adminPassword = Get-SecretText 'password' '' 128 \$master$",
        r"^\$adminPassword = ''$",
        r"= New-SqlConnection \$dbname \$username \$password$",
        r"= New-SqlConnection 'master' \$adminName \$adminPassword$",
        r"^if \(\$WithPassword\) \{ \$bound\['@password'\] = \$password \}$",
        r"^function Invoke-Admin(OrFail)?\(.*\[bool\]\$WithPassword = \$false\) \{$",
        r"^return Invoke-Admin \$Sql \$Partner \$WithPassword$",
        r"^foreach \(\$character in \$LoginPassword\.ToCharArray\(\)\)",
        r"^function New-SqlConnection\(\[string\]\$Database, \[string\]\$Name, \[string\]\$LoginPassword\) \{$",
    ]
    for line in script.splitlines():
        if re.search(r"(?i)\$(?!securePassword)\w*password\b", line):
            assert any(re.search(a, line.strip()) for a in allowed), line


def test_one_connection_builder_sql_or_windows_authentication(script):
    assert script.count("New-Object System.Data.SqlClient.SqlConnectionStringBuilder") == 1
    assert "$builder['Integrated Security'] = ($Name.Length -eq 0)" in script
    assert "System.Data.SqlClient.SqlCredential($Name, $securePassword)" in script
    assert "$builder['Pooling'] = $false" in script, "a pooled connection could verify an old password"
    # SYSTEM administers single user; verify always logs in as the version's own login.
    assert "$connection = New-SqlConnection 'master' $adminName $adminPassword" in script
    assert "$adminName = ''" in script
    assert "$connection = New-SqlConnection $dbname $username $password" in script
    # Only SQL logins have passwords; a missing one exits 3.
    assert '$sqlLoginCountSql = "SELECT COUNT(*) FROM sys.sql_logins WHERE name = @login"' in script


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


def test_alternating_users_sql_logins_as_the_master_login(script):
    # Only with masterarn, checked as the other identifiers are.
    assert "$masterArn = Get-SecretText 'masterarn' '' 2048" in script
    assert "if (-not (Test-Parameter $masterArn $reSecretId))" in script
    # The master secret and AWSCURRENT are read on the host like the version itself.
    assert "Read-Secret $masterArn '' 'AWSCURRENT' 'the master secret'" in script
    assert "Read-Secret $secretId '' 'AWSCURRENT' 'the AWSCURRENT version'" in script
    # The master is a SQL Server login that replaces SYSTEM as administrator: SYSTEM cannot sign in
    # as another Windows account, so a DOMAIN\name master is refused with exit 4.
    assert "if ($name.Contains('\\')) {" in script
    assert "$script:adminName = $name" in script
    # Both logins are SQL logins: created with the version's password, the partner's default database
    # and password policy; names only through QUOTENAME, values only as bound parameters.
    assert ("N'CREATE LOGIN ' + QUOTENAME(@login) + N' WITH PASSWORD = ' + QUOTENAME(@password, '''')\n"
            "               + N', DEFAULT_DATABASE = ' + QUOTENAME(l.default_database_name)") in script
    assert "FROM sys.sql_logins l WHERE l.name = @partner" in script
    assert "FROM WINDOWS" not in script and "DirectoryServices" not in script
    assert "SUSER_ID(@partner)" in script and "SUSER_SID(@partner)" in script
    # Another copy of the step creating the login first is not an error.
    assert "IF ERROR_NUMBER() <> 15025" in script
    # The login applications hold (AWSCURRENT's) is the source of the grants, never their target.
    assert "if ($partner -eq $username) { return $false }" in script
    # One set path for both strategies: alternating users only adds the master login and the copy.
    assert script.count("Set-LoginPassword") == 2 and script.count("$status = Test-Login") == 2


BUILTIN_COMMANDS = {"Set-StrictMode", "Get-Command", "Get-SECSecretValue", "Get-SECSecret", "ForEach-Object", "Where-Object",
                    "ConvertFrom-Json", "Add-Type", "New-Object", "Join-Path", "Test-Path", "New-Item", "Get-Item", "Get-Acl", "Set-Acl",
                    "Start-Sleep"}


def test_every_call_names_a_defined_function_with_its_parameters(tree):
    """What PowerShell finds only at run time: a misspelt function, a function never called, or a
    call with more arguments than parameters or fewer than those without a default."""
    functions = {}
    for fn in nodes(tree.root_node, "function_statement"):
        name = text_of(next(c for c in fn.children if c.type == "function_name"))
        params = list(nodes(fn, "script_parameter"))
        required = sum(1 for p in params if not any(c.type == "script_parameter_default" for c in p.children))
        functions[name] = (required, len(params))
    called = set()
    for command in nodes(tree.root_node, "command"):
        names = [c for c in command.children if c.type == "command_name"]
        if not names:
            continue  # & aws ...
        name = text_of(names[0])
        if name in BUILTIN_COMMANDS:
            continue
        assert name in functions, f"{name} is called but not defined"
        called.add(name)
        elements = [c for c in command.children if c.type == "command_elements"]
        args = [c for c in elements[0].children if c.type != "command_argument_sep"] if elements else []
        assert not any(text_of(a).startswith("-") for a in args), f"{name}: our functions take positional arguments"
        required, total = functions[name]
        assert required <= len(args) <= total, f"{text_of(command)}: {len(args)} arguments for {required}..{total}"
    assert called == set(functions), f"defined and never called: {set(functions) - called}"


AUTOMATIC_VARIABLES = {"_", "true", "false", "null", "lastexitcode"}


def variable_name(text: str) -> str:
    name = text.lstrip("$@").strip("{}").lower()  # @name splats $name
    return name.removeprefix("script:")


def test_every_variable_read_is_assigned_somewhere(tree):
    """Set-StrictMode makes an unassigned variable an error at run time, on a path a test here
    cannot take: a misspelt name must fail here instead."""
    assigned = set()
    for node in nodes(tree.root_node):
        if node.type == "left_assignment_expression":
            assigned.add(variable_name(next(nodes(node, "variable")).text.decode("utf-8")))
        elif node.type in ("foreach_statement", "script_parameter"):
            assigned.add(variable_name(next(c for c in node.children if c.type == "variable").text.decode("utf-8")))
    read = {variable_name(text_of(v)) for v in nodes(tree.root_node, "variable")}
    unknown = {v for v in read - assigned - AUTOMATIC_VARIABLES if not v.startswith("env:")}
    assert unknown == set(), unknown


# ---- the password only where it is set, administrators refused, one member per name ----------------


def sql_assignments(script: str) -> dict[str, str]:
    """The SQL the script names by variable: `$name = @'...'@` here-strings, one-line strings, and
    `$name = $first + "`n" + $second` joins of two of them."""
    found = {m[1].lower(): m[2] for m in re.finditer(r"(?ms)^[ \t]*\$(\w+) = @'\n(.*?)\n'@", script)}
    found.update({m[1].lower(): m[2] for m in re.finditer(r'(?m)^\s*\$(\w+) = "((?:SELECT|DECLARE) [^"]*)"$', script)})
    for m in re.finditer(r'(?m)^\s*\$(\w+) = \$(\w+) \+ "`n" \+ \$(\w+)$', script):
        found[m[1].lower()] = found[m[2].lower()] + "\n" + found[m[3].lower()]
    return found


def command_calls(tree, name: str) -> list[tuple[object, list[str]]]:
    """Every call of a function: (the command node, its positional arguments as text)."""
    calls = []
    for command in nodes(tree.root_node, "command"):
        names = [c for c in command.children if c.type == "command_name"]
        if not names or text_of(names[0]).lower() != name.lower():
            continue
        elements = [c for c in command.children if c.type == "command_elements"]
        args = [text_of(c) for c in elements[0].children if c.type != "command_argument_sep"] if elements else []
        calls.append((command, args))
    return calls


def enclosing_function(node):
    while node is not None and node.type != "function_statement":
        node = node.parent
    return node


def function_named(tree, name: str):
    for fn in nodes(tree.root_node, "function_statement"):
        if text_of(next(c for c in fn.children if c.type == "function_name")) == name:
            return fn
    raise AssertionError(f"no function {name}")


SETS_A_PASSWORD = re.compile(r"N'(ALTER|CREATE) LOGIN ' \+ QUOTENAME\(@login\) \+ N' WITH PASSWORD = ' \+ QUOTENAME\(@password")
CHANGES = re.compile(r"\b(ALTER|CREATE) LOGIN\b|\bALTER SERVER ROLE\b|\bCREATE USER\b|\bALTER ROLE\b")


def admin_calls(tree, script):
    """Every administrator command: (node, its SQL, whether it is given the password)."""
    sql = sql_assignments(script)
    calls = []
    for command, args in command_calls(tree, "Invoke-AdminOrFail"):
        text = args[1]
        if text.startswith("$"):
            assert text[1:].lower() in sql, f"the SQL of {text_of(command)} is not found"
            text = sql[text[1:].lower()]
        calls.append((command, text, len(args) == 4 and args[3] == "$true"))
    # Invoke-Admin is called only by Invoke-AdminOrFail, passing its arguments on.
    assert [a for _, a in command_calls(tree, "Invoke-Admin")] == [["$Sql", "$Partner", "$WithPassword"]]
    return calls


@pytest.mark.chaos("Attacks: SQL Server binds the password only where it is set (static)")
def test_the_password_is_bound_only_to_the_commands_that_set_it(tree, script):
    # A trace or an Extended Events session on rpc_completed records every bound parameter's value.
    invoke = text_of(function_named(tree, "Invoke-Admin"))
    assert invoke.count("'@password'") == 1 and invoke.count("$password") == 1
    assert "        if ($WithPassword) { $bound['@password'] = $password }\n" in invoke
    calls = admin_calls(tree, script)
    with_password = [sql for _, sql, given in calls if given]
    for command, sql, given in calls:
        assert given == ("@password" in sql), f"the password is {'' if given else 'not '}given to {text_of(command)}"
        assert given == bool(SETS_A_PASSWORD.search(sql)), text_of(command)
    # ALTER LOGIN (single user and a changed password) and CREATE LOGIN (a new clone), nothing else.
    assert sorted(SETS_A_PASSWORD.search(sql)[1] for sql in with_password) == ["ALTER", "CREATE"]
    assert all(len(re.findall(r"@password\b", sql)) == 1 for sql in with_password)


@pytest.mark.chaos("Attacks: a version naming an administrator (SQL Server, static)")
def test_the_privileged_check_runs_before_the_first_change(tree, script):
    checks = command_calls(tree, "Assert-NotPrivileged")
    assert checks, "no privileged check"
    check = text_of(function_named(tree, "Assert-NotPrivileged"))
    assert "$privilegedSql $Name)" in check and re.search(r"Write-RotatorError \"the login '\$Name' is privileged "
                                                           r"\(\$reasons\)[^\n]*\n\s*exit 3\n", check)
    privileged = sql_assignments(script)["privilegedsql"]
    for needle in ("IS_SRVROLEMEMBER(N'sysadmin', @partner)", "sys.server_role_members", "sys.server_permissions",
                   "N'sysadmin', N'securityadmin'", "N'CONTROL SERVER', N'ALTER ANY LOGIN', N'IMPERSONATE ANY LOGIN'",
                   "p.state IN ('G', 'W')", "RAISERROR",
                   # rights on a login or server role, which the copy of rights would hand on
                   "p.class = 101 AND p.state IN ('G', 'W')", "N'IMPERSONATE', N'CONTROL', N'ALTER', N'TAKE OWNERSHIP'"):
        assert needle in privileged, needle
    changes = [(command, sql) for command, sql, _ in admin_calls(tree, script) if CHANGES.search(sql)]
    assert len(changes) == 3, [text_of(c) for c, _ in changes]
    for command, sql in changes:
        fn = enclosing_function(command)
        assert fn is not None
        before = {args[0] for node, args in checks
                  if enclosing_function(node) == fn and node.start_byte < command.start_byte}
        needed = {"$username", "$partner"} if "@partner" in sql else {"$username"}
        assert needed <= before, f"{text_of(command)} runs before the check of {needed - before}"
    # ... and the partner's check comes before anything else that function changes.
    copy = function_named(tree, "Copy-PartnerLogin")
    first_change = min(c.start_byte for c, _ in changes if enclosing_function(c) == copy)
    partner_check = [n for n, a in checks if a == ["$partner"] and enclosing_function(n) == copy]
    assert partner_check and partner_check[0].start_byte < first_change


@pytest.mark.chaos("Attacks: duplicate JSON members (SQL Server, static)")
def test_duplicate_member_names_are_refused(tree, script):
    # Windows PowerShell 5.1 and PowerShell 7 disagree on a JSON object that repeats a name (and python3
    # on Linux differs from both): the script scans the text itself, before ConvertFrom-Json, comparing
    # names decoded and ignoring case as PowerShell's property lookup does.
    scan = text_of(function_named(tree, "Test-JsonMemberNames"))
    assert "New-Object 'System.Collections.Generic.HashSet[string]' ([System.StringComparer]::OrdinalIgnoreCase)" in scan
    assert "if (-not $objects.Peek().Add($text.ToString())) { return 'duplicate' }" in scan
    assert "[Convert]::ToInt32($hex, 16)" in scan, "\\u escapes are decoded before names are compared"
    read = text_of(function_named(tree, "Read-Secret"))
    call = read.index("$names = Test-JsonMemberNames ([string]$secretString)")
    assert call < read.index("$parsed = $secretString | ConvertFrom-Json")
    assert re.search(r"if \(\$names -eq 'duplicate'\) \{\n\s*Write-RotatorError [^\n]*two members of one name[^\n]*\n"
                     r"\s*exit 4\n", read)
    assert re.search(r"if \(\$names -ne 'ok'\) \{\n\s*Write-RotatorError 'the secret value is not valid JSON'\n"
                     r"\s*exit 4\n", read)


@pytest.mark.chaos("Attacks: a late set of a version no label holds (SQL Server, static)")
def test_one_command_per_secret_and_no_stale_set(tree, script):
    """As on Linux (pytests/hosts/test_secret_attacks.py runs that): the version is read under a lock
    held for the rest of the run, and a set for a version that lost its label changes nothing."""
    lock = text_of(function_named(tree, "Enter-SecretLock"))
    assert "[System.IO.File]::Open($path, 'OpenOrCreate', 'ReadWrite', 'None')" in lock
    assert "$acl.SetAccessRuleProtection($true, $false)" in lock
    assert "$trusted -notcontains (Get-Acl -LiteralPath $directory).Owner" in lock
    assert "[System.IO.FileAttributes]::ReparsePoint" in lock
    statements = [text_of(s) for s in top_level_statements(tree)]
    take = statements.index("$secretLock = Enter-SecretLock $secretId")
    read = statements.index("$secret = Read-Secret $secretId $versionId '' 'the secret version'")
    stale = next(i for i, s in enumerate(statements) if s.startswith("if ($action -eq 'set' -and $readStages -notcontains 'AWSPENDING'"))
    first_change = next(i for i, s in enumerate(statements) if "Invoke-AdminOrFail" in s or "Set-LoginPassword" in s
                        or "Copy-PartnerLogin" in s)
    assert take < read < stale < first_change
    assert re.search(r"-notcontains 'AWSCURRENT'\) \{\n\s*Write-RotatorError [^\n]*nothing was changed'\n\s*exit 8\n",
                     statements[stale])
    read_fn = text_of(function_named(tree, "Read-Secret"))
    assert read_fn.count("$script:readStages = @(") == 2, "both ways of reading keep the version's stages"
    assert "--query '[VersionStages, SecretString]' --output json" in read_fn


# ---- an existing clone gets exactly its partner's rights ----------------------------------------

TOKEN = re.compile(r"(?P<string>N?'(?:[^']|'')*')|(?P<comment>--[^\n]*)|(?P<word>[@#A-Za-z_][\w.@#$]*)"
                   r"|(?P<number>\d+)|(?P<space>\s+)|(?P<op>.)", re.S)


def tokens(sql: str) -> list[tuple[str, str]]:
    return [(m.lastgroup, m.group()) for m in TOKEN.finditer(sql) if m.lastgroup not in ("space", "comment")]


def operand_after(toks, i):
    """The token range [i, j) of the operand that starts at i: a literal, a name, a call, (...), CASE...END."""
    kind, text = toks[i]
    if text.upper() == "CASE":
        depth, j = 0, i
        while True:
            word = toks[j][1].upper() if toks[j][0] == "word" else ""
            depth += (word == "CASE") - (word == "END")
            j += 1
            if depth == 0:
                return i, j
    if text == "(" or (kind == "word" and i + 1 < len(toks) and toks[i + 1][1] == "("):
        j = i if text == "(" else i + 1
        depth = 0
        while True:
            depth += (toks[j][1] == "(") - (toks[j][1] == ")")
            j += 1
            if depth == 0:
                return i, j
    return i, i + 1


def operand_before(toks, i):
    """The token range [k, i + 1) of the operand that ends at i."""
    kind, text = toks[i]
    if kind == "word" and text.upper() == "END":
        depth, k = 0, i
        while True:
            word = toks[k][1].upper() if toks[k][0] == "word" else ""
            depth += (word == "END") - (word == "CASE")
            if depth == 0:
                return k, i + 1
            k -= 1
    if text == ")":
        depth, k = 0, i
        while True:
            depth += (toks[k][1] == ")") - (toks[k][1] == "(")
            if depth == 0:
                break
            k -= 1
        if k > 0 and toks[k - 1][0] == "word":
            k -= 1
        return k, i + 1
    return i, i + 1


# Columns concatenated as they are: a permission (a keyword of the catalog; $uncopyableRightsSql refuses
# any other) and a securable's ON clause (built with QUOTENAME in $collectRightsSql).
RAW_COLUMNS = {"s.permission", "t.permission", "s.securable", "t.securable"}


def unquoted_operands(sql: str) -> list[str]:
    """Every operand of a string concatenation that is not a literal, a QUOTENAME(...), one of
    RAW_COLUMNS or a CASE whose results start with those; nested dynamic SQL (a literal holding a
    batch) is checked the same way."""
    toks = tokens(sql)
    bad = []
    for kind, text in toks:
        if kind == "string" and "\n" in text:
            bad += unquoted_operands(text[text.index("'") + 1:-1].replace("''", "'"))
    operands = set()
    for i, (_kind, text) in enumerate(toks):
        if text == "+":
            operands |= {operand_before(toks, i - 1), operand_after(toks, i + 1)}
    for start, end in sorted(operands):
        first = toks[start]
        if first[0] == "string" or first[1].upper() == "QUOTENAME" or first[1] in RAW_COLUMNS:
            continue
        if first[1].upper() == "CASE":
            results = [toks[j + 1] for j in range(start, end - 1) if toks[j][1].upper() in ("THEN", "ELSE")]
            if all(r[0] == "string" or r[1].upper() in ("QUOTENAME", "CASE") for r in results):
                continue
        bad.append(" ".join(t for _, t in toks[start:end]))
    return bad


def dynamic_sql(script: str) -> dict[str, str]:
    """The SQL whose strings become statements (sys.sp_executesql). $checkRightsSql runs the same
    collection as $copyRightsSql, then only builds the text of a refusal (no statement)."""
    sql = sql_assignments(script)
    assert "sp_executesql" not in sql["uncopyablerightssql"]
    return {name: text for name, text in sql.items() if "sp_executesql" in text and name != "checkrightssql"}


@pytest.mark.chaos("Attacks: names in SQL Server's dynamic SQL (static)")
def test_every_name_in_dynamic_sql_is_quotenamed(script):
    found = dynamic_sql(script)
    assert {"alter", "createloginsql", "copyrightssql"} <= set(found), sorted(found)
    for name, sql in found.items():
        assert unquoted_operands(sql) == [], name
    # the check itself finds what it must (a name concatenated as it is, in a nested batch too)
    assert unquoted_operands("SET @sql = N'ALTER ROLE ' + r.name + N' ADD MEMBER ' + QUOTENAME(@t);") == ["r.name"]
    assert unquoted_operands("DECLARE @x nvarchar(max) = N'\nSELECT N''GRANT '' + CASE WHEN 1 = 1 THEN o.name END;\n';") \
        == ["CASE WHEN 1 = 1 THEN o.name END"]
    # The catalog's permission names are keywords: any other refuses the copy before it starts.
    assert "securable IS NULL OR permission LIKE N'%[^A-Z ]%'" in sql_assignments(script)["uncopyablerightssql"]


def change_steps(sql: str) -> dict[int, str]:
    """$applyRightsSql's INSERTs into @changes, by step."""
    steps = {}
    for block in sql.split("INSERT @changes\n")[1:]:
        step = int(re.match(r"SELECT (\d+), ", block)[1])
        steps[step] = block.split(";\n", 1)[0]
    return steps


def same(a: str, b: str, *columns: str) -> str:
    return " AND ".join(f"{a}.{c} = {b}.{c}" for c in columns)


@pytest.mark.chaos("Attacks: an existing clone keeps rights its partner lacks (SQL Server, static)")
def test_the_clone_gets_exactly_the_partners_rights(tree, script):
    sql = sql_assignments(script)
    collect = sql["collectrightssql"]
    # Both logins' rights are read as data: server permissions and roles, and in every database
    # (read-only ones too, where $uncopyableRightsSql refuses what cannot be revoked) permissions
    # and roles, grants, grants with grant option and denies alike.
    for needle in ("FROM sys.server_permissions p", "FROM sys.server_role_members m", "FROM sys.database_permissions p",
                   "FROM sys.database_role_members m", "EXEC @inDatabase @collectDatabase",
                   "SELECT name, is_read_only FROM sys.databases WHERE state = 0 AND HAS_DBACCESS(name) = 1;"):
        assert needle in collect, needle
    assert collect.count("p.state IN ('G', 'W', 'D')") == 1 and collect.count("p.state IN (''G'', ''W'', ''D'')") == 1
    # An unknown kind of securable has no ON clause (NULL), which is refused: no CASE p.class has an ELSE.
    for match in re.finditer(r"CASE p\.class\b", collect):
        toks = tokens(collect[match.start():])
        start, end = operand_after(toks, 0)
        depth, top_level_else = 0, False
        for kind, text in toks[start:end]:
            word = text.upper() if kind == "word" else ""
            depth += (word == "CASE") - (word == "END")
            top_level_else |= word == "ELSE" and depth == 1
        assert not top_level_else
    # What the login holds beyond the partner goes first (roles dropped, permissions revoked, a DENY
    # too), then what the partner holds is given; the changes run in that order.
    apply = sql["applyrightssql"]
    steps = change_steps(apply)
    assert sorted(steps) == [0, 1, 2, 3, 4]
    assert "N' DROP MEMBER '" in steps[1] and "FROM #members t" in steps[1] and "t.who = 'T'" in steps[1]
    assert "s.who = 'S'" in steps[1] and "s.role = t.role" in steps[1] and "NOT EXISTS" in steps[1]
    assert "N'REVOKE ' + t.permission + t.securable" in steps[2] and "N' CASCADE'" in steps[2]
    assert "FROM #rights t" in steps[2] and "t.who = 'T'" in steps[2] and "NOT EXISTS" in steps[2]
    assert same("s", "t", "securable", "permission", "state") in steps[2]
    assert "N' ADD MEMBER '" in steps[3] and "s.who = 'S'" in steps[3] and "t.role = s.role" in steps[3]
    assert "CASE WHEN s.state = 'D' THEN N'DENY ' ELSE N'GRANT ' END + s.permission + s.securable" in steps[4]
    assert "CASE WHEN s.state = 'W' THEN N' WITH GRANT OPTION' ELSE N'' END" in steps[4]
    assert same("t", "s", "securable", "permission", "state") in steps[4]
    for step in (1, 2, 3, 4):  # the server's rows (db NULL) and each database's, each with its own
        assert "(s.db = t.db OR (s.db IS NULL AND t.db IS NULL))" in steps[step] \
            or "(t.db = s.db OR (t.db IS NULL AND s.db IS NULL))" in steps[step]
    assert "DECLARE changes CURSOR LOCAL FAST_FORWARD FOR SELECT db, statement FROM @changes ORDER BY step;" in apply
    assert sql["copyrightssql"] == collect + "\n" + apply
    assert sql["checkrightssql"] == collect + "\n" + sql["uncopyablerightssql"]


@pytest.mark.chaos("Attacks: rights a copy cannot make equal are refused first (SQL Server, static)")
def test_rights_that_cannot_be_copied_exactly_are_refused_before_any_change(tree, script):
    uncopyable = sql_assignments(script)["uncopyablerightssql"]
    for needle in ("FROM #rights WHERE securable IS NULL", "SELECT N'the login owns ' + what FROM #owned",
                   "WHERE u.readOnly = 1"):
        assert needle in uncopyable, needle
    collect = sql_assignments(script)["collectrightssql"]
    for owned in ("FROM sys.databases WHERE owner_sid = SUSER_SID(@login)", "WHERE @targetId = 1",
                  "FROM sys.schemas WHERE principal_id = @targetId", "FROM sys.objects WHERE principal_id = @targetId",
                  "FROM sys.database_principals WHERE owning_principal_id = @targetId"):
        assert owned in collect, owned
    copy = text_of(function_named(tree, "Copy-PartnerLogin"))
    check = copy.index("$checkRightsSql $partner)")
    assert re.search(r"if \(\$uncopyable\.Length -gt 0\) \{\n\s*Write-RotatorError [^\n]*\n\s*exit 3\n", copy[check:])
    assert check < copy.index("$createLoginSql") < copy.index("$copyRightsSql")
    assert copy.index("Assert-NotPrivileged $partner") < check
