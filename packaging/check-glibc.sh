#!/usr/bin/env bash
# Proof that the deployment package loads on provided.al2023 (glibc 2.34, GCC 11's libstdc++):
# across every ELF file in ZIP_OR_DIR, no version required from the system's libraries may be
# newer than Amazon Linux 2023's. Reads each file's version needs (objdump -p, "Version
# References"), prints every offender as FILE: VERSION (from LIBRARY), exits 1 if there is any.
#   GLIBC_    at most 2.34     (glibc 2.34; GLIBC_PRIVATE ties a file to one exact glibc build)
#   GLIBCXX_  at most 3.4.29   (GCC 11's libstdc++)
#   CXXABI_   at most 1.3.13   (GCC 11's libstdc++)
#   GCC_      below 12         (GCC 11's libgcc_s)
# Usage: packaging/check-glibc.sh ZIP_OR_DIR
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 ZIP_OR_DIR" >&2
    exit 2
fi
target=$1
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
    echo "check-glibc.sh: $offenders symbol version(s) newer than Amazon Linux 2023 provides" >&2
    exit 1
fi
echo "check-glibc.sh: $elf_files ELF files, nothing newer than GLIBC_2.34 / GLIBCXX_3.4.29"
