#!/usr/bin/env bash
# Lays out the Lambda deployment package (provided.al2023) in DEST:
#   DEST/bootstrap   what Lambda executes; it execs ./rotator beside it
#   DEST/rotator     the function, stripped, looking for its libraries in $ORIGIN/lib first
#   DEST/lib/        the binary's shared-library closure minus packaging/system-libs, stripped
# Only those three entries of DEST are replaced, so DEST may be SAM's $ARTIFACTS_DIR.
# ARCHITECTURE (x86_64, the default, or arm64) is the function's: the binary is built for this
# machine, so the check at the end refuses a package built on a machine of the other one.
# Usage: [ARCHITECTURE=x86_64|arm64] packaging/stage.sh DEST
set -euo pipefail

if [[ $# -ne 1 || -z $1 ]]; then
    echo "usage: $0 DEST" >&2
    exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
repo=$(dirname "$here")
dest=$1
architecture=${ARCHITECTURE:-x86_64}

# The binary is built for this machine: say so before a build, not after it (the check at the end
# judges the files themselves).
case $architecture:$(uname -m) in
    x86_64:x86_64 | arm64:aarch64 | arm64:arm64) ;;
    *)
        echo "stage.sh: this machine is $(uname -m), the function's architecture '$architecture' (x86_64 or arm64):" \
             "build where they agree, e.g. packaging/in-container.sh package ARCHITECTURE=$architecture" >&2
        exit 1
        ;;
esac

# SwiftPM rebuilds only what changed: cheap when the binary is current.
make -C "$repo" --no-print-directory build >&2
binary=$repo/.build/release/rotator
# libcurl is linked statically (packaging/build-libcurl.sh): a binary built by a plain `swift build`
# needs Debian's shared libcurl and its thirty libraries instead, most of a cold start.
if grep -q 'Shared library: \[libcurl' <<<"$(readelf -d "$binary")"; then
    echo "stage.sh: $binary needs a shared libcurl; build it with make build" >&2
    exit 1
fi

mkdir -p "$dest"
dest=$(cd "$dest" && pwd)
if [[ $dest == / ]]; then
    echo "stage.sh: refusing to replace /bootstrap, /rotator and /lib" >&2
    exit 2
fi
rm -rf "${dest:?}/bootstrap" "${dest:?}/rotator" "${dest:?}/lib"
mkdir "$dest/lib"
install -m 755 "$repo/bootstrap" "$dest/bootstrap"
install -m 755 "$binary" "$dest/rotator"
strip --strip-all "$dest/rotator"
# DT_RPATH, not DT_RUNPATH: it applies to libssl's own dependency (libcrypto) too, and it wins over
# LD_LIBRARY_PATH, where Lambda lists /lib64 and /usr/lib64 before /var/task/lib. Amazon Linux
# has an OpenSSL of its own there; ours, the one libcurl was built against, must be the one loaded.
# patchelf last: strip rewriting a file patchelf has changed can break it.
patchelf --force-rpath --set-rpath "\$ORIGIN/lib" "$dest/rotator"

system_libs=$(grep -v '^#' "$here/system-libs")
# ldd lists the whole closure as "soname => path (address)"; the loader and vdso have no "=>".
ldd "$binary" | awk '$2 == "=>" { print $1, $3 }' | while read -r soname path; do
    if [[ $path == not ]]; then
        echo "stage.sh: $soname not found on this machine" >&2
        exit 1
    fi
    if grep -qxF "$soname" <<<"$system_libs"; then
        continue
    fi
    # Named by SONAME, what the loader looks for; cp follows the versioned file's symlink.
    cp "$path" "$dest/lib/$soname"
    chmod 644 "$dest/lib/$soname"
    strip --strip-unneeded "$dest/lib/$soname"
done

# Never hand over a package that would not load on Amazon Linux 2023.
"$here/check-glibc.sh" "$architecture" "$dest" >&2
