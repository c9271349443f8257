"""MySQL's and MariaDB's part of the host helper: client option files, and the SQL for users,
their host entries and their grants. Joined after secret.py by ops/template.py (the import below
is for linters and tests)."""

import hashlib
import json
import os
import re
import sys

from secret import Rules, die, handed_password, refuse_duplicates, run

# Oracle MySQL's user names are 32 characters, MariaDB's 80; the helper allows what either stores
# (the server refuses a longer name for itself). Database names are 64 characters on both.
RULES = Rules(port=3306, dbname="", username_limit=80, dbname_limit=64, unit="characters")


def option_value(text):
    # A double-quoted value of a MySQL option file (escapes as mysys reads them).
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sql_literal(text):
    # A string literal for sql_mode '' (the helper SQL sets it): backslash escapes active.
    escapes = {"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"}
    return "'" + "".join(escapes.get(c, c) for c in text) + "'"


# How a login authenticates, per flavour (docs/host-contract.md). The new password is set on the
# login's password method alone; every other method is kept as it is, so a login that also
# authenticates by unix_socket keeps it (MariaDB's IDENTIFIED BY PASSWORD would replace them all).
# MariaDB 10.4+ keeps a login's methods in mysql.global_priv's JSON: the last one at the top
# ("plugin", "authentication_string"); with alternatives (IDENTIFIED VIA a OR b ...) all of them
# in "auth_or", where {} stands for the top one.
MARIADB_PASSWORD_PLUGIN = "mysql_native_password"
# Methods that hold no password (the OS user on the socket, a Kerberos principal): kept as they are.
MARIADB_PASSWORDLESS_PLUGINS = ("unix_socket", "gssapi")
# MySQL has one plugin per account; these take IDENTIFIED [WITH <plugin>] BY '<password>'.
MYSQL_PASSWORD_PLUGINS = ("caching_sha2_password", "mysql_native_password", "sha256_password")


def authentication_sql(work, name, hosts_file):
    # Per host entry of the login (in hex): MariaDB's global_priv JSON, MySQL's plugin.
    flavour, _ = read_hosts(work, hosts_file)
    column, table = ("Priv", "mysql.global_priv") if flavour == "mariadb" else ("plugin", "mysql.user")
    sys.stdout.write("SET SESSION sql_mode = '';\nSELECT HEX(Host), HEX(%s) FROM %s WHERE User = %s ORDER BY Host;\n"
                     % (column, table, sql_literal(name)))


def mariadb_methods(account, text):
    """The authentication methods of a MariaDB account, in order, from its global_priv JSON."""
    try:
        priv = json.loads(text, object_pairs_hook=refuse_duplicates)
    except ValueError:
        die(6, "the authentication of %s in mysql.global_priv is not the JSON MariaDB writes" % account)
    top = {key: priv[key] for key in ("plugin", "authentication_string") if key in priv}
    chain = priv.get("auth_or", [{}])
    if not isinstance(chain, list) or sum(1 for method in chain if method == {}) != 1:
        die(6, "the authentication of %s in mysql.global_priv is not the JSON MariaDB writes" % account)
    methods = [top if method == {} else method for method in chain]
    for method in methods:
        if (not isinstance(method, dict) or set(method) - {"plugin", "authentication_string"}
                or not all(isinstance(value, str) for value in method.values())):
            die(6, "the authentication of %s in mysql.global_priv is not the JSON MariaDB writes" % account)
    return methods


