#!/usr/bin/env bash
# Runs every benchmark against its real peer, side by side, and writes the tables to bench/out/.
#   bench/run.sh            # all areas present
#   bench/run.sh ingest lpm # only these
# Each area's run.sh installs and starts its peer (IntelMQ + Redis, pyasn, PostgreSQL, BIND,
# medallion, a Python crawler) itself; see bench/<area>/README.md or the script's header.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
areas=("$@")
if [ ${#areas[@]} -eq 0 ]; then
    for d in "$here"/*/; do
        [ -x "$d/run.sh" ] && areas+=("$(basename "$d")")
    done
fi
mkdir -p "$here/out"
for a in "${areas[@]}"; do
    echo "== bench: $a" >&2
    "$here/$a/run.sh"
done
echo "tables: $(ls "$here"/out/*.md 2>/dev/null | tr '\n' ' ')" >&2
