"""Attacks on the MySQL/MariaDB document, run as the SSM agent would against real MariaDB: a login
that names its own objects must not get more than it has onto its `_clone` (grants are copied as
data, never as text), a secret must not make the host change or clone an administrator, and a
server that accepts any password must not pass `verify` (docs/host-contract.md).
"""

from __future__ import annotations

import json
import sys
import uuid
from pathlib import Path

import pytest

from .support import expect_failure, expect_result, my_name, my_prepared, my_privileges, stand_in_tool

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hosts" / "linux"))
import mysql as helper  # noqa: E402


@pytest.fixture
def mysql_host(make_host):
    return make_host("mysql")


@pytest.fixture
def alternating(mysql_host, mariadb):
    """A master secret with a real administrator, an application login holding AWSCURRENT: returns
    (host, server, arn, app, master arn, version factory)."""
    host = mysql_host
    admin, admin_password = "admin_" + uuid.uuid4().hex[:8], "Admin-Pass-" + uuid.uuid4().hex[:8]
    mariadb.create_admin(admin, admin_password)
    master_arn, _ = host.create_secret({"engine": "mariadb", "username": admin, "password": admin_password})
    app_password = "App-Pass-" + uuid.uuid4().hex[:8]
    app = host.new_login(app_password)
    arn, _ = host.create_secret(host.secret_value(app, app_password, masterarn=master_arn))

    def pending(user, password):
        return host.put_pending(arn, host.secret_value(user, password, masterarn=master_arn))

    pending.admin = admin
    return host, mariadb, arn, app, app_password, pending


def same_grants(server, a: str, b: str) -> None:
    assert my_privileges(server, a) == my_privileges(server, b)


def no_global_privileges(server, user: str) -> None:
    rows = my_privileges(server, user)["global"]
    assert rows and all(access == "0" for _, access, _ in rows), rows


# ---- (a) a newline in a table name -------------------------------------------------------------


@pytest.mark.chaos("Attacks: grant replay injection through a table name (MySQL)")
def test_a_table_name_holding_a_statement_gives_the_clone_nothing_more(alternating):
    host, server, arn, app, app_password, pending = alternating
    clone = app + "_clone"
    database = "own_" + uuid.uuid4().hex[:8]
    server.admin_sql(f"CREATE DATABASE {database};\nGRANT ALL ON {database}.* TO '{app}'@'%' WITH GRANT OPTION;\n")
    # As the application login itself: a table whose name ends one grant line of SHOW GRANTS and
    # starts another, then a grant on it to itself.
    hostile = f"x\nGRANT ALL ON *.* TO {clone};#"
    statements = [f"CREATE TABLE {database}.{my_name(hostile)} (id integer)",
                  f"GRANT SELECT ON {database}.{my_name(hostile)} TO '{app}'@'%'"]
    sql = "; ".join(f"SET @t = CONVERT(0x{s.encode().hex()} USING utf8mb4); PREPARE t FROM @t; EXECUTE t"
                    for s in statements)
    assert server.login_sql(app, app_password, sql) is not None, "the application login could not set up"
    version = pending(clone, "Clone-Pass-A1")
    result = host.run("set", arn, version)
    # (Replayed as text, the second line ran as the master before the rest failed.)
    no_global_privileges(server, clone)
    expect_result(result, "set", version, "changed")
    same_grants(server, app, clone)
    assert server.login_sql(clone, "Clone-Pass-A1", "SELECT 1 FROM mysql.user LIMIT 1") is None


# ---- (b) names with quotes, backticks, backslashes and control characters ------------------------

ODD = "q'd\"b`t\\s\nn\tt\x01e"