def read_authentication(work, name, hosts_file):
    """Each host entry's authentication (authentication_sql's answer, work/<hosts_file>-auth):
    MariaDB: its list of methods, MySQL: its plugin. Refused (exit 3) when the password cannot be
    set through exactly one password method with every other method kept as it is."""
    flavour, hosts = read_hosts(work, hosts_file)
    found = {}
    with open(os.path.join(work, hosts_file + "-auth")) as handle:
        for line in handle:
            if not line.strip():
                continue
            fields = line.strip().split("\t")
            if len(fields) != 2 or not all(re.match(r"^(?:[0-9A-F]{2})*\Z", f) for f in fields):
                die(6, "unexpected line in the authentication of '%s'" % name)
            host, value = (bytes.fromhex(f).decode("utf-8") for f in fields)
            found[host] = value
    if sorted(found) != sorted(hosts):
        die(6, "the host entries of '%s' changed while they were read" % name)
    out = {}
    for host in hosts:
        account = "'%s'@'%s'" % (name, host)
        if flavour == "mysql":
            if found[host] not in MYSQL_PASSWORD_PLUGINS:
                die(3, "the login %s authenticates with %s, which rotator cannot give a password (only %s)"
                    % (account, found[host] or "no plugin", ", ".join(MYSQL_PASSWORD_PLUGINS)))
            out[host] = found[host]
            continue
        methods = mariadb_methods(account, found[host])
        plugins = [method.get("plugin", "") for method in methods]
        unknown = [p for p in plugins if p != MARIADB_PASSWORD_PLUGIN and p not in MARIADB_PASSWORDLESS_PLUGINS]
        if unknown or plugins.count(MARIADB_PASSWORD_PLUGIN) != 1:
            die(3, "the login %s authenticates via %s: rotator sets the password of exactly one %s method "
                "and keeps only %s besides" % (account, " OR ".join(p or "no plugin" for p in plugins),
                                               MARIADB_PASSWORD_PLUGIN, " and ".join(MARIADB_PASSWORDLESS_PLUGINS)))
        out[host] = methods
    return flavour, out


def password_clause(flavour, password, authentication):
    if flavour == "mariadb":
        # MariaDB logs IDENTIFIED BY '<clear text>' (and USING PASSWORD('<clear text>')) as it is
        # (general log, binary log, audit): the password method gets its hash instead, the others
        # stay as they are.
        digest = hashlib.sha1(hashlib.sha1(password.encode("utf-8")).digest()).hexdigest().upper()
        methods = []
        for method in authentication:
            if method["plugin"] == MARIADB_PASSWORD_PLUGIN:
                methods.append("%s USING '*%s'" % (MARIADB_PASSWORD_PLUGIN, digest))
            elif method.get("authentication_string"):
                methods.append("%s USING %s" % (method["plugin"], sql_literal(method["authentication_string"])))
            else:
                methods.append(method["plugin"])
        return "IDENTIFIED VIA " + " OR ".join(methods)
    # MySQL rewrites the password out of its logs; ALTER USER keeps the account's plugin, CREATE
    # USER names the partner's (its default plugin may be another).
    return "IDENTIFIED WITH %s BY %s" % (authentication, sql_literal(password))


def read_hosts(work, name):
    """The server's flavour and a user's host entries, as hosts-sql wrote them to work/name."""
    with open(os.path.join(work, name)) as handle:
        lines = [line.strip() for line in handle if line.strip()]
    return lines[0], [bytes.fromhex(line).decode("utf-8") for line in lines[1:]]


def quote_name(name):
    # An identifier in backticks: a backtick doubled, every other character as it is.
    return "`%s`" % name.replace("`", "``")


def grantee(user, host):
    return "%s@%s" % (quote_name(user), quote_name(host))


# Privileges as data (docs/host-contract.md): the privilege tables are read with every name in
# hex, and the statements are built here from names and keywords this file knows; the text of a
# grant (SHOW GRANTS) is never replayed, so no name can add a statement.

# MariaDB 10.4+ keeps an account's global privileges as a bit mask (mysql.global_priv, "access").
MARIADB_GLOBAL = [
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "RELOAD", "SHUTDOWN", "PROCESS", "FILE",
    "GRANT OPTION", "REFERENCES", "INDEX", "ALTER", "SHOW DATABASES", "SUPER", "CREATE TEMPORARY TABLES",
    "LOCK TABLES", "EXECUTE", "REPLICATION SLAVE", "REPLICATION CLIENT", "CREATE VIEW", "SHOW VIEW",
    "CREATE ROUTINE", "ALTER ROUTINE", "CREATE USER", "EVENT", "TRIGGER", "CREATE TABLESPACE",
    "DELETE HISTORY", "SET USER", "FEDERATED ADMIN", "CONNECTION ADMIN", "READ_ONLY ADMIN",
    "REPLICATION SLAVE ADMIN", "REPLICATION MASTER ADMIN", "BINLOG ADMIN", "BINLOG REPLAY",
    "SLAVE MONITOR", "SHOW CREATE ROUTINE",
]

