"""MySQL's and MariaDB's part of the host helper: client option files, and the SQL for users,
their host entries and their grants. Joined after secret.py by ops/template.py (the import below
is for linters and tests)."""

import hashlib
import os
import re
import sys

from secret import Rules, die, run, write_private

# Oracle MySQL's user names are 32 characters, MariaDB's 80; the helper allows what either stores.
RULES = Rules(port=3306, dbname="", username_limit=128, dbname_limit=64, unit="characters")


def option_value(text):
    # A double-quoted value of a MySQL option file (escapes as mysys reads them).
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def sql_literal(text):
    # A string literal for sql_mode '' (the helper SQL sets it): backslash escapes active.
    escapes = {"\\": "\\\\", "'": "\\'", "\0": "\\0", "\n": "\\n", "\r": "\\r", "\x1a": "\\Z"}
    return "'" + "".join(escapes.get(c, c) for c in text) + "'"


def password_clause(flavour, password):
    if flavour == "mariadb":
        # MariaDB logs IDENTIFIED BY '<clear text>' as it is (general log, binary log, audit)
        # and makes the account mysql_native_password anyway: give it that hash instead.
        digest = hashlib.sha1(hashlib.sha1(password.encode("utf-8")).digest()).hexdigest().upper()
        return "IDENTIFIED BY PASSWORD '*%s'" % digest
    # MySQL keeps the account's plugin and rewrites the password out of its logs.
    return "IDENTIFIED BY %s" % sql_literal(password)


def read_hosts(work, name):
    """The server's flavour and a user's host entries, as hosts-sql wrote them to work/name."""
    with open(os.path.join(work, name)) as handle:
        lines = [line.strip() for line in handle if line.strip()]
    return lines[0], [bytes.fromhex(line).decode("utf-8") for line in lines[1:]]


def grantee(user, host):
    return "`%s`@`%s`" % (user.replace("`", "``"), host.replace("`", "``"))


# What SHOW GRANTS adds that a GRANT to another account must not carry: the account's
# authentication (MariaDB shows it on the USAGE line).
AUTHENTICATION = re.compile(r" IDENTIFIED (BY PASSWORD '[^']*'|VIA .*?)(?= REQUIRE | WITH |$)")


def copy_grants_sql(work, user, source):
    """SQL that gives user, on each host entry it shares with source, exactly source's grants:
    its roles and privileges revoked, then source's grant lines (SHOW GRANTS, work/grants)
    replayed with the grantee replaced."""
    flavour, hosts = read_hosts(work, "hosts")
    _, source_hosts = read_hosts(work, "partner-hosts")
    with open(os.path.join(work, "grants"), encoding="utf-8") as handle:
        grants = [line.rstrip("\n") for line in handle if line.strip()]
    out = ["SET SESSION sql_mode = '';"]
    for host in hosts:
        target = grantee(user, host)
        for line in grants:
            if line.startswith("GRANT `") and " TO %s" % target in line:
                out.append("REVOKE %s FROM %s;" % (line[len("GRANT "):line.index(" TO %s" % target)], target))
        out.append("REVOKE ALL PRIVILEGES, GRANT OPTION FROM %s;" % target)
        if flavour == "mariadb":
            out.append("SET DEFAULT ROLE NONE FOR %s;" % target)
    for host in source_hosts:
        if host not in hosts:
            continue
        account = re.compile(r" (TO|FOR|FROM) " + re.escape(grantee(source, host)) + r"(?= |$)")
        for line in grants:
            if account.search(line):
                statement = account.sub(lambda m, host=host: " %s %s" % (m.group(1), grantee(user, host)), line)
                out.append(AUTHENTICATION.sub("", statement) + ";")
    return "\n".join(out) + "\n"


def client_options(username, password):
    return ("[client]\nuser=%s\npassword=%s\n" % (option_value(username), option_value(password))).encode("utf-8")


def write_login(work, username, password):
    write_private(os.path.join(work, "client.cnf"), client_options(username, password))


def write_master(work, username, password):
    write_private(os.path.join(work, "master.cnf"), client_options(username, password))


def hosts_sql(user):
    # First line: the server's flavour; then one line per host entry of the user, in hex.
    sys.stdout.write("SET SESSION sql_mode = '';\n")
    sys.stdout.write("SELECT IF(VERSION() LIKE '%MariaDB%', 'mariadb', 'mysql');\n")
    sys.stdout.write("SELECT HEX(Host) FROM mysql.user WHERE User = %s ORDER BY Host;\n" % sql_literal(user))


def password_sql(verb, hosts_file):
    # ALTER USER: the user's host entries; CREATE USER: those of the partner (AWSCURRENT's login).
    def write(work, name):
        with open(os.path.join(work, "password"), "rb") as handle:
            password = handle.read().decode("utf-8")
        user = sql_literal(name)
        flavour, hosts = read_hosts(work, hosts_file)
        if not hosts:
            die(3, "no host entries")
        clause = password_clause(flavour, password)
        accounts = ", ".join("%s@%s %s" % (user, sql_literal(h), clause) for h in hosts)
        sys.stdout.write("SET SESSION sql_mode = '';\n%s %s;\n" % (verb, accounts))
    return write


def grants_sql(work, user, partner):
    # SHOW GRANTS of the partner's host entries, then of the user's.
    accounts = [grantee(partner, h) for h in read_hosts(work, "partner-hosts")[1]]
    accounts += [grantee(user, h) for h in read_hosts(work, "hosts")[1]]
    sys.stdout.write("".join("SHOW GRANTS FOR %s;\n" % a for a in accounts))


if __name__ == "__main__":
    run(RULES, write_login, write_master, {
        "hosts-sql": hosts_sql,
        "alter-sql": password_sql("ALTER USER", "hosts"),
        "create-sql": password_sql("CREATE USER", "partner-hosts"),
        "grants-sql": grants_sql,
        "copy-grants-sql": lambda work, user, source: sys.stdout.write(copy_grants_sql(work, user, source)),
    })
