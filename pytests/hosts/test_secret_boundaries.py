"""The host helper's limits at their edges, in-process (secret.py with each engine's Rules): where the
case table (hosts/secret-cases.json) holds one example of a rule, these walk its boundary, so a
limit moved by one is noticed (the mutation gate, ops/mutate/hosts.py, found such moves unseen)."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "hosts" / "linux"))
import mysql  # noqa: E402
import postgres  # noqa: E402
import secret  # noqa: E402

HELPERS = {"postgres": postgres, "mariadb": mysql}
BASE = {"host": "db.internal.example", "username": "app", "password": "Start-Pass-1234",
        "instanceIds": ["i-0123456789abcdef0"]}


def parse(engine: str, value: dict, monkeypatch, capsys, stages=("AWSPENDING",)) -> tuple[int, str, str]:
    """secret.parse("set") of the version holding `value` as the AWS CLI prints it: (exit status, out, err)."""
    envelope = json.dumps([list(stages), json.dumps({"engine": engine, **value})])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(envelope.encode("utf-8")), encoding="utf-8"))
    status = 0
    try:
        secret.parse("set", HELPERS[engine].RULES)
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


# The control characters the function's parser refuses (DatabaseSecret: below U+0020 and U+007F): the
# host must refuse exactly those, no more (a C1 character or U+00A0 is a password's to hold), no fewer.
@pytest.mark.parametrize("engine", sorted(HELPERS))
@pytest.mark.parametrize("code", [0x00, 0x01, 0x09, 0x0A, 0x1E, 0x1F, 0x20, 0x21, 0x7E, 0x7F, 0x80, 0x9F, 0xA0])
def test_exactly_c0_and_del_are_control_characters(engine, code, monkeypatch, capsys):
    password = "Start" + chr(code) + "Pass-1234"
    status, out, err = parse(engine, {**BASE, "password": password}, monkeypatch, capsys)
    if code < 0x20 or code == 0x7F:
        assert (status, out) == (4, ""), (status, err)
        assert "'password' contains control characters" in err
    else:
        assert status == 0, err
        assert out.split("\n")[4] == password


# The client's credential file (exec_with_credential) holds a password: in memory where the kernel
# can (memfd), so it never reaches a disk's blocks; only without memfd_create (Python before 3.8) a
# file in the private working directory that no name leads to.
def test_the_credential_file_is_in_memory(tmp_path):
    with secret.anonymous_file(str(tmp_path)) as handle:
        assert os.readlink(f"/proc/self/fd/{handle.fileno()}").startswith("/memfd:rotator-credential")
    assert list(tmp_path.iterdir()) == []


def test_without_memfd_the_credential_file_has_no_name(tmp_path, monkeypatch):
    monkeypatch.delattr(os, "memfd_create")
    with secret.anonymous_file(str(tmp_path)) as handle:
        handle.write(b"Start-Pass-1234")
        handle.flush()
        assert os.fstat(handle.fileno()).st_nlink == 0
        assert os.readlink(f"/proc/self/fd/{handle.fileno()}").startswith(str(tmp_path) + "/")
        assert list(tmp_path.iterdir()) == []


def helper_command(engine: str, arguments: list[str], value: dict, monkeypatch, capsys,
                   stages=("AWSCURRENT",)) -> tuple[int, str, str]:
    """The helper run as `python3 -c "$helper" <arguments>` with the version holding `value` on stdin."""
    envelope = json.dumps([list(stages), json.dumps(value)])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(envelope.encode("utf-8")), encoding="utf-8"))
    monkeypatch.setattr(sys, "argv", ["-c", *arguments])
    status = 0
    try:
        secret.run(HELPERS[engine].RULES, lambda username, password: b"", {})
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


# A set runs only for a version still AWSPENDING or AWSCURRENT (a late copy of the step after a
# rollback changes nothing: exit 8); a verify may check any version.
@pytest.mark.parametrize("action, stages, status", [
    ("set", ["AWSPENDING"], 0), ("set", ["AWSCURRENT"], 0), ("set", ["AWSPENDING", "AWSCURRENT"], 0),
    ("set", ["AWSPREVIOUS"], 8), ("set", [], 8), ("verify", ["AWSPREVIOUS"], 0), ("verify", [], 0)])
def test_a_set_needs_a_version_awspending_or_awscurrent(action, stages, status, monkeypatch, capsys):
    code, out, err = helper_command("postgres", ["parse", action], {"engine": "postgres", **BASE}, monkeypatch, capsys,
                                    stages=stages)
    assert code == status, err
    assert (out == "") == (status == 8)


def test_a_duplicate_member_is_named(monkeypatch, capsys):
    """The refusal names the member that repeats, not the first member of the object."""
    text = '{"engine": "postgres", "host": "h", "password": "p", "username": "app", "username": "postgres"}'
    envelope = json.dumps([["AWSPENDING"], text])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(envelope.encode("utf-8")), encoding="utf-8"))
    with pytest.raises(SystemExit) as stop:
        secret.parse("set", postgres.RULES)
    assert stop.value.code == 4
    assert 'names the member "username" more than once' in capsys.readouterr().err


@pytest.mark.parametrize("port, valid", [(1, True), ("1", True), (65535, True), ("65535", True), ("65536", False), ("0", False)])
def test_the_port_is_1_to_65535(port, valid, monkeypatch, capsys):
    status, out, err = parse("postgres", {**BASE, "port": port}, monkeypatch, capsys)
    assert status == (0 if valid else 4), err
    if valid:
        assert out.split("\n")[1] == str(port)


# Another secret's login (the master's, AWSCURRENT's): a password up to 1024 characters, a username
# within the engine's limit (PostgreSQL's 63 bytes, MariaDB's 80 characters).
@pytest.mark.parametrize("engine, username, password, valid", [
    ("postgres", "app", "p" * 1024, True), ("postgres", "app", "p" * 1025, False),
    ("postgres", "é" * 31 + "u", "pw", True), ("postgres", "é" * 32, "pw", False),
    ("mariadb", "é" * 80, "pw", True), ("mariadb", "é" * 81, "pw", False)])
def test_another_secrets_login_within_its_limits(engine, username, password, valid, monkeypatch, capsys):
    status, out, err = helper_command(engine, ["parse-master"], {"username": username, "password": password},
                                      monkeypatch, capsys)
    assert status == (0 if valid else 4), err
    assert out == (f"{username}\n{password}\n" if valid else "")


def test_parse_username_prints_the_username_alone(monkeypatch, capsys):
    """What the shell reads for AWSCURRENT's login: its username, never its password."""
    status, out, err = helper_command("postgres", ["parse-username"], {"username": "app", "password": "Current-Pass-1"},
                                      monkeypatch, capsys)
    assert (status, out) == (0, "app\n"), err


