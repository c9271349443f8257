"""Attacks on the PostgreSQL document by whoever can write the secret, run as the SSM agent would
against a real PostgreSQL: a version naming an administrator (single user), AWSCURRENT naming one
as the partner to clone, and an existing clone holding rights its partner lacks (in the role, or in
another database, which the copy of the grants never reaches). Each is refused with exit 3 before
anything changes (docs/host-contract.md)."""

from __future__ import annotations

import json
import os
import uuid

import pytest

from local.databases import PG_BIN

from .support import expect_failure, expect_result


def ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@pytest.fixture
def pg(make_host):
    return make_host("postgres")


def verifier(pg, name: str) -> str:
    """The role's stored password (pg_authid.rolpassword), '' when it has none."""
    return pg.server.admin_sql(f"SELECT coalesce(rolpassword, '') FROM pg_catalog.pg_authid "
                               f"WHERE rolname = {literal(name)};\n").strip()


def attributes(pg, name: str) -> str:
    return pg.server.admin_sql(
        "SELECT rolsuper, rolcreaterole, rolreplication, rolbypassrls, rolcreatedb, rolinherit "
        f"FROM pg_catalog.pg_roles WHERE rolname = {literal(name)};\n").strip()


def sql_in(pg, database: str, sql: str) -> str:
    """SQL as OS user postgres in another database of the server."""
    server = pg.server
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", **server.host_env()}
    proc = server._run(server._as_postgres(str(PG_BIN / "psql"), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
                                           "-d", database), input_text=sql, env=env)
    return proc.stdout


# ---- single user: the version names an administrator -------------------------------------------


@pytest.mark.chaos("Attacks: a version naming an administrator (single user)")
def test_a_version_naming_the_superuser_postgres_is_refused_and_its_password_unchanged(pg):
    before = verifier(pg, "postgres")
    arn, current = pg.create_secret(pg.secret_value("postgres", "Taken-Over-1"))
    expect_failure(pg.run("set", arn, current), 3, "the login 'postgres' is privileged (SUPERUSER")
    assert verifier(pg, "postgres") == before
    assert not pg.server.can_login("postgres", "Taken-Over-1")


@pytest.mark.chaos("Attacks: a version naming an administrator (single user)")
@pytest.mark.parametrize("setup, reason", [
    ("ALTER ROLE {login} CREATEROLE", "CREATEROLE"),
    ("ALTER ROLE {login} SUPERUSER", "SUPERUSER"),
    ("ALTER ROLE {login} REPLICATION", "REPLICATION"),
    ("ALTER ROLE {login} BYPASSRLS", "BYPASSRLS"),
    # Through roles, inherited or not (a member may SET ROLE), and through a predefined role.
    ("CREATE ROLE {role} NOLOGIN SUPERUSER; CREATE ROLE {middle} NOLOGIN NOINHERIT; "
     "GRANT {role} TO {middle}; GRANT {middle} TO {login}", "through {role}: SUPERUSER"),
    ("CREATE ROLE {role} NOLOGIN CREATEROLE; GRANT {role} TO {login}", "through {role}: CREATEROLE"),
    ("GRANT pg_execute_server_program TO {login}", "member of pg_execute_server_program"),
    ("GRANT pg_write_server_files TO {login}", "member of pg_write_server_files"),
    ("CREATE ROLE {middle} NOLOGIN; GRANT pg_read_server_files TO {middle}; GRANT {middle} TO {login}",
     "member of pg_read_server_files"),
])
def test_a_version_naming_a_privileged_login_is_refused_and_its_password_unchanged(pg, setup, reason):
    user = pg.new_login("Old-Pass-1")
    role, middle = "power_" + uuid.uuid4().hex[:8], "middle_" + uuid.uuid4().hex[:8]
    pg.server.admin_sql(setup.format(login=ident(user), role=ident(role), middle=ident(middle)) + ";\n")
    before = verifier(pg, user)
    arn, _ = pg.create_secret(pg.secret_value(user, "Old-Pass-1"))
    pending = pg.put_pending(arn, pg.secret_value(user, "New-Pass-1"))
    expect_failure(pg.run("set", arn, pending), 3, "is privileged (" + reason.format(role=role))
    assert verifier(pg, user) == before
    assert pg.server.can_login(user, "Old-Pass-1")
    assert not pg.server.can_login(user, "New-Pass-1")


def test_an_ordinary_login_with_createdb_and_memberships_is_still_rotated(pg):
    user = pg.new_login("Old-Pass-2")
    role = "readers_" + uuid.uuid4().hex[:8]
    pg.server.admin_sql(f"ALTER ROLE {ident(user)} CREATEDB; CREATE ROLE {ident(role)} NOLOGIN; "
                        f"GRANT {ident(role)} TO {ident(user)}; GRANT pg_read_all_stats TO {ident(user)};\n")
    arn, _ = pg.create_secret(pg.secret_value(user, "Old-Pass-2"))
    pending = pg.put_pending(arn, pg.secret_value(user, "New-Pass-2"))
    expect_result(pg.run("set", arn, pending), "set", pending, "changed")
    assert pg.server.can_login(user, "New-Pass-2")


# ---- alternating users ----------------------------------------------------------------------------


@pytest.fixture
def alternating(pg):
    """A master secret with a real administrator and an application login holding AWSCURRENT with
    SELECT on a table: (pg, arn, app, table, master arn)."""
    admin, admin_password = "admin_" + uuid.uuid4().hex[:8], "Admin-Pass-" + uuid.uuid4().hex[:8]
    pg.server.create_admin(admin, admin_password)
    master_arn, _ = pg.create_secret({"engine": "postgres", "username": admin, "password": admin_password})
    app = pg.new_login("App-Pass-1")
    table = "items_" + uuid.uuid4().hex[:8]
    pg.server.create_table(table)
    pg.server.grant("SELECT", table, app)
    arn, _ = pg.create_secret(pg.secret_value(app, "App-Pass-1", masterarn=master_arn))
    return pg, arn, app, table, master_arn


