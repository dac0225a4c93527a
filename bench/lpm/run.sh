#!/usr/bin/env bash
# LPM benchmark: kizuna-attrib's PrefixTable vs pyasn (PyPI), same table, same addresses, same
# run. Writes bench/out/lpm.md and prints it.
#
#   bench/lpm/run.sh [lpm_bench options: --v4 N --v6 N --lookups N --py-lookups N --seed N]
#
# pyasn builds a C extension: it needs gcc and the Python headers (pyenv's and python.org's
# Pythons ship them; Debian's system python3 needs the python3-dev package).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="$ROOT/bench/out"
DATA="$OUT/lpm"
VENV="$OUT/venv"
PYTHON="${PYTHON:-python3}"
mkdir -p "$DATA"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import pyasn' 2>/dev/null; then
    "$VENV/bin/pip" install -q 'pyasn==1.6.2'
fi

cd "$ROOT"
if [ -n "${LPM_BENCH_BIN:-}" ]; then
    # A prebuilt `cargo build --release -p kizuna-attrib --example lpm_bench`.
    "$LPM_BENCH_BIN" "$DATA" "$@"
else
    cargo run --release -q -p kizuna-attrib --example lpm_bench -- "$DATA" "$@"
fi
"$VENV/bin/python" "$ROOT/bench/lpm/pyasn_bench.py" "$DATA" "$OUT/lpm.md"
cat "$OUT/lpm.md"