# What the AWS CLI printed is not `[VersionStages, SecretString]` (a CLI that changed its output, a
# proxy's page): exit 4, saying so, before anything is read from it.
@pytest.mark.parametrize("answer", ["not json", "[]", '{"a": 1}', '[5, "{}"]', '[["AWSPENDING"], 5]', '[["AWSPENDING"]]'])
def test_an_answer_of_the_cli_that_is_not_stages_and_a_string_exits_4(answer, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(answer.encode("utf-8")), encoding="utf-8"))
    with pytest.raises(SystemExit) as stop:
        secret.parse("set", postgres.RULES)
    out, err = capsys.readouterr()
    assert (stop.value.code, out) == (4, "")
    assert err == "the secret value could not be read from the AWS CLI's answer\n"


@pytest.mark.parametrize("field", ["username", "password"])
def test_a_missing_field_is_named_as_missing(field, monkeypatch, capsys):
    value = dict(BASE)
    del value[field]
    status, out, err = parse("postgres", value, monkeypatch, capsys)
    assert (status, out) == (4, "")
    assert err == f"the secret JSON lacks the field '{field}'\n"


@pytest.mark.parametrize("value", [{"password": "pw"}, {"username": 5, "password": "pw"}, {"username": "", "password": "pw"},
                                   {"username": "app", "password": None}, {"username": "app", "password": ["pw"]},
                                   {"username": "app", "password": "p\u0001w"}])