@pytest.mark.chaos("Attacks: a privileged partner cloned (alternating users)")
def test_awscurrent_naming_a_superuser_as_partner_is_refused_and_no_clone_is_created(alternating):
    pg, arn, _, _, master_arn = alternating
    boss = pg.new_login("Boss-Pass-1")
    pg.server.admin_sql(f"ALTER ROLE {ident(boss)} SUPERUSER;\n")
    pg.sm.put_secret_value(SecretId=arn, SecretString=json.dumps(
        pg.secret_value(boss, "Boss-Pass-1", masterarn=master_arn)), VersionStages=["AWSCURRENT"])
    pending = pg.put_pending(arn, pg.secret_value(boss + "_clone", "Clone-Pass-1", masterarn=master_arn))
    expect_failure(pg.run("set", arn, pending), 3, f"the login '{boss}' is privileged (SUPERUSER")
    assert not pg.server.login_exists(boss + "_clone")


@pytest.mark.chaos("Attacks: an existing clone with rights its partner lacks")
@pytest.mark.parametrize("attribute", ["SUPERUSER", "BYPASSRLS"])
def test_an_existing_clone_with_an_attribute_its_partner_lacks_is_refused_and_unchanged(alternating, attribute):
    pg, arn, app, table, master_arn = alternating
    clone = app + "_clone"
    pg.server.create_login(clone, "Clone-Old-1")
    pg.server.admin_sql(f"ALTER ROLE {ident(clone)} {attribute};\n")
    before = (verifier(pg, clone), attributes(pg, clone))
    pending = pg.put_pending(arn, pg.secret_value(clone, "Clone-New-1", masterarn=master_arn))
    expect_failure(pg.run("set", arn, pending), 3, f"the login '{clone}' is privileged ({attribute}")
    assert (verifier(pg, clone), attributes(pg, clone)) == before
    assert pg.server.can_login(clone, "Clone-Old-1")
    assert not pg.server.can_login(clone, "Clone-New-1")
    # Not even the grants were copied.
    assert pg.server.admin_sql(f"SELECT count(*) FROM pg_catalog.pg_class c, aclexplode(c.relacl) a "
                               f"WHERE c.relname = {literal(table)} AND a.grantee = "
                               f"(SELECT oid FROM pg_roles WHERE rolname = {literal(clone)});\n").strip() == "0"


@pytest.fixture
def other_database(pg):
    name = "other_" + uuid.uuid4().hex[:8]
    pg.server.admin_sql(f"CREATE DATABASE {ident(name)};\n")
    sql_in(pg, name, "CREATE TABLE secrets (id integer); CREATE TABLE public_items (id integer);\n")
    return name


@pytest.mark.chaos("Attacks: an existing clone with rights its partner lacks")
@pytest.mark.parametrize("setup, found", [
    ("GRANT SELECT ON secrets TO {clone}", "1 with privileges in database {db}"),
    ("CREATE TABLE owned (id integer); ALTER TABLE owned OWNER TO {clone}", "1 owned in database {db}"),
    # Shared objects: a parameter privilege (PostgreSQL 15+), which the copy never touches.
    ("GRANT SET ON PARAMETER log_min_duration_statement TO {clone}", "1 with privileges in shared objects"),
])
def test_an_existing_clone_with_rights_in_another_database_is_refused_and_unchanged(
        alternating, other_database, setup, found):
    pg, arn, app, table, master_arn = alternating
    clone = app + "_clone"
    pg.server.create_login(clone, "Clone-Old-2")
    sql_in(pg, other_database, setup.format(clone=ident(clone)) + ";\n")
    before = verifier(pg, clone)
    pending = pg.put_pending(arn, pg.secret_value(clone, "Clone-New-2", masterarn=master_arn))
    expect_failure(pg.run("set", arn, pending), 3, f"the login '{clone}' holds rights outside database 'postgres' "
                   f"that '{app}' lacks ({found.format(db=other_database)})")
    assert verifier(pg, clone) == before
    assert pg.server.can_login(clone, "Clone-Old-2")
    assert pg.server.admin_sql(f"SELECT has_table_privilege({literal(clone)}, {literal(table)}, 'SELECT');\n"
                               ).strip() == "f", "the grants were copied before the refusal"


def test_an_existing_clone_with_the_partners_rights_in_another_database_is_rotated(alternating, other_database):
    pg, arn, app, table, master_arn = alternating
    clone = app + "_clone"
    pg.server.create_login(clone, "Clone-Old-3")
    sql_in(pg, other_database, f"GRANT SELECT ON public_items TO {ident(clone)}, {ident(app)};\n")
    # A database privilege the partner lacks is no reason to refuse: the copy takes it away.
    pg.server.admin_sql(f"GRANT CREATE ON DATABASE {ident(other_database)} TO {ident(clone)};\n")
    pending = pg.put_pending(arn, pg.secret_value(clone, "Clone-New-3", masterarn=master_arn))
    expect_result(pg.run("set", arn, pending), "set", pending, "changed")
    assert pg.server.can_login(clone, "Clone-New-3")
    assert pg.server.admin_sql(f"SELECT has_database_privilege({literal(clone)}, {literal(other_database)}, "
                               "'CREATE');\n").strip() == "f"
    assert pg.server.admin_sql(f"SELECT has_table_privilege({literal(clone)}, {literal(table)}, 'SELECT');\n"
                               ).strip() == "t"
