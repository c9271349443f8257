#!/bin/bash
# Stands in for python3 (put on PATH as python3 by the tests of a failing step): the host helper's
# command named by $STAND_IN_FAIL (`python3 -I -c "$helper" <command> ...`, e.g. alter-sql) fails
# with exit 1 and a line on stderr, as a helper or the SQL it feeds to the client can; any other
# call is the real python3's, $STAND_IN_REAL_PYTHON3.
args=("$@")
for ((i = 0; i + 2 < ${#args[@]}; i++)); do
  if [ "${args[i]}" = -c ]; then
    if [ "${args[i + 2]}" = "$STAND_IN_FAIL" ]; then
      echo "stand-in: the helper's $STAND_IN_FAIL failed" >&2
      exit 1
    fi
    break
  fi
done
exec "$STAND_IN_REAL_PYTHON3" "$@"