def test_another_secrets_login_that_is_not_two_strings_exits_4(value, monkeypatch, capsys):
    status, out, err = helper_command("postgres", ["parse-master"], value, monkeypatch, capsys)
    assert (status, out) == (4, ""), err
    assert "the master secret field '" in err and "is missing, not a string or holds control characters" in err


def test_a_refused_awscurrent_login_is_named_awscurrent(monkeypatch, capsys):
    """The refusal says whose login it is: AWSCURRENT's (alternating users), not the version's own."""
    status, out, err = helper_command("postgres", ["parse-username"], {"username": "", "password": "Current-Pass-1"},
                                      monkeypatch, capsys)
    assert (status, out) == (4, "")
    assert err.startswith("the AWSCURRENT secret field 'username' is missing"), err


def test_an_unknown_helper_command_exits_6(monkeypatch, capsys):
    """A script that names a command its helper lacks is the script's own fault: 6, not a secret's (4)."""
    status, out, err = helper_command("postgres", ["parse-everything"], {"username": "app", "password": "pw"},
                                      monkeypatch, capsys)
    assert (status, out, err) == (6, "", "unknown helper command\n")


# ---- the enrolment file (secret.py enrolled; the documents' own tests in test_secret_attacks.py) ----

ENROLLED_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotator/orders-AbCdEf"


def enrolled(tmp_path, content: bytes, capsys) -> tuple[int, str, str]:
    """secret.enrolled() of a file holding `content`, in a directory only this user may write."""
    directory = tmp_path / "rotator"
    directory.mkdir(mode=0o700)
    path = directory / "enrolled"
    path.write_bytes(content)
    path.chmod(0o600)
    status = 0
    try:
        secret.enrolled(str(path), ENROLLED_ARN)
    except SystemExit as stop:
        status = stop.code
    out, err = capsys.readouterr()
    return status, out, err


# Every byte of the file is printable ASCII or a newline, comments too: the bounds each way.
@pytest.mark.parametrize("byte, allowed", [(0x1F, False), (0x20, True), (0x7E, True), (0x7F, False)])
def test_the_enrolment_file_is_printable_ascii_to_its_comments(tmp_path, capsys, byte, allowed):
    status, out, err = enrolled(tmp_path, b"# the orders team" + bytes([byte]) + b"\n" + f"{ENROLLED_ARN} app\n".encode(), capsys)
    if allowed:
        assert (status, out) == (0, "\napp\n"), err
    else:
        assert (status, out) == (3, ""), err
        assert "holds a byte that is not printable ASCII" in err


def test_an_enrolment_file_that_is_not_a_regular_file_is_refused_as_such(tmp_path, capsys):
    """A FIFO (or a device) reads as an empty file: refused for what it is, not as a file listing nothing."""
    directory = tmp_path / "rotator"
    directory.mkdir(mode=0o700)
    os.mkfifo(directory / "enrolled", 0o600)
    with pytest.raises(SystemExit) as stop:
        secret.enrolled(str(directory / "enrolled"), ENROLLED_ARN)
    assert stop.value.code == 3
    assert "is not a regular file" in capsys.readouterr().err


MASTER_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotator/orders-master-GhIjKl"
OTHER_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rotator/billing-MnOpQr"
NOT_A_LINE = "is not '<secret ARN> <login> [<master secret ARN>]'"


# Each line is the secret's complete ARN, the login and optionally the master's complete ARN, single
# spaces; what the file says for the secret is printed (the master, '' for none, then the login).
@pytest.mark.parametrize("lines, out, refusal", [
    ([f"{ENROLLED_ARN} app"], "\napp\n", None),
    ([f"{ENROLLED_ARN} app {MASTER_ARN}"], f"{MASTER_ARN}\napp\n", None),
    (["# the orders team", "", f"{OTHER_ARN} billing", f"{ENROLLED_ARN} app"], "\napp\n", None),
    ([f"{ENROLLED_ARN}"], "", NOT_A_LINE),
    ([f"{ENROLLED_ARN} app {MASTER_ARN} x"], "", NOT_A_LINE),
    ([f"{ENROLLED_ARN} app rotator/orders-master"], "", NOT_A_LINE),
    ([f"{ENROLLED_ARN}  app"], "", NOT_A_LINE),
    ([f"{ENROLLED_ARN} app;id"], "", NOT_A_LINE),
    ([f"{ENROLLED_ARN} app", f"{ENROLLED_ARN} app"], "", "lists the secret on line 2 a second time"),
    ([f"{OTHER_ARN} app"], "", "does not list the secret"),
])
def test_each_line_of_the_enrolment_file_is_read_strictly(tmp_path, capsys, lines, out, refusal):
    status, printed, err = enrolled(tmp_path, "".join(line + "\n" for line in lines).encode(), capsys)
    assert (status, printed) == ((3, "") if refusal else (0, out)), err
    assert refusal is None or refusal in err, err


