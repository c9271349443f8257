#!/usr/bin/env bash
# Makes sure the Debian packages named are installed. As root on Debian or Ubuntu (the project's
# machines, CI, the container of packaging/in-container.sh) it installs the missing ones; anywhere
# else it changes nothing: it names what is missing, how to install it, and the container route, and
# exits 1. A laptop is never apt-get'ed behind its owner's back, and a host without dpkg (macOS,
# Windows, Fedora) builds in the container.
# Usage: packaging/apt-deps.sh PACKAGE...
set -euo pipefail

container_route="or build and deploy in the container: packaging/in-container.sh package|deploy (docs/deploying.md, \"The container route\")"

if ! command -v dpkg-query >/dev/null 2>&1; then
    echo "apt-deps.sh: this host ($(uname -s)) has no dpkg: the function is a Linux binary built on Debian 12" \
         "with these Debian packages: $*; $container_route" >&2
    exit 1
fi

missing=()
for package in "$@"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q ' installed$' || missing+=("$package")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) != 0 ]]; then
    echo "apt-deps.sh: missing Debian packages: ${missing[*]}. Install them" \
         "(sudo apt-get install --no-install-recommends ${missing[*]}), $container_route" >&2
    exit 1
fi
echo "installing: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