# MySQL 8: the Y/N columns of mysql.user (its dynamic privileges are rows of mysql.global_grants).
MYSQL_GLOBAL = [
    ("Select_priv", "SELECT"), ("Insert_priv", "INSERT"), ("Update_priv", "UPDATE"),
    ("Delete_priv", "DELETE"), ("Create_priv", "CREATE"), ("Drop_priv", "DROP"), ("Reload_priv", "RELOAD"),
    ("Shutdown_priv", "SHUTDOWN"), ("Process_priv", "PROCESS"), ("File_priv", "FILE"),
    ("Grant_priv", "GRANT OPTION"), ("References_priv", "REFERENCES"), ("Index_priv", "INDEX"),
    ("Alter_priv", "ALTER"), ("Show_db_priv", "SHOW DATABASES"), ("Super_priv", "SUPER"),
    ("Create_tmp_table_priv", "CREATE TEMPORARY TABLES"), ("Lock_tables_priv", "LOCK TABLES"),
    ("Execute_priv", "EXECUTE"), ("Repl_slave_priv", "REPLICATION SLAVE"),
    ("Repl_client_priv", "REPLICATION CLIENT"), ("Create_view_priv", "CREATE VIEW"),
    ("Show_view_priv", "SHOW VIEW"), ("Create_routine_priv", "CREATE ROUTINE"),
    ("Alter_routine_priv", "ALTER ROUTINE"), ("Create_user_priv", "CREATE USER"), ("Event_priv", "EVENT"),
    ("Trigger_priv", "TRIGGER"), ("Create_tablespace_priv", "CREATE TABLESPACE"),
    ("Create_role_priv", "CREATE ROLE"), ("Drop_role_priv", "DROP ROLE"),
]

# The Y/N columns of mysql.db (MariaDB adds Delete_history_priv).
DB_COLUMNS = [
    ("Select_priv", "SELECT"), ("Insert_priv", "INSERT"), ("Update_priv", "UPDATE"), ("Delete_priv", "DELETE"),
    ("Create_priv", "CREATE"), ("Drop_priv", "DROP"), ("Grant_priv", "GRANT OPTION"),
    ("References_priv", "REFERENCES"), ("Index_priv", "INDEX"), ("Alter_priv", "ALTER"),
    ("Create_tmp_table_priv", "CREATE TEMPORARY TABLES"), ("Lock_tables_priv", "LOCK TABLES"),
    ("Create_view_priv", "CREATE VIEW"), ("Show_view_priv", "SHOW VIEW"),
    ("Create_routine_priv", "CREATE ROUTINE"), ("Alter_routine_priv", "ALTER ROUTINE"),
    ("Execute_priv", "EXECUTE"), ("Event_priv", "EVENT"), ("Trigger_priv", "TRIGGER"),
]
MARIADB_DB_COLUMNS = DB_COLUMNS + [("Delete_history_priv", "DELETE HISTORY")]

# The members of the SET columns of tables_priv, columns_priv and procs_priv.
TABLE_PRIVILEGES = {
    "Select": "SELECT", "Insert": "INSERT", "Update": "UPDATE", "Delete": "DELETE", "Create": "CREATE",
    "Drop": "DROP", "Grant": "GRANT OPTION", "References": "REFERENCES", "Index": "INDEX", "Alter": "ALTER",
    "Create View": "CREATE VIEW", "Show view": "SHOW VIEW", "Trigger": "TRIGGER",
    "Delete versioning rows": "DELETE HISTORY",
}
COLUMN_PRIVILEGES = {"Select": "SELECT", "Insert": "INSERT", "Update": "UPDATE", "References": "REFERENCES"}
ROUTINE_PRIVILEGES = {"Execute": "EXECUTE", "Alter Routine": "ALTER ROUTINE", "Grant": "GRANT OPTION",
                      "Show Create Routine": "SHOW CREATE ROUTINE"}
ROUTINE_TYPES = ("FUNCTION", "PROCEDURE", "PACKAGE", "PACKAGE BODY")
DYNAMIC_PRIVILEGE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}\Z")