# The AWS CLI's answer for the secret's RotatorLogin tag: the values of the tags with that key. One
# string is the pin; anything else (no such tag, or an answer that is not one string) pins nothing.
@pytest.mark.parametrize("answer, out", [('["app"]', "app\n"), ("[]", "\n"), ('["app", "billing"]', "\n"), ("[5]", "\n"),
                                         ('"app"', "\n"), ("null", "\n")])
def test_the_login_tag_is_the_one_string_value_or_nothing(answer, out, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(answer.encode("utf-8")), encoding="utf-8"))
    secret.login_tag()
    assert capsys.readouterr() == (out, "")


# MariaDB keeps an account's authentication in mysql.global_priv as JSON: the first method at the top
# level ("plugin", "authentication_string"), and, when there are more, "auth_or", a list of the
# methods in order in which one empty object marks where the top-level method stands
# (https://mariadb.com/kb/en/mysql-global_priv-table/). The helper reads it to keep every method but
# the password's when it changes the password; anything else it refuses (exit 6) rather than guess.
NATIVE = {"plugin": "mysql_native_password", "authentication_string": "*0123456789ABCDEF0123456789ABCDEF01234567"}
SOCKET = {"plugin": "unix_socket", "authentication_string": ""}


@pytest.mark.parametrize(("global_priv", "methods"), [
    (NATIVE, [NATIVE]),
    ({**NATIVE, "auth_or": [{}]}, [NATIVE]),
    ({**NATIVE, "auth_or": [SOCKET, {}]}, [SOCKET, NATIVE]),
    ({**NATIVE, "auth_or": [{}, SOCKET]}, [NATIVE, SOCKET]),
    ({**NATIVE, "access": 0, "version_id": 101102, "auth_or": [{}, SOCKET]}, [NATIVE, SOCKET]),
], ids=["one method", "auth_or of one", "socket first", "password first", "other members"])
def test_mariadb_methods_reads_each_method_in_order(global_priv, methods):
    assert mysql.mariadb_methods("'app'@'%'", json.dumps(global_priv)) == methods


@pytest.mark.parametrize("text", [
    "not JSON",
    '{"plugin": "mysql_native_password", "plugin": "unix_socket"}',
    json.dumps({**NATIVE, "auth_or": {}}),
    json.dumps({**NATIVE, "auth_or": [SOCKET]}),
    json.dumps({**NATIVE, "auth_or": [{}, {}]}),
    json.dumps({**NATIVE, "auth_or": [{}, "unix_socket"]}),
    json.dumps({**NATIVE, "auth_or": [{}, {**SOCKET, "password_last_changed": "0"}]}),
    json.dumps({**NATIVE, "auth_or": [{}, {"plugin": 1}]}),
    json.dumps({"plugin": ["mysql_native_password"]}),
], ids=["not JSON", "a member twice", "auth_or not a list", "no marker", "two markers", "a method not an object",
        "a method with another member", "a plugin not a string", "a top-level plugin not a string"])
def test_mariadb_methods_refuses_what_mariadb_does_not_write(text, capsys):
    with pytest.raises(SystemExit) as stop:
        mysql.mariadb_methods("'app'@'%'", text)
    assert stop.value.code == 6
    assert "'app'@'%' in mysql.global_priv is not the JSON MariaDB writes" in capsys.readouterr().err


def hexed(text: str) -> str:
    """A name as the helper's SELECTs answer it (HEX())."""
    return text.encode("utf-8").hex().upper()


