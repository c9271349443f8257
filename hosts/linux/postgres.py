"""PostgreSQL's part of the host helper: the client's password file, SQL for roles and grants, and the
SCRAM-SHA-256 verifier, so the clear-text password never reaches the server or its logs.
Joined after secret.py by ops/template.py (the import below is for linters and tests)."""

import base64
import hashlib
import hmac
import os
import stringprep
import sys
import unicodedata

from secret import Rules, handed_password, run

# NAMEDATALEN - 1 bytes for both names; the database to verify in defaults to postgres.
RULES = Rules(port=5432, dbname="postgres", username_limit=63, dbname_limit=63, unit="bytes")


def pgpass_escape(text):
    return text.replace("\\", "\\\\").replace(":", "\\:")


# The privileges one role holds and the other lacks (and the reverse), as GRANT / REVOKE
# statements for \gexec: role attributes, role memberships, and the ACLs of this database's
# tables, views, sequences, schemas and routines and of every database.
COPY_GRANTS_SQL = """
SET search_path = '';
WITH source AS (SELECT * FROM pg_catalog.pg_roles WHERE rolname = %(source)s),
target AS (SELECT * FROM pg_catalog.pg_roles WHERE rolname = %(target)s),
objects(kind, name, acl) AS (
    SELECT CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.oid::regclass::text, c.relacl
      FROM pg_catalog.pg_class c WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p', 'S') AND c.relacl IS NOT NULL
    UNION ALL
    SELECT 'SCHEMA', pg_catalog.quote_ident(n.nspname), n.nspacl FROM pg_catalog.pg_namespace n WHERE n.nspacl IS NOT NULL
    UNION ALL
    SELECT 'DATABASE', pg_catalog.quote_ident(d.datname), d.datacl FROM pg_catalog.pg_database d WHERE d.datacl IS NOT NULL
    UNION ALL
    SELECT 'ROUTINE', p.oid::regprocedure::text, p.proacl FROM pg_catalog.pg_proc p WHERE p.proacl IS NOT NULL),
privileges AS (
    SELECT o.kind, o.name, a.privilege_type, a.is_grantable, a.grantee
      FROM objects o CROSS JOIN LATERAL pg_catalog.aclexplode(o.acl) a
     WHERE a.grantee IN ((SELECT oid FROM source), (SELECT oid FROM target))),
memberships AS (
    SELECT m.member, g.rolname, m.admin_option FROM pg_catalog.pg_auth_members m
      JOIN pg_catalog.pg_roles g ON g.oid = m.roleid
     WHERE m.member IN ((SELECT oid FROM source), (SELECT oid FROM target))
       AND g.rolname NOT IN (%(source)s, %(target)s)),
statements(step, statement) AS (
    SELECT 1, pg_catalog.format('ALTER ROLE %%I WITH %%s %%s %%s CONNECTION LIMIT %%s', t.rolname,
               CASE WHEN s.rolinherit THEN 'INHERIT' ELSE 'NOINHERIT' END,
               CASE WHEN s.rolcreatedb THEN 'CREATEDB' ELSE 'NOCREATEDB' END,
               CASE WHEN s.rolcreaterole THEN 'CREATEROLE' ELSE 'NOCREATEROLE' END, s.rolconnlimit)
      FROM source s, target t
     WHERE (s.rolinherit, s.rolcreatedb, s.rolcreaterole, s.rolconnlimit)
           IS DISTINCT FROM (t.rolinherit, t.rolcreatedb, t.rolcreaterole, t.rolconnlimit)
    UNION ALL
    SELECT 2, pg_catalog.format('REVOKE %%I FROM %%I', m.rolname, %(target)s) FROM memberships m
     WHERE m.member = (SELECT oid FROM target) AND (m.rolname, m.admin_option) NOT IN
           (SELECT rolname, admin_option FROM memberships WHERE member = (SELECT oid FROM source))
    UNION ALL
    SELECT 3, pg_catalog.format('REVOKE %%s ON %%s %%s FROM %%I CASCADE', p.privilege_type, p.kind, p.name, %(target)s)
      FROM privileges p
     WHERE p.grantee = (SELECT oid FROM target) AND (p.kind, p.name, p.privilege_type, p.is_grantable) NOT IN
           (SELECT kind, name, privilege_type, is_grantable FROM privileges WHERE grantee = (SELECT oid FROM source))
    UNION ALL
    SELECT 4, pg_catalog.format('GRANT %%I TO %%I%%s', m.rolname, %(target)s,
               CASE WHEN m.admin_option THEN ' WITH ADMIN OPTION' ELSE '' END) FROM memberships m
     WHERE m.member = (SELECT oid FROM source) AND (m.rolname, m.admin_option) NOT IN
           (SELECT rolname, admin_option FROM memberships WHERE member = (SELECT oid FROM target))
    UNION ALL
    SELECT 5, pg_catalog.format('GRANT %%s ON %%s %%s TO %%I%%s', p.privilege_type, p.kind, p.name, %(target)s,
               CASE WHEN p.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
      FROM privileges p
     WHERE p.grantee = (SELECT oid FROM source) AND (p.kind, p.name, p.privilege_type, p.is_grantable) NOT IN
           (SELECT kind, name, privilege_type, is_grantable FROM privileges WHERE grantee = (SELECT oid FROM target)))
SELECT statement FROM statements ORDER BY step
\\gexec
"""