@pytest.mark.chaos("Attacks: quotes, backticks, backslashes, control characters in copied names")
def test_odd_names_are_copied_exactly(alternating):
    host, server, arn, app, app_password, pending = alternating
    clone = app + "_clone"
    tag = uuid.uuid4().hex[:6]
    database, table, column = f"db{tag}{ODD}", f"tb{ODD}", f"co{ODD}"
    routine, role, pattern = f"pr{ODD}", f"ro{tag}{ODD}", f"pa{tag}\\_x%"
    on_table = f"{my_name(database)}.{my_name(table)}"
    account = f"{my_name(app)}@'%'"
    my_prepared(
        server,
        f"CREATE DATABASE {my_name(database)}",
        f"CREATE TABLE {on_table} ({my_name(column)} integer, other integer)",
        f"CREATE PROCEDURE {my_name(database)}.{my_name(routine)}() SELECT 1",
        f"CREATE ROLE {my_name(role)}",
        f"GRANT SELECT, INSERT ON {my_name(database)}.* TO {account}",
        f"GRANT SELECT ON {my_name(pattern)}.* TO {account} WITH GRANT OPTION",
        f"GRANT UPDATE, DELETE ON {on_table} TO {account} WITH GRANT OPTION",
        f"GRANT SELECT ({my_name(column)}), UPDATE ({my_name(column)}, other) ON {on_table} TO {account}",
        f"GRANT EXECUTE, ALTER ROUTINE ON PROCEDURE {my_name(database)}.{my_name(routine)} TO {account}",
        f"GRANT {my_name(role)} TO {account}",
        f"GRANT {my_name(role)} TO {my_name(pending.admin)}@'%' WITH ADMIN OPTION",  # the master's right to grant it
        f"SET DEFAULT ROLE {my_name(role)} FOR {account}",
        f"GRANT PROCESS ON *.* TO {account}",
    )
    version = pending(clone, "Clone-Pass-B1")
    expect_result(host.run("set", arn, version), "set", version, "changed")
    same_grants(server, app, clone)
    assert my_privileges(server, clone)["role"] == {("%", role, "N")}
    # The clone had grants of its own: they go, the partner's come back (again exactly).
    my_prepared(server, f"GRANT SELECT ON mysql.* TO {my_name(clone)}@'%'",
                f"REVOKE {my_name(role)} FROM {my_name(clone)}@'%'",
                f"REVOKE SELECT ({my_name(column)}) ON {on_table} FROM {my_name(clone)}@'%'")
    again = pending(clone, "Clone-Pass-B2")
    expect_result(host.run("set", arn, again), "set", again, "changed")
    same_grants(server, app, clone)


# ---- (c) administrators are refused ----------------------------------------------------------------


def root_authentication(server) -> str:
    return server.admin_sql("SELECT HEX(Priv) FROM mysql.global_priv WHERE User = 'root' ORDER BY Host;\n")


@pytest.mark.chaos("Attacks: a version naming an administrator (single user)")
def test_a_secret_naming_root_changes_nothing(mysql_host, mariadb):
    host = mysql_host
    # Some account allows 127.0.0.1, so the server answers a login as root with a refusal (on a
    # server with localhost accounts only it would refuse the host: "not reachable", exit 6).
    host.new_login("Some-Pass-C0")
    before = root_authentication(mariadb)
    arn, _ = host.create_secret(host.secret_value("root", "Root-Pass-C1"))
    pending = host.put_pending(arn, host.secret_value("root", "Root-Pass-C2"))
    expect_failure(host.run("set", arn, pending), 3, "is privileged")
    assert root_authentication(mariadb) == before
    assert mariadb.admin_sql("SELECT 1;\n").strip() == "1", "root lost its way in over the socket"


@pytest.mark.chaos("Attacks: a privileged partner cloned (alternating users)")
@pytest.mark.parametrize("grant, what", [
    ("GRANT SUPER ON *.* TO {a}", "SUPER ON *.*"),
    ("GRANT CREATE USER ON *.* TO {a}", "CREATE USER ON *.*"),
    ("GRANT ALL ON *.* TO {a}", "ON *.*"),
    ("GRANT USAGE ON *.* TO {a} WITH GRANT OPTION", "GRANT OPTION ON *.*"),
    ("GRANT INSERT ON mysql.* TO {a}", "INSERT ON the mysql schema"),
    ("GRANT UPDATE ON `my%`.* TO {a}", "UPDATE ON the mysql schema"),
    ("GRANT UPDATE ON mysql.global_priv TO {a}", "UPDATE ON a table of the mysql schema"),
    ("CREATE ROLE {r}; GRANT FILE ON *.* TO {r}; GRANT {r} TO {a}", "FILE ON *.* (through the role"),
    ("CREATE ROLE {r}; CREATE ROLE {r}_2; GRANT SUPER ON *.* TO {r}_2; GRANT {r}_2 TO {r}; GRANT {r} TO {a}",
     "SUPER ON *.* (through the role"),
])
def test_a_privileged_partner_is_never_cloned(alternating, grant, what):
    host, server, arn, app, app_password, pending = alternating
    role = "role_" + uuid.uuid4().hex[:8]
    server.admin_sql(grant.format(a=f"'{app}'@'%'", r=role) + ";\n")
    version = pending(app + "_clone", "Clone-Pass-C3")
    expect_failure(host.run("set", arn, version), 3, what)
    assert not server.login_exists(app + "_clone")


