# ---- the secret version ------------------------------------------------------------------
# read_secret <what> <region> <secret id> <--version-id|--version-stage> <value> <helper command...>:
# the SecretString goes from the CLI through a pipe into the helper, whose output (the fields, the
# passwords among them) is left in $secret_lines, in this shell's memory: never in a file.
secret_lines=''
read_secret() {
  local what=$1 secret_region=$2 id=$3 selector=$4 selected=$5 aws_status=0 parse_status=0
  shift 5
  rm -f -- "$work/aws.status"
  secret_lines=$({
    aws secretsmanager get-secret-value --region "$secret_region" --secret-id "$id" "$selector" "$selected" \
      --query '[VersionStages, SecretString]' --output json --cli-connect-timeout 10 --cli-read-timeout 30 \
      2>"$work/aws.err" || echo "$?" >"$work/aws.status"
  } | python3 -I -c "$helper" "$@" 2>"$work/parse.err") || parse_status=$?
  if [ -s "$work/aws.status" ]; then aws_status=$(cat "$work/aws.status"); fi
  if [ "$aws_status" != 0 ]; then
    if [ "$what" = fields ]; then what='the secret version'; else what="the $what secret"; fi
    fail 4 "$what cannot be read: $(first_line "$work/aws.err")"
  fi
  if [ "$parse_status" = 8 ]; then fail 8 "$(first_line "$work/parse.err")"; fi
  if [ "$parse_status" != 0 ]; then
    fail 4 "$(first_line "$work/parse.err")"
  fi
}
# One run at a time for this secret on this host, from reading the version to the result line:
# two commands for one secret (two copies of a step, a restore racing a late set) would otherwise
# interleave their reads and changes. The lock lives in a directory only root may write.
lock_dir=${ROTATOR_LOCK_DIR:-/run/rotator}
[ -e "$lock_dir" ] || mkdir -m 700 -- "$lock_dir" 2>/dev/null || true
if [ ! -d "$lock_dir" ] || [ -L "$lock_dir" ] || [ "$(stat -c %u -- "$lock_dir")" != "$(id -u)" ] \
    || [ -n "$(find "$lock_dir" -maxdepth 0 -perm /022)" ]; then
  fail 6 "the lock directory $lock_dir is not a directory that only this user may write"
fi
exec 9>"$lock_dir/$(printf '%s' "$secret_id" | sha256sum | cut -c 1-64).lock"
# 100 s, well inside the document's timeout. The agent's environment may shorten it, for the tests
# only (as ROTATOR_LOCK_DIR): no document parameter reaches it.
lock_wait=${ROTATOR_LOCK_WAIT_SECONDS:-100}
case $lock_wait in
  [1-9] | [1-9][0-9] | 100) ;;
  *) fail 6 "ROTATOR_LOCK_WAIT_SECONDS is not a whole number of seconds from 1 to 100" ;;
esac
flock -w "$lock_wait" 9 || fail 6 "another command for this secret held the host's lock for $lock_wait s"

# The lines reach read through a pipe, never a here-string: bash before 5.1 writes those to a file.
read_secret fields "$region" "$secret_id" --version-id "$version_id" parse "$action"
{ IFS= read -r username && IFS= read -r port && IFS= read -r dbname && IFS= read -r masterarn \
    && IFS= read -r password && IFS= read -r probe_password; } < <(printf '%s\n' "$secret_lines") \
  || fail 4 "the secret JSON could not be read"

# The shared layout pins each secret's login with its RotatorLogin tag, which only the secret's
# administrators may change (its resource policy denies TagResource to everyone else). The host reads
# it itself, so the pin holds whatever the function was told.
fleet_document=no
if [ "$action" = set ] && [ "$pinned_login" = tag:RotatorLogin ]; then
  fleet_document=yes
  pinned_login=$(aws secretsmanager describe-secret --region "$region" --secret-id "$secret_id" \
      --query "Tags[?Key=='RotatorLogin'].Value" --output json --cli-connect-timeout 10 --cli-read-timeout 30 \
      2>"$work/aws.err" | python3 -I -c "$helper" login-tag 2>>"$work/aws.err") \
    || fail 4 "the secret's tags cannot be read: $(first_line "$work/aws.err")"
  [[ $pinned_login =~ ^[A-Za-z0-9_.@+=-]{1,128}$ ]] \
    || fail 3 "the secret carries no RotatorLogin tag naming a login: an administrator pins it when enrolling the secret"