# Whether a role holds an administrator's rights, itself or through any role it is a member of
# (directly or not, INHERIT or not: a member may SET ROLE): one line saying which, else nothing.
# Predefined roles that reach the server's files, programs, every table or other sessions count.
PRIVILEGED_SQL = """
SET search_path = '';
WITH RECURSIVE held(oid) AS (
    SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %(name)s
    UNION
    SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN held h ON m.member = h.oid),
reasons(reason) AS (
    SELECT CASE WHEN r.rolname IN (%(predefined)s) THEN 'member of ' || r.rolname
                ELSE CASE WHEN r.rolname = %(name)s THEN '' ELSE 'through ' || pg_catalog.quote_ident(r.rolname) || ': ' END
                     || pg_catalog.concat_ws(' ', CASE WHEN r.rolsuper THEN 'SUPERUSER' END,
                                             CASE WHEN r.rolcreaterole THEN 'CREATEROLE' END,
                                             CASE WHEN r.rolreplication THEN 'REPLICATION' END,
                                             CASE WHEN r.rolbypassrls THEN 'BYPASSRLS' END) END
      FROM pg_catalog.pg_roles r JOIN held h ON h.oid = r.oid
     WHERE r.rolsuper OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls OR r.rolname IN (%(predefined)s))
SELECT pg_catalog.string_agg(reason, '; ' ORDER BY reason) FROM reasons HAVING count(*) > 0;
"""

PRIVILEGED_PREDEFINED = (
    "pg_execute_server_program", "pg_write_server_files", "pg_read_server_files",
    "pg_read_all_data", "pg_write_all_data", "pg_signal_backend",
)

# What an existing login `target` holds outside this database that `source` lacks, which the
# copy of the grants (COPY_GRANTS_SQL, this database only) would leave in place: objects of other
# databases it owns, has privileges on or is named in a policy of (pg_shdepend: one row per
# object and kind of dependency, dbid the database), and shared objects (tablespaces, parameters,
# databases it owns), except the databases' own ACLs, which the copy does reset. Compared per
# object and kind: a privilege on an object where `source` also holds one is not seen.
EXTRA_RIGHTS_SQL = """
SET search_path = '';
WITH source AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %(source)s),
target AS (SELECT oid FROM pg_catalog.pg_roles WHERE rolname = %(target)s),
dependencies AS (
    SELECT d.dbid, d.classid, d.objid, d.objsubid, d.deptype, d.refobjid
      FROM pg_catalog.pg_shdepend d
     WHERE d.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
       AND d.refobjid IN ((SELECT oid FROM source), (SELECT oid FROM target))
       AND d.dbid <> (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
       AND NOT (d.dbid = 0 AND d.classid = 'pg_catalog.pg_database'::pg_catalog.regclass AND d.deptype = 'a')),
extra AS (
    SELECT t.dbid, t.deptype FROM dependencies t
     WHERE t.refobjid = (SELECT oid FROM target)
       AND NOT EXISTS (SELECT 1 FROM dependencies s
                        WHERE s.refobjid = (SELECT oid FROM source) AND (s.dbid, s.classid, s.objid, s.objsubid, s.deptype)
                              = (t.dbid, t.classid, t.objid, t.objsubid, t.deptype)))
SELECT pg_catalog.string_agg(pg_catalog.format('%%s %%s in %%s', n,
           CASE deptype WHEN 'o' THEN 'owned' WHEN 'a' THEN 'with privileges' WHEN 'r' THEN 'in policies' ELSE 'other' END,
           CASE WHEN dbid = 0 THEN 'shared objects' ELSE 'database ' || pg_catalog.quote_ident(datname) END), '; ')
  FROM (SELECT e.dbid, e.deptype, db.datname, count(*) AS n FROM extra e
          LEFT JOIN pg_catalog.pg_database db ON db.oid = e.dbid GROUP BY e.dbid, e.deptype, db.datname) per_database
HAVING count(*) > 0;
"""


