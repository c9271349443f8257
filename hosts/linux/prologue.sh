# shellcheck shell=bash
# The start every Linux rotation document shares (hosts/linux/prologue.sh, joined by ops/template.py):
# strict bash, parameters checked, a private working directory. The contract is
# docs/host-contract.md; the engine's own part and then the shared flow follow.
# The SSM agent starts it with sh; it re-executes itself under bash.
[ -n "${BASH_VERSION:-}" ] || { command -v bash >/dev/null 2>&1 || { echo 'rotator: bash is not installed' >&2; exit 7; }; exec bash "$0" "$@"; }
set +o posix
set -Eeuo pipefail
umask 077
export LC_ALL=C
cd /

work=''
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() { if [ -n "$work" ]; then rm -rf -- "$work"; fi; }
trap cleanup EXIT
trap 'echo "rotator: interrupted" >&2; exit 6' HUP INT TERM
# shellcheck disable=SC2317 # called by the ERR trap
on_error() {
  local status=$1 line=$2
  if [ "$BASHPID" = "$$" ]; then
    printf 'rotator: internal error (status %s at line %s)\n' "$status" "$line" >&2
  fi
  exit 6
}
trap 'on_error "$?" "$LINENO"' ERR

fail() {
  local code=$1
  shift
  printf 'rotator: %s\n' "$*" | LC_ALL=C tr -d '\000-\011\013-\037\177' >&2
  exit "$code"
}

# First meaningful line of a tool's error output, made printable and short.
first_line() {
  if [ -s "$1" ]; then
    grep -v -e '^[[:space:]]*$' -e '^DETAIL:' -e '^HINT:' -e '^LINE [0-9]' -- "$1" | head -n 1 | LC_ALL=C tr -d '\000-\037\177' | cut -c 1-300 || true
  fi
}

# ---- parameters (exported by the agent as SSM_<Name>) ----------------------------------
action=${SSM_Action:-}
secret_id=${SSM_SecretId:-}
version_id=${SSM_VersionId:-}
pinned_login=${SSM_Login:-}
re_action='^(set|verify)$'
re_secret_id='^arn:aws[a-z-]{0,16}:secretsmanager:[a-z0-9-]{1,32}:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}$'
re_version_id='^[A-Za-z0-9-]{32,64}$'
[[ $action =~ $re_action ]] || fail 2 "parameter Action is missing or does not match $re_action"
[[ $secret_id =~ $re_secret_id ]] || fail 2 "parameter SecretId is missing or does not match $re_secret_id"
[[ $version_id =~ $re_version_id ]] || fail 2 "parameter VersionId is missing or does not match $re_version_id"
# A login name, or tag:RotatorLogin in the shared (fleet) layout, whose documents serve many secrets:
# there the secret's own tag names the login (flow.sh reads it).
re_login='^([A-Za-z0-9_.@+=-]{0,128}|tag:RotatorLogin)$'
[[ $pinned_login =~ $re_login ]] || fail 2 "parameter Login does not match $re_login"
region=$(printf '%s\n' "$secret_id" | cut -d : -f 4)

# ---- tools every engine needs -------------------------------------------------------------
for tool in aws python3 flock sha256sum; do
  command -v "$tool" >/dev/null 2>&1 || fail 7 "required tool '$tool' is not installed"
done

# ---- private working directory: TMPDIR if the host sets one, else RAM-backed when possible ----
# It holds the tools' error output and the privilege tables' answers, never a password: passwords
# live in this shell's memory and the helpers' and clients' (see hand), so a run the agent kills
# with SIGKILL (timeout, CancelCommand) leaves none behind, on disk or in /dev/shm.
base=${TMPDIR:-}
if [ -z "$base" ]; then
  base=/tmp
  if [ -d /dev/shm ] && [ -w /dev/shm ]; then base=/dev/shm; fi
fi
# A killed run could not remove its directory: swept once stale, so they do not pile up.
find "$base" -maxdepth 1 -type d -name 'rotator.??????????' -uid 0 -mmin +10 -exec rm -rf -- {} + 2>/dev/null || true
work=$(mktemp -d "$base/rotator.XXXXXXXXXX")

# hand <password> <command...>: runs the command with the password on its descriptor 3, a pipe
# out of this shell's memory (printf is a builtin: no command line, no file, no environment).
# The helper reads it there (handed_password), or turns it into the client's credential file,
# which no name leads to (exec-with-credential: the client reads /dev/fd/3).
hand() {
  local password=$1
  shift
  "$@" 3< <(printf '%s' "$password")
}