@pytest.mark.chaos("Attacks: a version naming an administrator (single user)")
def test_a_privileged_single_user_login_is_not_changed(mysql_host, mariadb):
    host = mysql_host
    user = host.new_login("Start-Pass-C4")
    mariadb.create_login(user, "Start-Pass-C4", host="localhost")
    mariadb.admin_sql(f"GRANT SUPER ON *.* TO '{user}'@'localhost';\n")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-C4"))
    pending = host.put_pending(arn, host.secret_value(user, "Next-Pass-C4"))
    expect_failure(host.run("set", arn, pending), 3, "SUPER ON *.*")
    assert mariadb.can_login(user, "Start-Pass-C4")


@pytest.mark.chaos("Attacks: an existing clone with rights its partner lacks")
def test_an_existing_privileged_clone_is_not_changed(alternating):
    host, server, arn, app, app_password, pending = alternating
    clone = app + "_clone"
    server.create_login(clone, "Clone-Pass-C5")
    server.admin_sql(f"GRANT CREATE USER ON *.* TO '{clone}'@'%';\n")
    version = pending(clone, "Clone-Pass-C6")
    expect_failure(host.run("set", arn, version), 3, "CREATE USER ON *.*")
    assert server.can_login(clone, "Clone-Pass-C5")


# ---- (d) a server that accepts any password ----------------------------------------------------------


@pytest.mark.chaos("Attacks: a server that accepts any password (verify probe)")
def test_verify_fails_when_a_wrong_password_is_accepted(mysql_host, mariadb, tmp_path):
    """Stands in for --skip-grant-tables: a client that answers as if logged in when its option file
    (/dev/fd/3) holds the probe's password, so the wrong password "works"."""
    host = mysql_host
    user = host.new_login("Start-Pass-D1")
    arn, current = host.create_secret(host.secret_value(user, "Start-Pass-D1"))
    expect_result(host.run("verify", arn, current), "verify", current, "verified")
    env = stand_in_tool(host.env(), tmp_path / "bin", "mysql",
                        "if grep -q '^password=\"rotator-probe-' /dev/fd/3; then echo 1; exit 0; fi\n"
                        'exec "$real" "$@"\n', MYSQL_CLIENTS)
    expect_failure(host.run("verify", arn, current, env=env), 6, "does not check passwords")
    pending = host.put_pending(arn, host.secret_value(user, "Next-Pass-D1"))
    # (This stand-in checks the real password, so set changes it and then cannot verify it.)
    expect_failure(host.run("set", arn, pending, env=env), 6, "does not check passwords")


def test_verify_logs_in_to_the_secrets_database_when_it_names_one(mysql_host, mariadb):
    """A MySQL secret's dbname is optional; when it names a database, the login is verified by
    connecting to it, as the application does: a login that may not use it is refused (exit 5)."""
    host = mysql_host
    user = host.new_login("Start-Pass-F1")
    table = "items_" + uuid.uuid4().hex[:8]
    mariadb.create_table(table)
    mariadb.grant("SELECT", table, user)
    for dbname, outcome in ((None, "verified"), (mariadb.app_database, "verified"), ("mysql", None)):
        arn, current = host.create_secret(host.secret_value(user, "Start-Pass-F1", dbname=dbname))
        if outcome:
            expect_result(host.run("verify", arn, current), "verify", current, outcome)
        else:
            expect_failure(host.run("verify", arn, current), 5, f"MySQL refused the login '{user}' with this password")


MYSQL_CLIENTS = ("mysql", "mariadb")


def stand_in_administrator(env: dict, bindir: Path, body: str) -> dict:
    """env with a `mysql` first on PATH that runs `body` (bash, the real client in $real) for the
    administrator's sessions (the only ones with --default-character-set) and is the real client
    for the logins' own."""
    return stand_in_tool(env, bindir, "mysql", 'case " $* " in *" --default-character-set=utf8mb4 "*) ;; '
                         '*) exec "$real" "$@" ;; esac\n' + body, MYSQL_CLIENTS)