# Administrator's rights (login_privileged): on *.*, or on the mysql schema (its tables are the
# accounts and their privileges).
PRIVILEGED_GLOBAL = {"ALL PRIVILEGES", "SUPER", "CREATE USER", "GRANT OPTION", "FILE", "SHUTDOWN", "INSERT", "UPDATE",
                     "DELETE", "SET USER", "CREATE ROLE", "DROP ROLE", "ROLE_ADMIN", "SYSTEM_USER",
                     "SET_USER_ID", "SET_ANY_DEFINER", "ALLOW_NONEXISTENT_DEFINER"}
PRIVILEGED_SCHEMA = {"INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "GRANT OPTION",
                     "CREATE VIEW", "TRIGGER", "CREATE ROUTINE", "ALTER ROUTINE", "EVENT", "INDEX", "DELETE HISTORY"}


def y_columns(columns):
    # The names of the Y columns, comma separated, in hex: names this file chose, never the table's.
    return "HEX(CONCAT_WS(',', %s))" % ", ".join("IF(%s = 'Y', '%s', NULL)" % (c, n) for c, n in columns)


def latin1_stored(column):
    # The bytes of a name mysql.procs_priv holds. MariaDB and MySQL store its Host, Db, User and
    # Routine_name as though their UTF-8 bytes were latin1 (replace_routine_table: store(...,
    # &my_charset_latin1) into utf8mb3 columns), so `漢` (E6BCA2) is held as `æ¼¢` (C3A6C2BCC2A2):
    # converted back to latin1, the column gives the bytes the GRANT named (every latin1 character
    # is one byte, and the server's latin1 maps all 256).
    return "CAST(CONVERT(%s USING latin1) AS BINARY)" % column


def latin1_exact(column):
    # Whether latin1_stored(column) gives the bytes back: a character that is not latin1's (a row
    # that server did not write so) would come back as '?'.
    return "CAST(CONVERT(CONVERT(%s USING latin1) USING utf8mb3) AS BINARY) = CAST(%s AS BINARY)" % (column, column)


def routine_count(flavour):
    # How many routines a procs_priv row names (p: the row): found as the server finds one for a
    # GRANT, by its schema's name exactly and its own name in the routine table's collation.
    db, name = ("CONVERT(%s USING utf8mb3)" % latin1_stored("p.%s" % c) for c in ("Db", "Routine_name"))
    if flavour == "mariadb":
        return ("(SELECT COUNT(*) FROM mysql.proc r WHERE r.db = %s COLLATE utf8mb3_bin AND r.name = %s "
                "COLLATE utf8mb3_general_ci AND r.type = p.Routine_type)" % (db, name))
    # MySQL 8 keeps routines in its data dictionary (no mysql.proc).
    return ("(SELECT COUNT(*) FROM information_schema.ROUTINES r WHERE CAST(r.ROUTINE_SCHEMA AS BINARY) = "
            "CAST(%s AS BINARY) AND r.ROUTINE_NAME = %s AND r.ROUTINE_TYPE = p.Routine_type)" % (db, name))