def saslprep(password):
    """The password bytes libpq hashes (pg_saslprep; on failure libpq uses the raw bytes)."""
    raw = password.encode("utf-8")
    if all(ord(c) < 128 for c in password):
        return raw
    mapped = []
    for c in password:
        if stringprep.in_table_c12(c):
            mapped.append(" ")
        elif not stringprep.in_table_b1(c):
            mapped.append(c)
    text = unicodedata.normalize("NFKC", "".join(mapped))
    if not text:
        return raw
    prohibited = (
        stringprep.in_table_c12, stringprep.in_table_c21, stringprep.in_table_c22,
        stringprep.in_table_c3, stringprep.in_table_c4, stringprep.in_table_c5,
        stringprep.in_table_c6, stringprep.in_table_c7, stringprep.in_table_c8,
        stringprep.in_table_c9, stringprep.in_table_a1,
    )
    if any(check(c) for c in text for check in prohibited):
        return raw
    if any(stringprep.in_table_d1(c) for c in text):
        if any(stringprep.in_table_d2(c) for c in text):
            return raw
        if not (stringprep.in_table_d1(text[0]) and stringprep.in_table_d1(text[-1])):
            return raw
    return text.encode("utf-8")


def scram_verifier(password):
    salt = os.urandom(16)
    iterations = 4096
    salted = hashlib.pbkdf2_hmac("sha256", saslprep(password), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(data):
        return base64.b64encode(data).decode("ascii")

    return "SCRAM-SHA-256$%d:%s$%s:%s" % (iterations, b64(salt), b64(stored_key), b64(server_key))


def pg_ident(name):
    return '"' + name.replace('"', '""') + '"'


def pg_literal(text):
    return "E'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def password_file(username, password):
    # libpq's password file (PGPASSFILE): one line for any host, port, database and user.
    return ("*:*:*:*:" + pgpass_escape(password) + "\n").encode("utf-8")


def exists_sql(name):
    sys.stdout.write("SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = %s;\n" % pg_literal(name))


def password_sql(verb):
    def write(name):
        password = handed_password()
        # One change at a time on this server: two concurrent ALTER ROLE of one role fail
        # with "tuple concurrently updated" (two copies of a step, a rollback racing a set).
        sys.stdout.write("BEGIN;\nSELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('rotator: ALTER ROLE'));\n"
                         + (verb + " PASSWORD '%s';\nCOMMIT;\n") % (pg_ident(name), scram_verifier(password)))
    return write


def copy_grants_sql(source, target):
    sys.stdout.write(COPY_GRANTS_SQL % {"source": pg_literal(source), "target": pg_literal(target)})


def privileged_sql(name):
    predefined = ", ".join(pg_literal(role) for role in PRIVILEGED_PREDEFINED)
    sys.stdout.write(PRIVILEGED_SQL % {"name": pg_literal(name), "predefined": predefined})


def extra_rights_sql(source, target):
    sys.stdout.write(EXTRA_RIGHTS_SQL % {"source": pg_literal(source), "target": pg_literal(target)})


if __name__ == "__main__":
    run(RULES, password_file, {
        "exists-sql": exists_sql,
        "alter-sql": password_sql("ALTER ROLE %s"),
        "create-sql": password_sql("CREATE ROLE %s LOGIN"),
        "copy-grants-sql": copy_grants_sql,
        "privileged-sql": privileged_sql,
        "extra-rights-sql": extra_rights_sql,
    })
