#!/bin/bash
# Stands in for psql 16 (test_linux_scripts.py, put on PATH as psql): libpq 16 refuses a server that
# asks for no password when PGREQUIREAUTH lists only password methods, as the script's logins over TCP
# do, with libpq 16's own message. Any other call (the administrator's, without PGREQUIREAUTH) is the
# real psql's, $STAND_IN_REAL_PSQL; each refused login is written to $STAND_IN_CALLS.
if [ "${1-}" = --version ]; then echo 'psql (PostgreSQL) 16.4'; exit 0; fi
if [ -n "${PGREQUIREAUTH+set}" ]; then
  echo "tcp $PGUSER" >>"$STAND_IN_CALLS"
  echo "psql: error: connection to server at \"$PGHOST\", port $PGPORT failed:" \
    "authentication method requirement \"$PGREQUIREAUTH\" failed: server did not complete authentication" >&2
  exit 2
fi
exec "$STAND_IN_REAL_PSQL" "$@"