@pytest.mark.parametrize(("answer", "reported"), [
    # The server's code alone: its message may quote a statement, and the statement a name.
    ("ERROR 1227 (42000) at line 2: Access denied; you need the SUPER privilege for `app_secret_table`",
     "ERROR 1227 (42000)"),
    # Anything else the client says: its first line.
    ("mysql: unknown variable 'stand-in=1'", "mysql: unknown variable 'stand-in=1'"),
])
def test_an_administrator_session_that_fails_is_reported_by_the_servers_code_or_the_clients_line(
        mysql_host, tmp_path, answer, reported):
    host = mysql_host
    user = host.new_login("Start-Pass-E1")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-E1"))
    pending = host.put_pending(arn, host.secret_value(user, "Next-Pass-E1"))
    # The session that changes the password fails: the look-ups before it run in a condition
    # (`login_exists || fail`), where bash ignores a failing command; this one does not.
    env = stand_in_administrator(host.env(), tmp_path / "bin", f"""input=$(cat)
if [[ $input == *"ALTER USER"* ]]; then echo "{answer}" >&2; exit 1; fi
printf '%s\\n' "$input" | "$real" "$@"
""")
    result = host.run("set", arn, pending, env=env)
    expect_failure(result, 6)
    assert result.stderr == f"rotator: the password of '{user}' could not be changed: {reported}\n"
    assert host.server.can_login(user, "Start-Pass-E1")


def test_a_clone_that_vanishes_before_its_grants_are_copied_is_an_error(alternating, tmp_path):
    """Another administrator drops the clone between its creation and the copy of its partner's
    grants (stood in for: the second look-up of its host entries answers none): the copy stops
    before granting anything to a login that is not there."""
    host, server, arn, app, app_password, pending = alternating
    clone = app + "_clone"
    version = pending(clone, "Clone-Pass-V1")
    lookup = f"SELECT HEX(Host) FROM mysql.user WHERE User = '{clone}'"
    count = tmp_path / "lookups"
    env = stand_in_administrator(host.env(), tmp_path / "bin", f"""input=$(cat)
if [[ $input == *"{lookup}"* ]]; then
  n=$(cat {count} 2>/dev/null || echo 0); echo $((n + 1)) >{count}
  if [ "$n" -ge 1 ]; then printf '%s\\n' "$input" | "$real" "$@" | head -n 1; exit "${{PIPESTATUS[1]}}"; fi
fi
printf '%s\\n' "$input" | "$real" "$@"
""")
    result = host.run("set", arn, version, env=env)
    expect_failure(result, 3, f"the login '{clone}' does not exist")
    assert count.read_text() == "2\n", "the clone's host entries were not looked up twice"


# ---- the helper's table of MariaDB's global privilege bits ------------------------------------------


def test_the_global_privilege_bits_are_mariadbs(mariadb):
    user = "bits_" + uuid.uuid4().hex[:8]
    mariadb.create_login(user, "Bits-Pass-1")
    for bit, name in enumerate(helper.MARIADB_GLOBAL):
        if name == "SHOW CREATE ROUTINE":  # MariaDB 11.3+
            continue
        mariadb.admin_sql(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{user}'@'%';\n"
                          + (f"GRANT USAGE ON *.* TO '{user}'@'%' WITH GRANT OPTION;\n" if name == "GRANT OPTION"
                             else f"GRANT {name} ON *.* TO '{user}'@'%';\n"))
        access = mariadb.admin_sql(f"SELECT JSON_VALUE(Priv, '$.access') FROM mysql.global_priv WHERE User = '{user}';\n")
        assert int(access) == 1 << bit, name


# ---- (e) MariaDB's authentication alternatives survive a rotation ------------------------------------


def auth_methods(server, user: str) -> dict[str, list[str]]:
    """Each host entry's authentication methods, in order, from mysql.global_priv's JSON (the top
    method where auth_or holds {})."""
    out = server.admin_sql(f"SELECT HEX(Host), HEX(Priv) FROM mysql.global_priv WHERE User = '{user}';\n")
    found = {}
    for line in out.splitlines():
        host, priv = (bytes.fromhex(v).decode() for v in line.split("\t"))
        priv = json.loads(priv)
        found[host] = [priv["plugin"] if m == {} else m["plugin"] for m in priv.get("auth_or", [{}])]
    return found


SOCKET_OR_PASSWORD = ["unix_socket", "mysql_native_password"]