def privileges_text(rows: list[tuple]) -> str:
    """read_privileges' rows written back as the server's answer to privileges_sql (names in hex)."""
    return "".join("\t".join([row[0], *(value if form in "nf" else hexed(value)
                                         for form, value in zip(mysql.FIELDS[row[0]], row[1:], strict=True))]) + "\n"
                   for row in rows)


def test_read_authentication_passes_over_blank_lines(tmp_path):
    """The server's answer (mysql -B -N, one "HEX(Host)<tab>HEX(plugin)" row per host entry) may end
    with an empty line: it is no row, and each host entry keeps its own plugin."""
    (tmp_path / "hosts").write_text(f"mysql\n{hexed('%')}\n{hexed('10.0.0.%')}\n")
    (tmp_path / "hosts-auth").write_text(f"\n{hexed('%')}\t{hexed('caching_sha2_password')}\n\n"
                                         f"{hexed('10.0.0.%')}\t{hexed('mysql_native_password')}\n\n")
    assert mysql.read_authentication(str(tmp_path), "app", "hosts") == (
        "mysql", {"%": "caching_sha2_password", "10.0.0.%": "mysql_native_password"})


def refused(call, capsys) -> tuple[int, str]:
    """(exit status, what it wrote to stderr) of a helper function that must refuse."""
    with pytest.raises(SystemExit) as stop:
        call()
    return stop.value.code, capsys.readouterr().err


# What the server answers is read strictly: an answer of another shape (a server that is not the one
# the scripts were written for, a column cut short, another process changing the account meanwhile)
# stops the step with exit 6 before anything is granted or changed, never read as something else.
@pytest.mark.parametrize("answer", [
    f"{hexed('%')}\t{hexed('mysql_native_password')}\tX\n",
    f"{hexed('%')}\n",
    f"{hexed('%')}\t{hexed('mysql_native_password').lower()}\n",
    f"{hexed('%')}\t{hexed('mysql_native_password')}0\n",
], ids=["three fields", "one field", "lower-case hex", "an odd number of digits"])
def test_read_authentication_refuses_a_line_of_another_shape(answer, tmp_path, capsys):
    (tmp_path / "hosts").write_text(f"mysql\n{hexed('%')}\n")
    (tmp_path / "hosts-auth").write_text(answer)
    assert refused(lambda: mysql.read_authentication(str(tmp_path), "app", "hosts"), capsys) == (
        6, "unexpected line in the authentication of 'app'\n")


@pytest.mark.parametrize("answered", [["%"], ["%", "10.0.0.%", "db.internal"]], ids=["one fewer", "one more"])
def test_read_authentication_refuses_host_entries_that_changed_in_between(answered, tmp_path, capsys):
    (tmp_path / "hosts").write_text(f"mysql\n{hexed('%')}\n{hexed('10.0.0.%')}\n")
    (tmp_path / "hosts-auth").write_text("".join(f"{hexed(h)}\t{hexed('mysql_native_password')}\n" for h in answered))
    assert refused(lambda: mysql.read_authentication(str(tmp_path), "app", "hosts"), capsys) == (
        6, "the host entries of 'app' changed while they were read\n")


def privileges_answer(tmp_path, text: str) -> str:
    path = tmp_path / "privileges"
    path.write_text(text)
    return str(path)


def test_read_privileges_decodes_each_form_and_passes_over_blank_lines(tmp_path):
    answer = (f"\naccess\t{hexed('app')}\t{hexed('%')}\t1025\t{hexed('')}\n\n"
              f"db\t{hexed('app')}\t{hexed('%')}\t{hexed('shop')}\t{hexed('Select,Insert')}\n"
              f"routine\t{hexed('app')}\t{hexed('%')}\t{hexed('shop')}\t{hexed('tally')}\t{hexed('PROCEDURE')}"
              f"\t{hexed('Execute')}\tY\t1\n\n")
    assert mysql.read_privileges(privileges_answer(tmp_path, answer)) == [
        ("access", "app", "%", 1025, ""),
        ("db", "app", "%", "shop", "Select,Insert"),
        ("routine", "app", "%", "shop", "tally", "PROCEDURE", "Execute", True, 1),
    ]