fi
# But whoever can make a secret under the fleet's prefix chooses its tags and its master, and whoever
# may publish the documents their Login: so this host's owner, not the secret's or the documents',
# says which secret may change which login through which master here, in a file only root may write
# (secret.py, enrolled). A fleet host needs it; wherever it exists it decides, whatever the Login
# parameter says (a document version whose Login is empty does not switch it off). The path's
# override is for the tests, as ROTATOR_LOCK_DIR's: the agent's environment is the host's, and a
# document parameter reaches this script only as an SSM_ variable.
enrolled_file=${ROTATOR_ENROLLED_FILE:-/etc/rotator/enrolled}
if [ "$action" = set ] && { [ "$fleet_document" = yes ] || [ -e "$enrolled_file" ] || [ -L "$enrolled_file" ]; }; then
  enrolment=$(python3 -I -c "$helper" enrolled "$enrolled_file" "$secret_id" 2>"$work/enrolled.err") \
    || fail 3 "$(first_line "$work/enrolled.err")"
  { IFS= read -r enrolled_master && IFS= read -r enrolled_login; } < <(printf '%s\n' "$enrolment") \
    || fail 6 "the enrolment entry could not be read"
  [ -z "$pinned_login" ] || [ "$pinned_login" = "$enrolled_login" ] \
    || fail 3 "the stack pins '$pinned_login' (its document's Login or the secret's RotatorLogin tag), but this host lets the secret change only '$enrolled_login'"
  pinned_login=$enrolled_login
  [ "$masterarn" = "$enrolled_master" ] \
    || fail 3 "the version names the master secret '$masterarn', but this host lets the secret use only '$enrolled_master' ('' for none)"
fi
# The login the stack pins (the document's Login parameter, the secret's tag, the host's enrolment
# file above): a version naming another changes nothing. (Empty only where one set of documents serves
# many logins without tags or enrolment file: the local single-stack documents.)
if [ "$action" = set ] && [ -n "$pinned_login" ] && [ "$username" != "$pinned_login" ] \
    && [ "$username" != "${pinned_login}_clone" ]; then
  fail 3 "the version names the login '$username', but this stack rotates only '$pinned_login' (and '${pinned_login}_clone')"
fi

# ---- set or verify, with the engine's verify / verify_failed / login_exists / change_password ----
# (and, for alternating users, administrator / create_login / copy_grants)

# refuse_privileged <login>: stop before anything changes when the login holds an administrator's
# rights (the engine's login_privileged says which, in $work/privileged): whoever can write the
# secret must not be able to make this host change, or clone, an administrator (docs/THREAT-MODEL.md).
refuse_privileged() {
  if login_privileged "$1"; then
    fail 3 "the login '$1' is privileged ($(first_line "$work/privileged")): rotator refuses to change or clone an administrator"
  fi
}

outcome=''
status=0
verify || status=$?
if [ "$action" = verify ]; then
  [ "$status" = 0 ] || verify_failed "$status"
  outcome=verified
elif [ -n "$masterarn" ]; then
  # Alternating users (docs/host-contract.md): as the administrator of the master secret, create
  # this version's login if it is missing, give it the grants of the login AWSCURRENT names (the
  # one applications hold, never changed here), then set its password.
  [ "$status" = 0 ] || [ "$status" = 1 ] || verify_failed "$status"
  read_secret master "$(printf '%s\n' "$masterarn" | cut -d : -f 4)" "$masterarn" --version-stage AWSCURRENT parse-master
  { IFS= read -r master_username && IFS= read -r master_password; } < <(printf '%s\n' "$secret_lines") \
    || fail 4 "the master secret JSON could not be read"
  administrator="the master login '$master_username'"
  read_secret current "$region" "$secret_id" --version-stage AWSCURRENT parse-username
  IFS= read -r partner < <(printf '%s\n' "$secret_lines") || fail 4 "the AWSCURRENT secret JSON could not be read"
  # The two logins of a secret are a name and that name with _clone: a version naming any other
  # login (the master's, an administrator's) is refused, as AWS's multi-user templates do.
  if [ "$username" != "$partner" ] && [ "$username" != "${partner}_clone" ] && [ "${username}_clone" != "$partner" ]; then
    fail 3 "the login '$username' is neither '$partner' (AWSCURRENT) nor its alternate; a version may name only those"
  fi
  outcome=unchanged
  if [ "$partner" != "$username" ]; then
    login_exists "$partner" || fail 3 "the login '$partner' (AWSCURRENT) does not exist, so there are no grants to copy"
    refuse_privileged "$partner"
    if login_exists; then
      refuse_privileged "$username"
    else
      create_login
      outcome=changed
    fi
    copy_grants "$partner"
  fi
  status=0
  verify || status=$?
  if [ "$status" = 1 ]; then
    login_exists || fail 3 "the login '$username' does not exist"
    refuse_privileged "$username"
    change_password
    status=0
    verify || status=$?
    outcome=changed
  fi
  [ "$status" = 0 ] || verify_failed "$status"
elif [ "$status" = 0 ]; then
  outcome=unchanged
else
  [ "$status" = 1 ] || verify_failed "$status"
  login_exists || fail 3 "the login '$username' does not exist"
  refuse_privileged "$username"
  change_password
  status=0
  verify || status=$?
  [ "$status" = 0 ] || verify_failed "$status"
  outcome=changed
fi
printf 'ROTATOR-RESULT action=%s version=%s outcome=%s\n' "$action" "$version_id" "$outcome"
exit 0
