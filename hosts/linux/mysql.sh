# ---- MySQL / MariaDB: the engine's part of the host contract ------------------------------
client=$(command -v mysql || command -v mariadb || true)
[ -n "$client" ] || fail 7 "required tool 'mysql' is not installed"

# Helpers in python3: JSON and SQL/option-file quoting. Secrets only in pipes and memory.
read -r -d '' helper <<'PYTHON' || true
#include secret.py mysql.py
PYTHON

# Log in over TCP as the secret's login with <password> in a client option file no name leads to
# (/dev/fd/3, see hand) and nothing else (--defaults-file: no other option file is read, so a
# [client] password in ~/.my.cnf cannot stand in for this one).
# Status: 0 accepted, 1 refused, 2 unreachable.
login() {
  local login_password=$1 errfile=$2 database=()
  if [ -n "$dbname" ]; then database=("--database=$dbname"); fi
  hand "$login_password" python3 -I -c "$helper" exec-with-credential "$work" "$username" \
    env -u MYSQL_PWD -u MYSQL_HOST -u MYSQL_TCP_PORT -u MYSQL_UNIX_PORT \
    "$client" --defaults-file=/dev/fd/3 --protocol=tcp --host=127.0.0.1 --port="$port" \
    --connect-timeout=10 --batch --skip-column-names ${database[@]+"${database[@]}"} -e 'SELECT 1' \
    </dev/null >/dev/null 2>"$errfile" && return 0
  if grep -q -E -e '^ERROR (2002|2003|2005|2006|2013|2026)' -- "$errfile"; then return 2; fi
  return 1
}

# Status: 0 accepted, 1 refused, 2 unreachable, 3 accepted but so is a wrong password (the server
# does not check passwords: --skip-grant-tables, an authentication plugin that accepts anything).
verify() {
  login "$password" "$work/login.err" || return
  if login "$probe_password" "$work/probe.err"; then return 3; fi
  return 0
}

verify_failed() {
  case $1 in
    1) fail 5 "MySQL refused the login '$username' with this password: $(first_line "$work/login.err")" ;;
    2) fail 6 "MySQL is not reachable on 127.0.0.1:$port: $(first_line "$work/login.err")" ;;
    3) fail 6 "MySQL on 127.0.0.1:$port does not check passwords for '$username' (a wrong password is accepted too), so nothing can be verified" ;;
    *) fail 6 "MySQL could not be asked to verify the login '$username'" ;;
  esac
}

# As OS root over the local socket (MYSQL_UNIX_PORT or the client's default), SQL on stdin.
# MYSQL_UNIX_PORT wins over a socket named in the option files (Debian's names one).
# With alternating users, as the master login over TCP (its option file, nothing else).
administrator='root over the local socket'
admin_sql() {
  if [ -n "$masterarn" ]; then
    hand "$master_password" python3 -I -c "$helper" exec-with-credential "$work" "$master_username" \
      env -u MYSQL_PWD -u MYSQL_HOST -u MYSQL_TCP_PORT -u MYSQL_UNIX_PORT \
      "$client" --defaults-file=/dev/fd/3 --protocol=tcp --host=127.0.0.1 --port="$port" --batch \
      --skip-column-names --default-character-set=utf8mb4 --connect-timeout=10 2>"$work/admin.err"
    return
  fi
  local socket=()
  if [ -n "${MYSQL_UNIX_PORT:-}" ]; then socket=("--socket=$MYSQL_UNIX_PORT"); fi
  "$client" --protocol=socket ${socket[@]+"${socket[@]}"} --user=root --batch --skip-column-names \
    --default-character-set=utf8mb4 --connect-timeout=10 2>"$work/admin.err"
}

# The server's own error code only: its message may quote the statement.
admin_error() {
  local code
  code=$(grep -o -m 1 -E '^ERROR [0-9]+( \([0-9A-Z]+\))?' -- "$work/admin.err" || true)
  if [ -n "$code" ]; then printf '%s' "$code"; else first_line "$work/admin.err"; fi
}

