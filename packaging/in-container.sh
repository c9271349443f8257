#!/usr/bin/env bash
# The container route: make targets of this checkout run inside the pinned Debian 12 Swift image
# (packaging/build-image), the image CI's jobs use, from any host with Docker or Podman: macOS
# (Intel or Apple silicon), Windows (in WSL 2), any Linux. Nothing but the engine is needed here.
#
#   packaging/in-container.sh package                      dist/rotator.zip for an x86_64 function
#   packaging/in-container.sh deploy                       make deploy (guided the first time)
#   packaging/in-container.sh doctor SECRET_ID=...         the operator commands, likewise
#   packaging/in-container.sh package ARCHITECTURE=arm64   for an arm64 function
#
# The engine: $CONTAINER_ENGINE (docker, podman or a path to either), else docker, else podman.
# The platform is the function's architecture (ARCHITECTURE, as for make: x86_64, the default, runs
# the linux/amd64 image, under emulation on Apple silicon; arm64 the linux/arm64 one).
# The checkout is mounted at /src. SwiftPM's, libcurl's and the tools' build directories are
# volumes of their own, one set per image and architecture: never mixed with a build on the host
# (other glibc, other Python), and fast where bind mounts are slow (macOS).
# AWS credentials reach the container only for the targets that call AWS (AWS_TARGETS): the AWS_*
# variables of this environment are handed over by name (-e NAME: the value travels in the
# engine's environment, never on a command line or in a file). Without AWS_ACCESS_KEY_ID, those of
# the AWS CLI's current profile (AWS_PROFILE, SSO included) are exported here first, as the
# Makefile's operator commands do: the image has no AWS CLI and no ~/.aws.
# Inside (--inside), as root: the build packages (make build-deps), then make as the owner of the
# checkout, so that what it writes (dist/, .aws-sam/, samconfig.toml) is yours on the host.
#
# Runs with macOS's bash 3.2: no associative arrays, no empty array expanded under set -u.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")

# The Makefile's targets that talk to AWS from the container: deploy (SAM) and the operator
# commands. (`make rotate` is one AWS CLI call: run it on the host.)
AWS_TARGETS="deploy status doctor cancel"
# Handed over by name when set; AWS_PROFILE is not: the container has no profile to read.
AWS_VARIABLES="AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_REGION AWS_DEFAULT_REGION AWS_ENDPOINT_URL"

# Inside the container, where the checkout is /src (Debian: GNU tools from here on). The image has
# no make: apt-deps.sh installs it first.
inside() {
    cd "$repo"
    "$here/apt-deps.sh" make
    make --no-print-directory build-deps
    local owner home
    owner=$(stat -c %u:%g "$repo")
    if [[ $owner == 0:0 ]]; then
        # Root owns the checkout here: a rootless engine (Podman, rootless Docker) maps the host's
        # user to root, so root's files are the user's.
        exec make --no-print-directory "$@"
    fi
    # The volumes are the engine's, made for root; SAM and pip want a home.
    home=$(mktemp -d)
    chown "$owner" "$repo/.build" "$repo/.build-curl" "$repo/.build-tools" "$home"
    HOME=$home exec setpriv --reuid="${owner%:*}" --regid="${owner#*:}" --clear-groups \
        make --no-print-directory "$@"
}

if [[ ${1:-} == --inside ]]; then
    shift
    inside "$@"
fi

if [[ $# -eq 0 || $1 == -h || $1 == --help ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
    exit 2
fi

# The last ARCHITECTURE= among the arguments (make's rule), else the environment's, else x86_64.
architecture=${ARCHITECTURE:-x86_64}
needs_aws=
for argument in "$@"; do
    case $argument in
        ARCHITECTURE=*) architecture=${argument#ARCHITECTURE=} ;;
    esac
    for target in $AWS_TARGETS; do
        if [[ $argument == "$target" ]]; then
            needs_aws=1
        fi
    done
done
case $architecture in
    x86_64) platform=linux/amd64 ;;
    arm64) platform=linux/arm64 ;;
    *)
        echo "in-container.sh: ARCHITECTURE must be x86_64 or arm64 (Lambda's names), not '$architecture'" >&2
        exit 2
        ;;
esac

if [[ -n ${CONTAINER_ENGINE:-} ]]; then
    engine=$CONTAINER_ENGINE
elif command -v docker >/dev/null 2>&1; then
    engine=docker
elif command -v podman >/dev/null 2>&1; then
    engine=podman
else
    echo "in-container.sh: neither docker nor podman is on PATH: install Docker Desktop, Docker Engine or" \
         "Podman (or set CONTAINER_ENGINE to one)" >&2
    exit 2
fi
if ! command -v "$engine" >/dev/null 2>&1; then
    echo "in-container.sh: CONTAINER_ENGINE=$engine is not a command" >&2
    exit 2
fi

image=$(grep -v -e '^#' -e '^[[:space:]]*$' "$here/build-image" | head -n 1)
if [[ ! $image =~ ^swift:[0-9.]+-bookworm@sha256:[0-9a-f]{64}$ ]]; then
    echo "in-container.sh: packaging/build-image names '$image', not swift:<version>-bookworm@sha256:<digest>" >&2
    exit 2
fi
digest=${image##*:}
volume_prefix=rotator-${digest:0:12}-$architecture

if [[ -n $needs_aws ]]; then
    if [[ -z ${AWS_ACCESS_KEY_ID:-} ]] && command -v aws >/dev/null 2>&1; then
        if creds=$(aws configure export-credentials --format env 2>&1); then
            eval "$creds"
        else
            echo "in-container.sh: no AWS credentials to hand over (aws configure export-credentials: $creds)" >&2
        fi
    fi
    if [[ -z ${AWS_REGION:-}${AWS_DEFAULT_REGION:-} ]] && command -v aws >/dev/null 2>&1; then
        AWS_REGION=$(aws configure get region || true)
        export AWS_REGION
    fi
fi

run=("$engine" run --rm -i --platform "$platform" --workdir /src)
if [[ -t 0 && -t 1 ]]; then
    run+=(-t)
fi
# Podman on an SELinux host labels the checkout for the container (z: shared); Docker leaves it.
mount_options=
[[ $(basename "$engine") == podman ]] && mount_options=:z
run+=(--volume "$repo:/src$mount_options")
# The mount points exist beforehand, made by you: an engine would make them as root in your checkout.
for build_dir in .build .build-curl .build-tools; do
    mkdir -p "$repo/$build_dir"
    run+=(--volume "$volume_prefix$build_dir:/src/$build_dir")
done
run+=(--env "ARCHITECTURE=$architecture" --env SAM_CLI_TELEMETRY=0)
if [[ -n $needs_aws ]]; then
    for variable in $AWS_VARIABLES; do
        if [[ -n ${!variable:-} ]]; then
            run+=(--env "$variable")
        fi
    done
fi
run+=("$image" packaging/in-container.sh --inside "$@")
exec "${run[@]}"