def with_socket(server, user: str, password: str) -> None:
    server.admin_sql(f"ALTER USER '{user}'@'%' IDENTIFIED VIA unix_socket OR mysql_native_password "
                     f"USING PASSWORD('{password}');\n")
    assert auth_methods(server, user) == {"%": SOCKET_OR_PASSWORD}


@pytest.mark.chaos("Attacks: a login's other authentication methods kept at rotation (MariaDB)")
def test_a_login_keeps_unix_socket_beside_its_new_password(mysql_host, mariadb):
    host = mysql_host
    user = host.new_login("Start-Pass-E1")
    with_socket(mariadb, user, "Start-Pass-E1")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-E1"))
    pending = host.put_pending(arn, host.secret_value(user, "Next-Pass-E1"))
    expect_result(host.run("set", arn, pending), "set", pending, "changed")
    # (IDENTIFIED BY PASSWORD '<hash>' left mysql_native_password alone.)
    assert auth_methods(mariadb, user) == {"%": SOCKET_OR_PASSWORD}
    assert mariadb.can_login(user, "Next-Pass-E1")
    assert not mariadb.can_login(user, "Start-Pass-E1")
    assert "Next-Pass-E1" not in mariadb.general_log()


@pytest.mark.chaos("Attacks: a login's other authentication methods kept at rotation (MariaDB)")
def test_the_clone_authenticates_as_its_partner_and_keeps_it(alternating):
    host, server, arn, app, app_password, pending = alternating
    clone = app + "_clone"
    with_socket(server, app, app_password)
    version = pending(clone, "Clone-Pass-E2")
    expect_result(host.run("set", arn, version), "set", version, "changed")
    assert auth_methods(server, clone) == {"%": SOCKET_OR_PASSWORD}
    assert server.can_login(clone, "Clone-Pass-E2")
    # The existing clone's password changes again: its methods stay.
    again = pending(clone, "Clone-Pass-E3")
    expect_result(host.run("set", arn, again), "set", again, "changed")
    assert auth_methods(server, clone) == {"%": SOCKET_OR_PASSWORD}
    assert server.can_login(clone, "Clone-Pass-E3") and not server.can_login(clone, "Clone-Pass-E2")
    assert auth_methods(server, app) == {"%": SOCKET_OR_PASSWORD}
    assert "Clone-Pass-E2" not in server.general_log() and "Clone-Pass-E3" not in server.general_log()


def install_ed25519(server) -> None:
    if not server.admin_sql("SELECT 1 FROM information_schema.PLUGINS WHERE PLUGIN_NAME = 'ed25519';\n").strip():
        server.admin_sql("INSTALL SONAME 'auth_ed25519';\n")


UNROTATABLE = [
    # A second password rotator cannot set: the old one would keep working through it.
    ("IDENTIFIED VIA ed25519 USING PASSWORD('{p}') OR mysql_native_password USING PASSWORD('{p}')",
     "via ed25519 OR mysql_native_password"),
    # No password method at all.
    ("IDENTIFIED VIA unix_socket", "via unix_socket:"),
]


@pytest.mark.chaos("Attacks: a login's other authentication methods kept at rotation (MariaDB)")
@pytest.mark.parametrize("authentication, what", UNROTATABLE)
def test_a_login_whose_password_cannot_be_set_alone_is_refused(mysql_host, mariadb, authentication, what):
    host = mysql_host
    install_ed25519(mariadb)
    user = host.new_login("Start-Pass-E4")
    mariadb.admin_sql(f"ALTER USER '{user}'@'%' {authentication.format(p='Start-Pass-E4')};\n")
    before = mariadb.admin_sql(f"SELECT Priv FROM mysql.global_priv WHERE User = '{user}';\n")
    arn, _ = host.create_secret(host.secret_value(user, "Start-Pass-E4"))
    pending = host.put_pending(arn, host.secret_value(user, "Next-Pass-E4"))
    expect_failure(host.run("set", arn, pending), 3, what)
    assert mariadb.admin_sql(f"SELECT Priv FROM mysql.global_priv WHERE User = '{user}';\n") == before