# login_exists [name]: the secret's login (host entries in $work/hosts) by default, else the
# partner ($work/partner-hosts). Status: 0 the login exists, 1 it does not.
# Of a login that exists it also reads how each host entry authenticates ($work/<file>-auth), and
# refuses (exit 3, before anything changes) one whose password cannot be set on a password method
# alone, every other method kept (the helper's read_authentication).
login_exists() {
  local name=${1:-$username} file=hosts
  if [ "$name" != "$username" ]; then file='partner-hosts'; fi
  python3 -I -c "$helper" hosts-sql "$name" 2>"$work/helper.err" | admin_sql >"$work/$file" \
    || fail 6 "MySQL could not be administered as $administrator: $(admin_error)"
  [ "$(grep -c -E '^[0-9A-F]+$' -- "$work/$file" || true)" -gt 0 ] || return 1
  python3 -I -c "$helper" authentication-sql "$work" "$name" "$file" 2>"$work/helper.err" | admin_sql >"$work/$file-auth" \
    || fail 6 "the authentication of '$name' could not be read as $administrator: $(admin_error)"
  local status=0
  python3 -I -c "$helper" authentication "$work" "$name" "$file" 2>"$work/helper.err" || status=$?
  if [ "$status" = 3 ]; then fail 3 "$(first_line "$work/helper.err")"; fi
  [ "$status" = 0 ] || fail 6 "the authentication of '$name' could not be told: $(first_line "$work/helper.err")"
}

change_password() {
  hand "$password" python3 -I -c "$helper" alter-sql "$work" "$username" 2>"$work/helper.err" | admin_sql >/dev/null \
    || fail 6 "the password of '$username' could not be changed: $(admin_error)$(first_line "$work/helper.err")"
}

# Alternating users: the login on the partner's host entries, each authenticating as the partner's
# does (its methods, or its MySQL plugin) with this version's password on the password method;
# then (copy_grants) exactly the partner's grants on each host entry both have.
create_login() {
  hand "$password" python3 -I -c "$helper" create-sql "$work" "$username" "$partner" 2>"$work/helper.err" | admin_sql >/dev/null \
    || fail 6 "the login '$username' could not be created: $(admin_error)$(first_line "$work/helper.err")"
}

# The partner's privileges are read as data from the privilege tables (every name in hex) and the
# statements that copy them are built by the helper: no text of a grant is replayed.
copy_grants() {
  login_exists || fail 3 "the login '$username' does not exist"
  python3 -I -c "$helper" grants-sql "$work" "$username" "$1" 2>"$work/helper.err" | admin_sql >"$work/grants" \
    || fail 6 "the grants of '$1' could not be read: $(admin_error)"
  python3 -I -c "$helper" copy-grants-sql "$work" "$username" "$1" 2>"$work/helper.err" | admin_sql >/dev/null \
    || fail 6 "the grants of '$1' could not be copied to '$username': $(admin_error)$(first_line "$work/helper.err")"
}

# login_privileged <name>: status 0 when the login holds an administrator's rights, with what they
# are in $work/privileged; 1 when it does not. On any of its host entries, directly or through a
# role: SUPER, CREATE USER, GRANT OPTION, FILE, SHUTDOWN, INSERT/UPDATE/DELETE (...) on *.*, a
# right to change the mysql schema, a proxy grant (the helper's PRIVILEGED_* lists).
# The login's host entries are those login_exists last read for it.
login_privileged() {
  local name=$1 file=hosts
  if [ "$name" != "$username" ]; then file='partner-hosts'; fi
  rm -f -- "$work/privileges" "$work/privileged"
  python3 -I -c "$helper" privileges-sql "$work" "$name" "$file" 2>"$work/helper.err" | admin_sql >"$work/privileges" \
    || fail 6 "the privileges of '$name' could not be read as $administrator: $(admin_error)"
  python3 -I -c "$helper" privileged "$work" "$name" "$file" >"$work/privileged" 2>"$work/helper.err" \
    || fail 6 "the privileges of '$name' could not be told: $(first_line "$work/helper.err")"
  [ -s "$work/privileged" ]
}
