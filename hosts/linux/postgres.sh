# ---- PostgreSQL: the engine's part of the host contract ---------------------------------
for tool in psql runuser; do
  command -v "$tool" >/dev/null 2>&1 || fail 7 "required tool '$tool' is not installed"
done

# Helpers in python3: JSON, quoting and the SCRAM-SHA-256 verifier. Secrets only in pipes and memory.
read -r -d '' helper <<'PYTHON' || true
#include secret.py postgres.py
PYTHON

psql_major=0
if [[ $(psql --version 2>/dev/null || true) =~ \)\ ([0-9]+) ]]; then psql_major=${BASH_REMATCH[1]}; fi

# psql over TCP as <user> with <password> in a password file no name leads to (/dev/fd/3, see
# hand), and nothing else: no PGPASSWORD, no service file, no client certificate, no GSS; with
# libpq 16+ the server must also ask for a password.
tcp_psql() {
  local user=$1 password=$2 errfile=$3
  shift 3
  hand "$password" python3 -I -c "$helper" exec-with-credential "$work" "$user" \
    env -u PGPASSWORD -u PGSERVICE -u PGSERVICEFILE -u PGHOSTADDR -u PGOPTIONS -u PGSSLROOTCERT \
    PGPASSFILE=/dev/fd/3 PGHOST=127.0.0.1 PGPORT="$port" PGUSER="$user" PGDATABASE="$dbname" \
    PGCONNECT_TIMEOUT=10 PGSSLMODE=prefer PGGSSENCMODE=disable PGAPPNAME=rotator \
    PGSSLCERT="$work/no-client-certificate" PGSSLKEY="$work/no-client-key" \
    PGREQUIREAUTH=password,md5,scram-sha-256 \
    psql -X -A -t -q -w "$@" 2>"$errfile"
}

# Log in as the secret's login. Status: 0 accepted, 1 refused, 2 unreachable, 3 the server does
# not check passwords.
login() {
  local login_password=$1 errfile=$2
  printf 'SELECT 1;\n' | tcp_psql "$username" "$login_password" "$errfile" >/dev/null && return 0
  if grep -q -e 'authentication method requirement' -- "$errfile"; then return 3; fi
  if grep -q -i -e 'connection refused' -e 'could not connect' -e 'timeout expired' -e 'no route to host' \
      -e 'network is unreachable' -e 'server closed the connection unexpectedly' -e 'could not translate host' \
      -e 'the database system is' -- "$errfile"; then
    return 2
  fi
  return 1
}

verify() {
  local status=0
  login "$password" "$work/login.err" || status=$?
  if [ "$status" = 0 ] && [ "$psql_major" -lt 16 ]; then
    # libpq < 16 cannot insist on password authentication: make sure a wrong password fails.
    local probe=0
    login "$probe_password" "$work/probe.err" || probe=$?
    if [ "$probe" = 0 ]; then status=3; fi
  fi
  return "$status"
}

verify_failed() {
  case $1 in
    1) fail 5 "PostgreSQL refused the login '$username' with this password: $(first_line "$work/login.err")" ;;
    2) fail 6 "PostgreSQL is not reachable on 127.0.0.1:$port: $(first_line "$work/login.err")" ;;
    *) fail 6 "PostgreSQL on 127.0.0.1:$port does not check passwords for '$username' (pg_hba.conf), so nothing can be verified" ;;
  esac
}

# As OS user postgres over the local socket; with alternating users, as the master login over
# TCP into the secret's database (whose tables the grants concern).
administrator='OS user postgres'
admin_sql() {
  if [ -n "$masterarn" ]; then
    tcp_psql "$master_username" "$master_password" "$work/admin.err" -v ON_ERROR_STOP=1
  else
    runuser -u postgres -- env PGCONNECT_TIMEOUT="${PGCONNECT_TIMEOUT:-10}" psql -X -A -t -q -v ON_ERROR_STOP=1 2>"$work/admin.err"
  fi
}

# login_exists [name]: the secret's login by default. Status: 0 the login exists, 1 it does not.
login_exists() {
  python3 -I -c "$helper" exists-sql "${1:-$username}" 2>"$work/helper.err" | admin_sql >"$work/exists" \
    || fail 6 "PostgreSQL could not be administered as $administrator: $(first_line "$work/admin.err")"
  [ "$(tr -d '[:space:]' <"$work/exists")" = 1 ]
}

change_password() {
  hand "$password" python3 -I -c "$helper" alter-sql "$username" 2>"$work/helper.err" | admin_sql >/dev/null \
    || fail 6 "the password of '$username' could not be changed: $(first_line "$work/admin.err")"
}

# Alternating users: the login with this version's password, and the grants of <partner>.
create_login() {
  hand "$password" python3 -I -c "$helper" create-sql "$username" 2>"$work/helper.err" | admin_sql >/dev/null \
    || fail 6 "the login '$username' could not be created: $(first_line "$work/admin.err")"
}

# copy_grants <partner>: first, an existing login that holds rights outside this database which the
# partner lacks (the copy resets only this database's and the databases' ACLs) is refused, exit 3,
# before anything changes; then the copy.
copy_grants() {
  python3 -I -c "$helper" extra-rights-sql "$1" "$username" 2>"$work/helper.err" | admin_sql >"$work/extra-rights" \
    || fail 6 "the rights of '$username' outside database '$dbname' could not be read: $(first_line "$work/admin.err")"
  if [ -n "$(tr -d '[:space:]' <"$work/extra-rights")" ]; then
    fail 3 "the login '$username' holds rights outside database '$dbname' that '$1' lacks ($(first_line "$work/extra-rights")), which a copy of the grants would leave: remove them first"
  fi
  python3 -I -c "$helper" copy-grants-sql "$1" "$username" 2>"$work/helper.err" | admin_sql >/dev/null \
    || fail 6 "the grants of '$1' could not be copied to '$username': $(first_line "$work/admin.err")"
}

# login_privileged <name>: status 0 when the login holds an administrator's rights, with what they
# are in $work/privileged; 1 when it does not. SUPERUSER, CREATEROLE, REPLICATION or BYPASSRLS, its
# own or of any role it is a member of (directly or not), or membership in a predefined role that
# reaches the server's files or programs, all data or other sessions (postgres.py).
login_privileged() {
  python3 -I -c "$helper" privileged-sql "$1" 2>"$work/helper.err" | admin_sql >"$work/privileged" \
    || fail 6 "whether '$1' is privileged could not be read as $administrator: $(first_line "$work/admin.err")"
  [ -n "$(tr -d '[:space:]' <"$work/privileged")" ]
}