@pytest.mark.parametrize(("line", "message"), [
    (f"grant\t{hexed('app')}\t{hexed('%')}", "unexpected line in the privilege tables' answer"),
    (f"db\t{hexed('app')}\t{hexed('%')}\t{hexed('shop')}", "unexpected line in the privilege tables' answer"),
    (f"access\t{hexed('app')}\t{hexed('%')}\t-1\t", "unexpected privilege mask"),
    (f"access\t{hexed('app')}\t{hexed('%')}\t{'9' * 21}\t", "unexpected privilege mask"),
    (f"global\t{hexed('app')}\t{hexed('%')}\t{hexed('SELECT')}\tyes", "unexpected flag"),
    (f"db\t{hexed('app')}\t{hexed('%')}\tshop\t{hexed('Select')}", "unexpected name encoding"),
    (f"db\t{hexed('app')}\t{hexed('%')}\t73686FC3\t{hexed('Select')}",
     "a name in the db privileges is not UTF-8 (cut short by its column?)"),
], ids=["an unknown kind", "a field fewer", "a negative mask", "a mask of 21 digits", "a flag not Y/N/0/1",
        "a name not in hex", "a name cut inside a character"])
def test_read_privileges_refuses_an_answer_of_another_shape(line, message, tmp_path, capsys):
    path = privileges_answer(tmp_path, f"access\t{hexed('app')}\t{hexed('%')}\t1\t\n{line}\n")
    assert refused(lambda: mysql.read_privileges(path), capsys) == (6, message + "\n")


def test_an_unknown_privilege_is_never_copied(capsys):
    assert mysql.names_of("Select,Insert", mysql.TABLE_PRIVILEGES, "table") == [
        mysql.TABLE_PRIVILEGES["Select"], mysql.TABLE_PRIVILEGES["Insert"]]
    assert refused(lambda: mysql.names_of("Select,Teleport", mysql.TABLE_PRIVILEGES, "table"), capsys) == (
        6, "unknown table privilege in the privilege tables\n")


def test_a_global_privilege_newer_than_the_helper_is_refused_when_copying_and_counted_when_judging(capsys):
    newer = 1 << len(mysql.MARIADB_GLOBAL)
    assert mysql.mask_names(1) == ["SELECT"]
    # The privilege check (strict=False) must see it as privileged, not pass over it.
    assert mysql.mask_names(newer | 1, strict=False) == ["SELECT", "ALL PRIVILEGES"]
    assert refused(lambda: mysql.mask_names(newer | 1), capsys) == (6, "unknown global privilege in mysql.global_priv\n")


def test_a_grant_of_nothing_is_no_statement():
    assert mysql.grant([], "*.*", "`app_clone`@`%`") == []
    assert mysql.grant(["GRANT OPTION"], "*.*", "`app_clone`@`%`") == [
        "GRANT USAGE ON *.* TO `app_clone`@`%` WITH GRANT OPTION"]
    assert mysql.grant(["SELECT"], "`shop`.*", "`app_clone`@`%`") == ["GRANT SELECT ON `shop`.* TO `app_clone`@`%`"]


def test_a_routine_grant_not_read_back_is_refused(capsys):
    row = ("routine", "app", "%", "shop", "tally", "PROCEDURE", "Execute", False, 1)
    assert refused(lambda: mysql.routine_names_one(row), capsys) == (
        6, "a routine grant of the partner cannot be read back from mysql.procs_priv\n")
    mysql.routine_names_one(row[:7] + (True, 1))


@pytest.mark.parametrize("cut", ["db", "routine"])
def test_a_routine_grant_whose_schema_or_routine_name_may_be_cut_is_refused(cut, capsys):
    """mysql.procs_priv holds 64 characters of each name as latin1: a longer non-ASCII schema name
    or routine name may have been cut there, and what is left could name another routine."""
    long_name = "é" * 32          # 64 bytes in UTF-8
    names = (long_name, "tally") if cut == "db" else ("shop", long_name)
    row = ("routine", "app", "%", *names, "PROCEDURE", "Execute", True, 1)
    assert refused(lambda: mysql.routine_names_one(row), capsys) == (
        6, "a routine grant of the partner may be cut short in mysql.procs_priv, so which routine it names is not certain\n")
    mysql.routine_names_one(("routine", "app", "%", "é" * 31, "é" * 31, "PROCEDURE", "Execute", True, 1))