def privileges_sql(flavour, accounts, roles=False):
    """SELECTs of the privileges of accounts ((user, host) pairs), one tab-separated line per
    privilege row, each name in hex: no byte of a name can break a line or a field. With roles,
    also those of every role (login_privileged follows the memberships)."""
    def where(user="User", host="Host", stored=None):
        # stored: how the table holds a name (latin1_stored for procs_priv); compared as bytes.
        if stored:
            pairs = " OR ".join("(%s = CAST(%s AS BINARY) AND %s = CAST(%s AS BINARY))"
                                % (stored(user), sql_literal(u), stored(host), sql_literal(h)) for u, h in accounts)
            user, host = stored(user), stored(host)
        else:
            pairs = " OR ".join("(%s = %s AND %s = %s)" % (user, sql_literal(u), host, sql_literal(h))
                                for u, h in accounts)
        pairs = pairs or "FALSE"
        if roles and flavour == "mariadb":
            pairs += " OR (%s, %s) IN (SELECT Role, '' FROM mysql.roles_mapping)" % (user, host)
        elif roles:
            pairs += " OR (%s, %s) IN (SELECT FROM_USER, FROM_HOST FROM mysql.role_edges)" % (user, host)
        return "WHERE " + pairs

    account = "HEX(User), HEX(Host)"
    out = ["SET SESSION sql_mode = '';"]
    if flavour == "mariadb":
        out.append("SELECT 'access', %s, CAST(IFNULL(JSON_VALUE(Priv, '$.access'), 0) AS UNSIGNED), "
                   "HEX(IFNULL(JSON_VALUE(Priv, '$.default_role'), '')) FROM mysql.global_priv %s;"
                   % (account, where()))
        db_columns = MARIADB_DB_COLUMNS
        out.append("SELECT 'role', %s, HEX(Role), '', Admin_option FROM mysql.roles_mapping %s;" % (account, where()))
    else:
        out.append("SELECT 'global', %s, %s, IF(JSON_CONTAINS_PATH(IFNULL(User_attributes, '{}'), 'one', "
                   "'$.Restrictions'), 'Y', 'N') FROM mysql.user %s;" % (account, y_columns(MYSQL_GLOBAL), where()))
        out.append("SELECT 'dynamic', %s, HEX(PRIV), WITH_GRANT_OPTION FROM mysql.global_grants %s;"
                   % ("HEX(USER), HEX(HOST)", where("USER", "HOST")))
        db_columns = DB_COLUMNS
        out.append("SELECT 'role', HEX(TO_USER), HEX(TO_HOST), HEX(FROM_USER), HEX(FROM_HOST), WITH_ADMIN_OPTION "
                   "FROM mysql.role_edges %s;" % where("TO_USER", "TO_HOST"))
        out.append("SELECT 'default', HEX(USER), HEX(HOST), HEX(DEFAULT_ROLE_USER), HEX(DEFAULT_ROLE_HOST) "
                   "FROM mysql.default_roles %s;" % where("USER", "HOST"))
    out.append("SELECT 'db', %s, HEX(Db), %s FROM mysql.db %s;" % (account, y_columns(db_columns), where()))
    out.append("SELECT 'table', %s, HEX(Db), HEX(Table_name), HEX(CONCAT('', Table_priv)) FROM mysql.tables_priv %s;"
               % (account, where()))
    out.append("SELECT 'column', %s, HEX(Db), HEX(Table_name), HEX(Column_name), HEX(CONCAT('', Column_priv)) "
               "FROM mysql.columns_priv %s;" % (account, where()))
    out.append("SELECT 'routine', %s, IF(%s, 'Y', 'N'), %s FROM mysql.procs_priv p %s;" % (
        ", ".join("HEX(%s)" % latin1_stored("p.%s" % c) for c in ("User", "Host", "Db", "Routine_name"))
        + ", HEX(CONCAT('', p.Routine_type)), HEX(CONCAT('', p.Proc_priv))",
        " AND ".join(latin1_exact("p.%s" % c) for c in ("User", "Host", "Db", "Routine_name")),
        routine_count(flavour), where("p.User", "p.Host", latin1_stored)))
    out.append("SELECT 'proxy', %s, HEX(Proxied_user), HEX(Proxied_host), With_grant FROM mysql.proxies_priv %s;"
               % (account, where()))
    return "\n".join(out) + "\n"


FIELDS = {"access": "uhnx", "global": "uhxf", "dynamic": "uhxf", "role": "uhxxf", "default": "uhxx",
          "db": "uhxx", "table": "uhxxx", "column": "uhxxxx", "routine": "uhxxxxfn", "proxy": "uhxxf"}


def read_privileges(path):
    """The lines privileges_sql's SELECTs wrote: (kind, user, host, values...), names decoded."""
    rows = []
    with open(path, "rb") as handle:
        for raw in handle.read().decode("ascii").splitlines():
            if not raw.strip():
                continue
            fields = raw.split("\t")
            kind = fields[0]
            if kind not in FIELDS or len(fields) != len(FIELDS[kind]) + 1:
                die(6, "unexpected line in the privilege tables' answer")
            row = [kind]
            for form, value in zip(FIELDS[kind], fields[1:]):
                if form == "n":
                    if not re.match(r"^[0-9]{1,20}\Z", value):
                        die(6, "unexpected privilege mask")
                    row.append(int(value))
                elif form == "f":
                    if value not in ("Y", "N", "0", "1"):
                        die(6, "unexpected flag")
                    row.append(value in ("Y", "1"))
                else:
                    if not re.match(r"^(?:[0-9A-F]{2})*\Z", value):
                        die(6, "unexpected name encoding")
                    try:
                        row.append(bytes.fromhex(value).decode("utf-8"))
                    except UnicodeDecodeError:
                        die(6, "a name in the %s privileges is not UTF-8 (cut short by its column?)" % kind)
            rows.append(tuple(row))
    return rows


