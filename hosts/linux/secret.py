"""The secret's JSON as every Linux host script reads it: one copy of the rules, for each engine.

`ops/template.py` joins this file and the engine's own helper (postgres.py, mysql.py) into the
python3 program a document runs as `python3 -I -c "$helper" <command> ...` (docs/host-contract.md).
The secret arrives on standard input; passwords leave only in private files of the run's working
directory, never on standard output, which carries the plain fields the shell reads line by line.
The validation cases every implementation must agree on are hosts/secret-cases.json.
"""

import json
import os
import re
import sys

SECRET_ARN = r"^arn:aws[a-z-]{0,16}:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}\Z"


def die(code, message):
    sys.stderr.write(message + "\n")
    sys.exit(code)


def has_control(text):
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def write_private(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


class Rules:
    """What an engine's host script accepts in a secret: its defaults and its limits, and whether
    names are measured in UTF-8 bytes (PostgreSQL's NAMEDATALEN) or in characters (MySQL)."""

    def __init__(self, port, dbname, username_limit, dbname_limit, unit):
        self.port = port
        self.dbname = dbname
        self.username_limit = username_limit
        self.dbname_limit = dbname_limit
        self.unit = unit

    def length(self, text):
        return len(text.encode("utf-8")) if self.unit == "bytes" else len(text)


def read_object(what):
    """The JSON object on standard input; `what` names the secret in errors ("" for the version)."""
    label = "the %s secret value" % what if what else "the secret value"
    try:
        secret = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    except ValueError:
        die(4, "%s is not valid JSON" % label)
    if not isinstance(secret, dict):
        die(4, "%s is not a JSON object" % label)
    return secret


def parse(work, rules, write_login):
    """The version the host must hold: checks every field it uses, has `write_login(work, username,
    password)` write the engine's credential files, and prints username, port, dbname, masterarn."""
    secret = read_object("")

    def text(name, default=None, limit=None):
        value = secret.get(name)
        if value in (None, "") and default is not None:
            return default
        if value is None:
            die(4, "the secret JSON lacks the field '%s'" % name)
        if not isinstance(value, str) or value == "":
            die(4, "the secret field '%s' is not a non-empty string" % name)
        if has_control(value):
            die(4, "the secret field '%s' contains control characters" % name)
        if limit is not None and rules.length(value) > limit:
            die(4, "the secret field '%s' is longer than %d %s" % (name, limit, rules.unit))
        return value

    username = text("username", limit=rules.username_limit)
    password = text("password")
    dbname = text("dbname", default=rules.dbname, limit=rules.dbname_limit)
    port = secret.get("port")
    if port in (None, ""):
        port = rules.port
    if isinstance(port, str) and re.match(r"^[0-9]{1,5}\Z", port):
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        die(4, "the secret field 'port' is not a TCP port number")
    masterarn = master_arn(secret)
    write_private(os.path.join(work, "password"), password.encode("utf-8"))
    write_login(work, username, password)
    sys.stdout.write("%s\n%d\n%s\n%s\n" % (username, port, dbname, masterarn))


def master_arn(secret):
    value = secret.get("masterarn")
    if value is None:
        return ""
    if not isinstance(value, str) or not re.match(SECRET_ARN, value):
        die(4, "the secret field 'masterarn' is not the ARN of a secret")
    return value


def read_login(what, rules):
    """The username and password of another secret (the master's, AWSCURRENT's)."""
    secret = read_object(what)
    fields = []
    for name in ("username", "password"):
        value = secret.get(name)
        if not isinstance(value, str) or value == "" or has_control(value) or rules.length(value) > 1024:
            die(4, "the %s secret field '%s' is missing, not a string or holds control characters" % (what, name))
        fields.append(value)
    if rules.length(fields[0]) > rules.username_limit:
        die(4, "the %s secret field 'username' is longer than %d %s" % (what, rules.username_limit, rules.unit))
    return fields


def run(rules, write_login, write_master, commands):
    """The helper's entry point: argv[1] names the command, the shared ones or the engine's own
    (`commands`, a name -> function of the remaining arguments)."""
    command, arguments = sys.argv[1], sys.argv[2:]
    if command == "parse":
        parse(arguments[0], rules, write_login)
    elif command == "parse-master":
        username, password = read_login("master", rules)
        write_master(arguments[0], username, password)
        sys.stdout.write(username + "\n")
    elif command == "parse-username":
        sys.stdout.write(read_login("AWSCURRENT", rules)[0] + "\n")
    elif command in commands:
        commands[command](*arguments)
    else:
        die(6, "unknown helper command")
