#!/usr/bin/env bash
# Builds ROOT: the deployment package unpacked at /var/task inside an otherwise empty root that
# holds only what packaging/system-libs says provided.al2023 has (this machine's glibc, libstdc++
# and libgcc_s), a static busybox as /bin/sh, a CA bundle at Amazon Linux's path only, /dev/null
# and /dev/urandom. No libcurl, no OpenSSL, no Python. /var/runtime/init then plays Lambda's
# init: as root, `unshare --mount-proc=ROOT/proc chroot ROOT /var/runtime/init` starts the
# function as Lambda does. /proc as the sandbox has it (the loader reads /proc/self/exe to expand
# the binary's $ORIGIN), mounted in a mount namespace of its own that goes with the function.
# Usage: packaging/minimal-root.sh ZIP ROOT   (ROOT must not exist)
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 ZIP ROOT" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
zip=$1
root=$2

mkdir "$root"
root=$(cd "$root" && pwd)
# Amazon Linux's layout: libraries in /usr/lib64, /lib64 a link to it.
mkdir -p "$root/bin" "$root/usr/lib64" "$root/var/task" "$root/var/runtime" "$root/tmp" \
    "$root/etc/pki/tls/certs" "$root/dev" "$root/proc"
ln -s usr/lib64 "$root/lib64"
unzip -q "$zip" -d "$root/var/task"

# The system libraries the packaged binary resolves outside the package. Anything else means the
# package lacks a library: fail rather than hide it by copying it in.
system_libs=$(grep -v '^#' "$here/system-libs")
ldd "$root/var/task/rotator" | awk '$2 == "=>" { print $1, $3 } $2 != "=>" && $1 ~ /^\// { print $1, $1 }' |
    while read -r soname path; do
        soname=${soname##*/}
        case $path in
            "$root"/var/task/lib/*) ;;
            *)
                if ! grep -qxF "$soname" <<<"$system_libs"; then
                    echo "minimal-root.sh: $soname resolves to $path, outside the package" >&2
                    exit 1
                fi
                cp "$path" "$root/usr/lib64/$soname"
                ;;
        esac
    done

cp /bin/busybox "$root/bin/sh"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/pki/tls/certs/ca-bundle.crt"
mknod -m 666 "$root/dev/null" c 1 3
mknod -m 666 "$root/dev/urandom" c 1 9
chmod 1777 "$root/tmp"

# Lambda's init: the task root as working directory, Lambda's documented LD_LIBRARY_PATH (the
# system's directories before the package's), then bootstrap in place of this shell.
cat >"$root/var/runtime/init" <<'INIT'
#!/bin/sh
cd /var/task || exit 1
export LAMBDA_TASK_ROOT=/var/task LAMBDA_RUNTIME_DIR=/var/runtime
export LD_LIBRARY_PATH=/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib
exec /var/task/bootstrap
INIT
chmod 755 "$root/var/runtime/init"