def names_of(text, known, what):
    names = []
    for member in text.split(",") if text else []:
        if member not in known:
            die(6, "unknown %s privilege in the privilege tables" % what)
        names.append(known[member])
    return names


def mask_names(mask, strict=True):
    names = [name for bit, name in enumerate(MARIADB_GLOBAL) if mask & (1 << bit)]
    if mask >> len(MARIADB_GLOBAL):
        # A privilege newer than this file (root's mask has every bit set): never copied.
        if strict:
            die(6, "unknown global privilege in mysql.global_priv")
        names.append("ALL PRIVILEGES")
    return names


def grant(privileges, on, target):
    """GRANT of a list of privilege names (GRANT OPTION among them as WITH GRANT OPTION)."""
    option = "GRANT OPTION" in privileges
    rest = [p for p in privileges if p != "GRANT OPTION"]
    if not rest and not option:
        return []
    return ["GRANT %s ON %s TO %s%s" % (", ".join(rest) or "USAGE", on, target,
                                        " WITH GRANT OPTION" if option else "")]


def role_name(flavour, user, host):
    # MariaDB's roles have no host part; MySQL 8's are accounts.
    return quote_name(user) if flavour == "mariadb" else grantee(user, host)


# mysql.procs_priv's Db and Routine_name columns hold 64 characters: a latin1_stored name of more
# bytes is cut, and what is left could name another routine.
PROCS_PRIV_NAME_CHARACTERS = 64


def routine_names_one(row):
    """A routine grant is copied only when its row names exactly one routine that exists, read back
    exactly (latin1_stored): otherwise the step fails before anything is granted. (The messages name
    no routine: the application chose those names.)"""
    if not row[7]:
        die(6, "a routine grant of the partner cannot be read back from mysql.procs_priv")
    if any(len(n.encode("utf-8")) >= PROCS_PRIV_NAME_CHARACTERS and not n.isascii() for n in row[3:5]):
        die(6, "a routine grant of the partner may be cut short in mysql.procs_priv, so which routine it names is not certain")
    if row[8] != 1:
        die(6, "a routine grant of the partner names %d routines, not one" % row[8])


def grants_of(flavour, rows, target):
    """The statements that give target the privileges of the rows (one account's)."""
    out = []
    roles, default_roles = [], []
    columns = {}
    for row in rows:
        kind = row[0]
        if kind == "access":
            out += grant(mask_names(row[3]), "*.*", target)
            if row[4]:
                default_roles.append(quote_name(row[4]))
        elif kind == "global":
            if row[4]:
                die(6, "the partner has partial revokes, which cannot be copied")
            out += grant(row[3].split(",") if row[3] else [], "*.*", target)
        elif kind == "dynamic":
            if not DYNAMIC_PRIVILEGE.match(row[3]):
                die(6, "unexpected dynamic privilege name")
            out += grant([row[3]] + (["GRANT OPTION"] if row[4] else []), "*.*", target)
        elif kind == "db":
            out += grant(row[4].split(",") if row[4] else [], "%s.*" % quote_name(row[3]), target)
        elif kind == "table":
            on = "%s.%s" % (quote_name(row[3]), quote_name(row[4]))
            out += grant(names_of(row[5], TABLE_PRIVILEGES, "table"), on, target)
        elif kind == "column":
            for name in names_of(row[6], COLUMN_PRIVILEGES, "column"):
                columns.setdefault((row[3], row[4], name), []).append(quote_name(row[5]))
        elif kind == "routine":
            if row[5] not in ROUTINE_TYPES:
                die(6, "unknown routine type in mysql.procs_priv")
            routine_names_one(row)
            on = "%s %s.%s" % (row[5], quote_name(row[3]), quote_name(row[4]))
            out += grant(names_of(row[6], ROUTINE_PRIVILEGES, "routine"), on, target)
        elif kind == "proxy":
            out.append("GRANT PROXY ON %s TO %s%s" % (grantee(row[3], row[4]), target,
                                                       " WITH GRANT OPTION" if row[5] else ""))
        elif kind == "role":
            roles.append("GRANT %s TO %s%s" % (role_name(flavour, row[3], row[4]), target,
                                               " WITH ADMIN OPTION" if row[5] else ""))
        elif kind == "default":
            default_roles.append(grantee(row[3], row[4]))
    for (database, table, privilege), names in sorted(columns.items()):
        out.append("GRANT %s (%s) ON %s.%s TO %s" % (privilege, ", ".join(names), quote_name(database),
                                                    quote_name(table), target))
    out += roles
    if default_roles and flavour == "mariadb":
        out.append("SET DEFAULT ROLE %s FOR %s" % (default_roles[0], target))
    elif default_roles:
        out.append("ALTER USER %s DEFAULT ROLE %s" % (target, ", ".join(default_roles)))
    return out


