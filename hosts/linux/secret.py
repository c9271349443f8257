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


def refuse_duplicates(pairs):
    """A JSON object's members, refused when a name repeats: the function's parser and this one would
    otherwise each keep a different `username` or `password` (docs/THREAT-MODEL.md)."""
    names = [name for name, _ in pairs]
    if len(set(names)) != len(names):
        raise DuplicateMember(sorted({name for name in names if names.count(name) > 1})[0])
    return dict(pairs)


class DuplicateMember(ValueError):
    """A JSON object names a member twice."""


def read_version(what):
    """The version on standard input as the AWS CLI prints `[VersionStages, SecretString]`: its
    stages and its JSON object (`what` names the secret in errors: "" for the version itself)."""
    label = "the %s secret value" % what if what else "the secret value"
    try:
        stages, text = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    except ValueError:
        die(4, "%s could not be read from the AWS CLI's answer" % label)
    if not isinstance(stages, list) or not isinstance(text, str):
        die(4, "%s could not be read from the AWS CLI's answer" % label)
    try:
        secret = json.loads(text, object_pairs_hook=refuse_duplicates)
    except DuplicateMember as error:
        die(4, '%s names the member "%s" more than once' % (label, error))
    except ValueError:
        die(4, "%s is not valid JSON" % label)
    if not isinstance(secret, dict):
        die(4, "%s is not a JSON object" % label)
    return stages, secret


def parse(work, action, rules, write_login):
    """The version the host must hold: checks every field it uses, has `write_login(work, username,
    password)` write the engine's credential files, and prints username, port, dbname, masterarn.

    A version to `set` must still be AWSPENDING or AWSCURRENT. flow.sh reads it under the host's
    lock for the secret, so a set that arrives after a rollback removed AWSPENDING (a copy of the
    step that outlived its invocation, a resent command) changes nothing: no host is left on a
    password no label holds."""
    stages, secret = read_version("")
    if action == "set" and "AWSPENDING" not in stages and "AWSCURRENT" not in stages:
        die(8, "the version is neither AWSPENDING nor AWSCURRENT any more (the rotation was finished or "
               "rolled back without this command), so nothing was changed")

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
    secret = read_version(what)[1]
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
        parse(arguments[0], arguments[1], rules, write_login)
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