def test_a_routine_grant_checks_the_names_read_back_not_the_host(capsys):
    """Only Db and Routine_name are cut at 64 characters in mysql.procs_priv; a long non-ASCII host
    entry names the account, which the statement names whole (and the type is one of four words)."""
    mysql.routine_names_one(("routine", "app", "é" * 32, "shop", "tally", "PROCEDURE", "Execute", True, 1))
    row = ("routine", "app", "%", "shop", "tally", "PROCEDURE", "Execute", True, 2)
    assert refused(lambda: mysql.routine_names_one(row), capsys) == (
        6, "a routine grant of the partner names 2 routines, not one\n")


CLONE = "`app_clone`@`%`"


def test_grants_of_gives_the_clone_each_kind_of_grant_in_each_flavours_words():
    mariadb = [("access", "app", "%", 1 | 1 << 10, "reader"), ("db", "app", "%", "shop", "SELECT,INSERT"),
               ("routine", "app", "%", "shop", "tally", "PROCEDURE", "Execute", True, 1),
               ("role", "app", "%", "reader", "", False), ("dynamic", "app", "%", "BINLOG_ADMIN", True)]
    assert mysql.grants_of("mariadb", mariadb, CLONE) == [
        "GRANT SELECT ON *.* TO `app_clone`@`%` WITH GRANT OPTION",
        "GRANT SELECT, INSERT ON `shop`.* TO `app_clone`@`%`",
        "GRANT EXECUTE ON PROCEDURE `shop`.`tally` TO `app_clone`@`%`",
        "GRANT BINLOG_ADMIN ON *.* TO `app_clone`@`%` WITH GRANT OPTION",
        "GRANT `reader` TO `app_clone`@`%`",
        "SET DEFAULT ROLE `reader` FOR `app_clone`@`%`",          # MariaDB's one default role
    ]
    mysql8 = [("default", "app", "%", "reader", "%"), ("role", "app", "%", "reader", "%", True),
              ("global", "app", "%", "SELECT", False)]
    assert mysql.grants_of("mysql", mysql8, CLONE) == [
        "GRANT SELECT ON *.* TO `app_clone`@`%`",
        "GRANT `reader`@`%` TO `app_clone`@`%` WITH ADMIN OPTION",
        "ALTER USER `app_clone`@`%` DEFAULT ROLE `reader`@`%`",     # MySQL 8's roles are accounts
    ]


@pytest.mark.parametrize(("row", "message"), [
    (("global", "app", "%", "SELECT", True), "the partner has partial revokes, which cannot be copied"),
    (("dynamic", "app", "%", "BINLOG_ADMIN ON *.* TO x", False), "unexpected dynamic privilege name"),
    (("dynamic", "app", "%", "binlog_admin", False), "unexpected dynamic privilege name"),
    (("routine", "app", "%", "shop", "tally", "TRIGGER", "Execute", True, 1), "unknown routine type in mysql.procs_priv"),
], ids=["partial revokes", "a dynamic privilege with a statement", "a dynamic privilege in lower case",
        "an unknown routine type"])
def test_grants_of_refuses_what_it_cannot_copy_exactly(row, message, capsys):
    assert refused(lambda: mysql.grants_of("mysql", [row], CLONE), capsys) == (6, message + "\n")


def privileged_answer(tmp_path, capsys, rows: list[tuple], flavour: str = "mysql") -> str:
    """What privileged() prints for app@% when the privilege tables answer `rows` (read_privileges' rows,
    written back as the server's hex answer)."""
    (tmp_path / "hosts").write_text(f"{flavour}\n{hexed('%')}\n")
    (tmp_path / "privileges").write_text(privileges_text(rows))
    mysql.privileged(str(tmp_path), "app", "hosts")
    return capsys.readouterr().out


def privileged_through_a_role(tmp_path, capsys, flavour: str, role_row: tuple, role_privilege_row: tuple) -> str:
    return privileged_answer(tmp_path, capsys, [("access", "app", "%", "1", ""), role_row, role_privilege_row], flavour)