def prepared(statement):
    """A statement the client passes on without reading it: its text in hex, prepared by the
    server, so neither the client's statement splitting nor its commands see any name."""
    return ("SET @rotator_sql = CONVERT(0x%s USING utf8mb4);\nPREPARE rotator_statement FROM @rotator_sql;\n"
            "EXECUTE rotator_statement;\nDEALLOCATE PREPARE rotator_statement;\n"
            % statement.encode("utf-8").hex().upper())


def copy_grants_sql(work, user, source):
    """SQL that gives user, on each host entry it shares with source, exactly source's grants:
    its own roles, proxy grants and privileges revoked, then source's, read from the privilege
    tables (work/grants, privileges_sql), granted as statements built here."""
    flavour, hosts = read_hosts(work, "hosts")
    _, source_hosts = read_hosts(work, "partner-hosts")
    rows = read_privileges(os.path.join(work, "grants"))
    statements = []
    for host in hosts:
        target = grantee(user, host)
        for row in rows:
            if row[1:3] == (user, host) and row[0] == "role":
                statements.append("REVOKE %s FROM %s" % (role_name(flavour, row[3], row[4]), target))
            elif row[1:3] == (user, host) and row[0] == "proxy":
                statements.append("REVOKE PROXY ON %s FROM %s" % (grantee(row[3], row[4]), target))
        statements.append("REVOKE ALL PRIVILEGES, GRANT OPTION FROM %s" % target)
        if flavour == "mariadb":
            statements.append("SET DEFAULT ROLE NONE FOR %s" % target)
        else:
            statements.append("ALTER USER %s DEFAULT ROLE NONE" % target)
    for host in source_hosts:
        if host in hosts:
            statements += grants_of(flavour, [r for r in rows if r[1:3] == (source, host)], grantee(user, host))
    return "SET SESSION sql_mode = '';\n" + "".join(prepared(s) for s in statements)


