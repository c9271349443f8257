#!/usr/bin/env bash
# Proof that the deployment package loads on provided.al2023 (glibc 2.34, GCC 11's libstdc++) for
# the function's architecture: every ELF file in ZIP_OR_DIR is a 64-bit little-endian file for
# that machine (x86_64: EM_X86_64, arm64: EM_AARCH64), and no version it requires from the
# system's libraries is newer than Amazon Linux 2023's. Reads each file's version needs (objdump
# -p, "Version References"), prints every offender as FILE: VERSION (from LIBRARY) or FILE: machine
# ..., exits 1 if there is any. A binary built on the wrong machine (an Apple silicon or Graviton
# host building for an x86_64 function) is refused here, before it reaches Lambda, where it would
# fail at its first invocation with an exec format error.
#   GLIBC_    at most 2.34     (glibc 2.34; GLIBC_PRIVATE ties a file to one exact glibc build)
#   GLIBCXX_  at most 3.4.29   (GCC 11's libstdc++)
#   CXXABI_   at most 1.3.13   (GCC 11's libstdc++)
#   GCC_      below 12         (GCC 11's libgcc_s)
# Usage: packaging/check-glibc.sh x86_64|arm64 ZIP_OR_DIR   (the function's Architectures)
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 x86_64|arm64 ZIP_OR_DIR" >&2
    exit 2
fi
# e_machine (ELF header bytes 18-19, little-endian) for each of Lambda's architectures.
case $1 in
    x86_64) machine=62 machine_name=x86-64 ;;
    arm64) machine=183 machine_name=AArch64 ;;
    *)
        echo "check-glibc.sh: unknown architecture '$1' (Lambda has x86_64 and arm64)" >&2
        exit 2
        ;;
esac
target=$2
if [[ -f $target ]]; then
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    unzip -q "$target" -d "$dir"
else
    dir=$target
fi

elf_files=0
offenders=0
while IFS= read -r -d '' file; do
    [[ $(head -c 4 "$file") == $'\x7fELF' ]] || continue
    elf_files=$((elf_files + 1))
    # EI_CLASS (byte 4) 2 = 64-bit, EI_DATA (5) 1 = little-endian, then e_machine; od prints bytes in
    # file order, so this reads the same on any host.
    read -r class data <<<"$(od -An -tu1 -j4 -N2 "$file")"
    read -r low high <<<"$(od -An -tu1 -j18 -N2 "$file")"
    if [[ $class != 2 || $data != 1 || $((low + 256 * high)) != "$machine" ]]; then
        echo "${file#"$dir"/}: machine $((low + 256 * high)) (class $class, data $data), not the $1 function's $machine_name ($machine, 64-bit little-endian)"
        offenders=$((offenders + 1))
        continue
    fi
    found=$(objdump -p "$file" | awk -v file="${file#"$dir"/}" '
        # Is version a (dot-separated, numeric) newer than b?
        function newer(a, b,   x, y, i, n) {
            n = split(a, x, "."); split(b, y, ".")
            for (i = 1; i <= n || i in y; i++)
                if (x[i] + 0 != y[i] + 0) return x[i] + 0 > y[i] + 0
            return 0
        }
        function offends(v) {
            if (v == "GLIBC_PRIVATE") return 1
            if (v ~ /^GLIBC_[0-9]/) return newer(substr(v, 7), "2.34")
            if (v ~ /^GLIBCXX_[0-9]/) return newer(substr(v, 9), "3.4.29")
            if (v ~ /^CXXABI_[0-9]/) return newer(substr(v, 8), "1.3.13")
            if (v ~ /^GCC_[0-9]/) return !newer("12", substr(v, 5))
            return 0
        }
        /^Version References:/ { refs = 1; next }
        refs && /^  required from / { lib = $3; sub(/:$/, "", lib); next }
        refs && /^    0x/ { if (offends($4)) print file ": " $4 " (from " lib ")"; next }
        refs && !/^ / { refs = 0 }')
    if [[ -n $found ]]; then
        echo "$found"
        offenders=$((offenders + $(wc -l <<<"$found")))
    fi
done < <(find "$dir" -type f -print0)

if ((elf_files == 0)); then
    echo "check-glibc.sh: no ELF file in $target" >&2
    exit 1
fi
if ((offenders > 0)); then
    echo "check-glibc.sh: $offenders finding(s): a file for another machine than $1, or a symbol version" \
         "newer than Amazon Linux 2023 provides (another machine: build on one of the function's" \
         "architecture, e.g. packaging/in-container.sh package)" >&2
    exit 1
fi
echo "check-glibc.sh: $elf_files ELF files for $1, nothing newer than GLIBC_2.34 / GLIBCXX_3.4.29"
