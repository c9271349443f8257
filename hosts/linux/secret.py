"""The secret's JSON as every Linux host script reads it: one copy of the rules, for each engine.

`ops/template.py` joins this file and the engine's own helper (postgres.py, mysql.py) into the
python3 program a document runs as `python3 -I -c "$helper" <command> ...` (docs/host-contract.md).
The secret arrives on standard input; its fields, passwords among them, leave on standard output,
a pipe the shell reads line by line into its own memory. No password is ever written to a file
that has a name: a run the SSM agent kills (SIGKILL, no clean-up) cannot leave one behind. The
shell hands a password back to a helper on file descriptor 3, a pipe (`handed_password`), and a
client gets it in a file no name leads to (`exec_with_credential`).
The validation cases every implementation must agree on are hosts/secret-cases.json.
"""

import json
import os
import re
import secrets
import stat
import sys
import tempfile

SECRET_ARN = r"^arn:aws[a-z-]{0,16}:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}\Z"
# A secret's complete ARN, with the six characters Secrets Manager adds to its name: a name can be
# given again to a new secret once the old one is deleted, that suffix never.
COMPLETE_SECRET_ARN = r"^arn:aws[a-z-]{0,16}:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}-[A-Za-z0-9]{6}\Z"
LOGIN = r"^[A-Za-z0-9_.@+=-]{1,128}\Z"


def die(code, message):
    sys.stderr.write(message + "\n")
    sys.exit(code)


def has_control(text):
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


# The descriptor on which the shell hands a helper a password (a pipe out of its memory), and on
# which a client finds its credential file (/dev/fd/3).
HANDED = 3


def handed_password():
    """The password the shell hands this helper on descriptor 3 (`hand` in flow.sh)."""
    with os.fdopen(HANDED, "rb") as pipe:
        return pipe.read().decode("utf-8")


def anonymous_file(work):
    """A regular file that no name leads to, ever: in memory (memfd, Python 3.8+), else in work
    with O_TMPFILE (or, where the file system lacks it, unlinked before anything is written)."""
    if hasattr(os, "memfd_create"):
        return os.fdopen(os.memfd_create("rotator-credential"), "w+b")
    return tempfile.TemporaryFile(dir=work)


def exec_with_credential(credential_file, work, username, *command):
    """Runs `command` (exec) with descriptor 3 an anonymous file holding `credential_file(username,
    password)`, the password handed on descriptor 3: the client reads /dev/fd/3 (PGPASSFILE,
    --defaults-file), which a SIGKILL at any moment cannot leave behind, as it could a named file."""
    password = handed_password()
    handle = anonymous_file(work)
    handle.write(credential_file(username, password))
    handle.flush()
    # libpq ignores a password file that group or others may read (a memfd starts as 0777).
    os.fchmod(handle.fileno(), 0o600)
    # (The file may itself be descriptor 3, free again once the pipe was read: dup2 is then a no-op.)
    os.dup2(handle.fileno(), HANDED)
    os.set_inheritable(HANDED, True)
    os.execvp(command[0], command)


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