@pytest.mark.chaos("Attacks: a login's other authentication methods kept at rotation (MariaDB)")
@pytest.mark.parametrize("authentication, what", UNROTATABLE)
def test_a_partner_whose_password_cannot_be_set_alone_is_not_cloned(alternating, authentication, what):
    host, server, arn, app, app_password, pending = alternating
    install_ed25519(server)
    server.admin_sql(f"ALTER USER '{app}'@'%' {authentication.format(p=app_password)};\n")
    version = pending(app + "_clone", "Clone-Pass-E5")
    expect_failure(host.run("set", arn, version), 3, what)
    assert not server.login_exists(app + "_clone")


def mysql_authentication(tmp_path, plugin: str):
    # MySQL cannot run here: the helper's reading of MySQL's answer, as authentication_sql asks it.
    (tmp_path / "hosts").write_text("mysql\n" + b"%".hex().upper() + "\n")
    (tmp_path / "hosts-auth").write_text("%s\t%s\n" % (b"%".hex().upper(), plugin.encode().hex().upper()))
    return helper.read_authentication(str(tmp_path), "app", "hosts")


def test_mysql_sets_the_password_through_the_accounts_own_plugin(tmp_path):
    flavour, authentication = mysql_authentication(tmp_path, "caching_sha2_password")
    assert (flavour, authentication) == ("mysql", {"%": "caching_sha2_password"})
    assert helper.password_clause(flavour, "p'w", authentication["%"]) == "IDENTIFIED WITH caching_sha2_password BY 'p\\'w'"


def test_mysql_refuses_a_plugin_without_a_password(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_status:
        mysql_authentication(tmp_path, "auth_socket")
    assert exit_status.value.code == 3
    assert "authenticates with auth_socket" in capsys.readouterr().err


# ---- (f) routine grants mysql.procs_priv holds cut short, or naming no routine ------------------------


def clone_with_a_routine_grant(alternating, *statements):
    """A first `set` makes the clone (the partner's grants); then the administrator runs statements
    (their {db} is a new database the partner holds ALL on) and a second `set` must fail (exit 6)
    before the clone's grants change."""
    host, server, arn, app, app_password, pending = alternating
    clone = app + "_clone"
    first = pending(clone, "Clone-Pass-F1")
    expect_result(host.run("set", arn, first), "set", first, "changed")
    database = "own_" + uuid.uuid4().hex[:8]
    my_prepared(server, f"CREATE DATABASE {database}", f"GRANT ALL ON {database}.* TO {my_name(app)}@'%'",
                *(s.format(db=database, app=f"{my_name(app)}@'%'") for s in statements))
    before = my_privileges(server, clone)
    second = pending(clone, "Clone-Pass-F2")
    return host.run("set", arn, second), lambda: my_privileges(server, clone) == before


# 64 bytes of UTF-8, and a longer name that begins with them: procs_priv's 64 characters hold only the
# first 64 bytes of either (each byte one latin1 character).
PREFIX = "漢" * 21 + "a"


@pytest.mark.chaos("Attacks: routine grants stored cut short or naming no routine (MySQL)")
def test_a_routine_grant_cut_short_gives_the_clone_no_other_routine(alternating):
    # Read back as it is held, the grant on the longer routine names the shorter one: the clone
    # would get EXECUTE on a routine its partner cannot run.
    result, unchanged = clone_with_a_routine_grant(
        alternating, f"CREATE PROCEDURE {{db}}.`{PREFIX}`() SELECT 1", f"CREATE PROCEDURE {{db}}.`{PREFIX}bcd`() SELECT 1",
        f"GRANT EXECUTE ON PROCEDURE {{db}}.`{PREFIX}bcd` TO {{app}}")
    expect_failure(result, 6, "cut short")
    assert unchanged()


@pytest.mark.chaos("Attacks: routine grants stored cut short or naming no routine (MySQL)")
def test_a_routine_grant_naming_no_routine_changes_nothing(alternating):
    # With automatic_sp_privileges off, DROP PROCEDURE leaves its grants: the GRANT built from one
    # would fail half-way through the copy.
    server = alternating[1]
    server.admin_sql("SET GLOBAL automatic_sp_privileges = OFF;\n")
    try:
        result, unchanged = clone_with_a_routine_grant(
            alternating, "CREATE PROCEDURE {db}.gone() SELECT 1", "GRANT EXECUTE ON PROCEDURE {db}.gone TO {app}",
            "DROP PROCEDURE {db}.gone")
    finally:
        server.admin_sql("SET GLOBAL automatic_sp_privileges = ON;\n")
    expect_failure(result, 6, "names 0 routines")
    assert unchanged()