def privileged(work, name, hosts_file):
    """What makes the login an administrator (docs/host-contract.md), from the privilege tables
    (work/privileges, privileges_sql with roles): its host entries and every role they reach."""
    flavour, hosts = read_hosts(work, hosts_file)
    rows = read_privileges(os.path.join(work, "privileges"))
    todo = [(name, host) for host in hosts]
    reached = {}
    for account in todo:
        reached.setdefault(account, "")
    while todo:
        account = todo.pop()
        for row in rows:
            if row[0] == "role" and row[1:3] == account:
                role = (row[3], "") if flavour == "mariadb" else (row[3], row[4])
                if role not in reached:
                    reached[role] = " (through the role %s)" % role_name(flavour, *role)
                    todo.append(role)
    mysql_schema = re.compile(r"^mysql\Z", re.IGNORECASE)
    for row in rows:
        if row[1:3] not in reached:
            continue
        via, kind, found = reached[row[1:3]], row[0], []
        if kind == "access":
            found = ["%s ON *.*" % p for p in mask_names(row[3], strict=False) if p in PRIVILEGED_GLOBAL]
        elif kind == "global":
            found = ["%s ON *.*" % p for p in (row[3].split(",") if row[3] else []) if p in PRIVILEGED_GLOBAL]
            found += ["partial revokes"] if row[4] else []
        elif kind == "dynamic" and (row[3] in PRIVILEGED_GLOBAL or row[4]):
            found = ["%s ON *.*" % row[3]]
        elif kind == "db" and like(row[3], "mysql"):
            found = ["%s ON the mysql schema" % p for p in (row[4].split(",") if row[4] else [])
                     if p in PRIVILEGED_SCHEMA]
        elif kind == "table" and mysql_schema.match(row[3]):
            found = ["%s ON a table of the mysql schema" % p
                     for p in names_of(row[5], TABLE_PRIVILEGES, "table") if p in PRIVILEGED_SCHEMA]
        elif kind == "column" and mysql_schema.match(row[3]):
            found = ["%s ON a column of the mysql schema" % p
                     for p in names_of(row[6], COLUMN_PRIVILEGES, "column") if p in PRIVILEGED_SCHEMA]
        elif kind == "proxy":
            found = ["PROXY"]
        if found:
            sys.stdout.write("%s%s\n" % (found[0], via))
            return


def like(pattern, text):
    # mysql.db's Db is a LIKE pattern (% and _, \ escapes), compared here without case.
    regex, escaped = "", False
    for c in pattern:
        if escaped:
            regex += re.escape(c)
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == "%":
            regex += ".*"
        elif c == "_":
            regex += "."
        else:
            regex += re.escape(c)
    return re.match("^(?:%s)\\Z" % regex, text, re.IGNORECASE | re.DOTALL) is not None


def client_options(username, password):
    # The client's option file (--defaults-file).
    return ("[client]\nuser=%s\npassword=%s\n" % (option_value(username), option_value(password))).encode("utf-8")


def hosts_sql(user):
    # First line: the server's flavour; then one line per host entry of the user, in hex.
    sys.stdout.write("SET SESSION sql_mode = '';\n")
    sys.stdout.write("SELECT IF(VERSION() LIKE '%MariaDB%', 'mariadb', 'mysql');\n")
    sys.stdout.write("SELECT HEX(Host) FROM mysql.user WHERE User = %s ORDER BY Host;\n" % sql_literal(user))


def password_sql(verb, hosts_file):
    """ALTER USER: the user's host entries, each with its own methods; CREATE USER: the host entries
    of the partner (AWSCURRENT's login, `owner`), each with the partner's methods."""
    def write(work, name, owner=None):
        password = handed_password()
        flavour, authentication = read_authentication(work, owner or name, hosts_file)
        if not authentication:
            die(3, "no host entries")
        accounts = ", ".join("%s@%s %s" % (sql_literal(name), sql_literal(host), password_clause(flavour, password, how))
                             for host, how in sorted(authentication.items()))
        sys.stdout.write("SET SESSION sql_mode = '';\n%s %s;\n" % (verb, accounts))
    return write


def grants_sql(work, user, partner):
    # The privilege rows of the partner's host entries and of the user's.
    flavour, hosts = read_hosts(work, "hosts")
    accounts = [(partner, h) for h in read_hosts(work, "partner-hosts")[1]] + [(user, h) for h in hosts]
    sys.stdout.write(privileges_sql(flavour, accounts))


def privileges_of_sql(work, name, hosts_file):
    # The privilege rows of a login's host entries and of every role (login_privileged).
    flavour, hosts = read_hosts(work, hosts_file)
    sys.stdout.write(privileges_sql(flavour, [(name, h) for h in hosts], roles=True))


if __name__ == "__main__":
    run(RULES, client_options, {
        "hosts-sql": hosts_sql,
        "alter-sql": password_sql("ALTER USER", "hosts"),
        "create-sql": password_sql("CREATE USER", "partner-hosts"),
        "authentication-sql": authentication_sql,
        "authentication": lambda work, name, hosts_file: read_authentication(work, name, hosts_file),
        "grants-sql": grants_sql,
        "copy-grants-sql": lambda work, user, source: sys.stdout.write(copy_grants_sql(work, user, source)),
        "privileges-sql": privileges_of_sql,
        "privileged": privileged,
    })