def parse(action, rules):
    """The version the host must hold: checks every field it uses and prints username, port,
    dbname, masterarn, the password, and a probe password (a random one nobody has: verify makes
    sure the server refuses it).

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
    probe = "rotator-probe-" + secrets.token_hex(16)
    write_lines([username, str(port), dbname, masterarn, password, probe])


def write_lines(fields):
    # In UTF-8 whatever the locale (a lone surrogate cannot be written: an error, exit 1).
    sys.stdout.buffer.write("".join(field + "\n" for field in fields).encode("utf-8"))


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


def refuse_unless_only_this_user_writes(what, path, status):
    """The same test as the lock directory's in flow.sh: owned by this user (root), not a symbolic
    link, writable by nobody else."""
    if status.st_uid != os.geteuid() or status.st_mode & (stat.S_IWGRP | stat.S_IWOTH) or stat.S_ISLNK(status.st_mode):
        die(3, "the enrolment file's %s %s is not one that only this user may write: nothing was changed" % (what, path))


def enrolled(path, secret_arn):
    """The login, and the master secret, that this host's owner lets `secret_arn` change on this host
    (the shared layout, where one set of documents serves every enrolled secret and the secret's own
    administrators choose its tags). The enrolment file, written by the host's owner only, holds one
    line per secret: its complete ARN, the login, and with alternating users the master secret's
    complete ARN, separated by single spaces; lines starting with # are comments. Anything else in
    it (a duplicate secret, a tab, a byte outside printable ASCII) refuses every secret: a file that
    can be read two ways authorises nothing. Prints the master ('' for none) and the login."""
    directory = os.path.dirname(path) or "."
    try:
        refuse_unless_only_this_user_writes("directory", directory, os.lstat(directory))
        # O_NOFOLLOW: the file itself may not be a link to one another user chose.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        die(3, "the enrolment file %s cannot be read (%s): this host's owner lists there the secrets that may "
               "change a login on it, and this host lists none" % (path, error.strerror))
    with os.fdopen(descriptor, "rb") as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            die(3, "the enrolment file %s is not a regular file: nothing was changed" % path)
        refuse_unless_only_this_user_writes("file", path, status)
        content = handle.read()
    if any(byte != 10 and not 32 <= byte < 127 for byte in content):
        die(3, "the enrolment file %s holds a byte that is not printable ASCII: nothing was changed" % path)
    entries = {}
    for number, line in enumerate(content.decode("ascii").splitlines(), 1):
        if line == "" or line.startswith("#"):
            continue
        fields = line.split(" ")
        if not (2 <= len(fields) <= 3 and re.match(COMPLETE_SECRET_ARN, fields[0]) and re.match(LOGIN, fields[1])
                and (len(fields) == 2 or re.match(COMPLETE_SECRET_ARN, fields[2]))):
            die(3, "line %d of the enrolment file %s is not '<secret ARN> <login> [<master secret ARN>]' "
                   "(complete ARNs, single spaces): nothing was changed" % (number, path))
        if fields[0] in entries:
            die(3, "the enrolment file %s lists the secret on line %d a second time: nothing was changed" % (path, number))
        entries[fields[0]] = (fields[2] if len(fields) == 3 else "", fields[1])
    if secret_arn not in entries:
        die(3, "this host's enrolment file %s does not list the secret %s: its owner adds the line that lets "
               "it change a login here; nothing was changed" % (path, secret_arn))
    # The master first: an empty last line would not survive the shell's $(...).
    write_lines(entries[secret_arn])


def login_tag():
    """The value of the secret's RotatorLogin tag, from the AWS CLI's answer on stdin (the values of
    the tags with that key, a JSON list): printed when there is exactly one, else an empty line,
    which the flow refuses as no pin at all."""
    values = json.load(sys.stdin)
    print(values[0] if isinstance(values, list) and len(values) == 1 and isinstance(values[0], str) else "")


def run(rules, credential_file, commands):
    """The helper's entry point: argv[1] names the command, the shared ones or the engine's own
    (`commands`, a name -> function of the remaining arguments). `credential_file(username,
    password)` is the engine's client credential file (bytes)."""
    command, arguments = sys.argv[1], sys.argv[2:]
    if command == "parse":
        parse(arguments[0], rules)
    elif command == "parse-master":
        write_lines(read_login("master", rules))
    elif command == "exec-with-credential":
        exec_with_credential(credential_file, *arguments)
    elif command == "parse-username":
        write_lines(read_login("AWSCURRENT", rules)[:1])
    elif command == "enrolled":
        enrolled(*arguments)
    elif command == "login-tag":
        login_tag()
    elif command in commands:
        commands[command](*arguments)
    else:
        die(6, "unknown helper command")