def test_an_administrators_right_reached_through_a_role_names_the_role_in_each_flavours_words(tmp_path, capsys):
    # MariaDB's roles have no host part (its mysql.roles_mapping row's Role column, with Host '').
    super_bit = str(1 << mysql.MARIADB_GLOBAL.index("SUPER"))
    assert privileged_through_a_role(tmp_path, capsys, "mariadb", ("role", "app", "%", "admin", "", "N"),
                                     ("access", "admin", "", super_bit, "")) == "SUPER ON *.* (through the role `admin`)\n"
    # MySQL 8's roles are accounts: the role admin@% is another account than admin@localhost.
    assert privileged_through_a_role(tmp_path, capsys, "mysql", ("role", "app", "%", "admin", "%", "N"),
                                     ("global", "admin", "%", "CREATE USER", "N")) == \
        "CREATE USER ON *.* (through the role `admin`@`%`)\n"
    assert privileged_through_a_role(tmp_path, capsys, "mysql", ("role", "app", "%", "admin", "%", "N"),
                                     ("global", "admin", "localhost", "CREATE USER", "N")) == ""


@pytest.mark.parametrize(("pattern", "text", "matches"), [
    ("%", "mysql", True),                 # a pattern that begins with a wildcard
    ("MY%", "mysql", True),               # without case
    ("mysq_", "mysql", True),
    ("my\\_d_", "my_db", True),           # an escaped _ is itself, the next _ a wildcard again
    ("my\\_db", "myxdb", False),
    ("my\\%", "my%", True),
    ("my\\%", "mysql", False),
    ("mysql", "mysql2", False),
])
def test_like_reads_a_schema_pattern_as_the_server_does(pattern, text, matches):
    assert mysql.like(pattern, text) is matches


def test_privileged_names_the_first_right_that_makes_an_administrator_and_only_it(tmp_path, capsys):
    assert privileged_answer(tmp_path, capsys, [("global", "app", "%", "SELECT,CREATE USER,SUPER", "N")]) == \
        "CREATE USER ON *.*\n"
    assert privileged_answer(tmp_path, capsys, [("column", "app", "%", "mysql", "user", "plugin", "Select,Update"),
                                                ("table", "app", "%", "mysql", "db", "Insert")]) == \
        "UPDATE ON a column of the mysql schema\n"
    assert privileged_answer(tmp_path, capsys, [("column", "app", "%", "shop", "user", "plugin", "Update"),
                                                ("db", "app", "%", "shop", "SELECT,UPDATE")]) == ""


def test_a_password_for_a_login_without_host_entries_is_refused(tmp_path, monkeypatch, capsys):
    (tmp_path / "hosts").write_text("mysql\n")
    (tmp_path / "hosts-auth").write_text("")
    monkeypatch.setattr(mysql, "handed_password", lambda: "New-Pass-1234")
    assert refused(lambda: mysql.password_sql("ALTER USER", "hosts")(str(tmp_path), "app"), capsys) == (
        3, "no host entries\n")


def test_copying_grants_first_takes_from_the_clone_the_roles_and_proxies_it_holds(tmp_path):
    """An existing clone's own roles and proxy grants are revoked before its partner's are granted:
    a clone that keeps a role its partner lacks keeps that role's rights."""
    (tmp_path / "hosts").write_text(f"mariadb\n{hexed('%')}\n")
    (tmp_path / "partner-hosts").write_text(f"mariadb\n{hexed('%')}\n")
    rows = [("role", "app_clone", "%", "admin", "", "N"), ("proxy", "app_clone", "%", "root", "localhost", "N"),
            ("role", "app", "%", "reader", "", "N")]
    (tmp_path / "grants").write_text(privileges_text(rows))
    sql = mysql.copy_grants_sql(str(tmp_path), "app_clone", "app")
    statements = [bytes.fromhex(h).decode("utf-8") for h in re.findall(r"CONVERT\(0x([0-9A-F]+) USING utf8mb4\)", sql)]
    assert statements == [
        "REVOKE `admin` FROM `app_clone`@`%`",
        "REVOKE PROXY ON `root`@`localhost` FROM `app_clone`@`%`",
        "REVOKE ALL PRIVILEGES, GRANT OPTION FROM `app_clone`@`%`",
        "SET DEFAULT ROLE NONE FOR `app_clone`@`%`",
        "GRANT `reader` TO `app_clone`@`%`",
    ]
