#!/usr/bin/env bash
# TAXII 2.1 objects endpoint: full paginated read of a 100k-indicator collection with the same
# client (taxii2-client's as_pages) from kizuna's TAXII server and from medallion 3.0's memory
# backend holding the same objects (loaded from the data file kizuna's bench server writes).
# Writes bench/out/taxii.md.
#   OBJECTS=100000 MEDALLION_OBJECTS=5000 bench/taxii/run.sh
#   OBJECTS=100000 MEDALLION_OBJECTS=100000 MEDALLION_PAGES=3 bench/taxii/run.sh
# medallion's read time grows with the square of the collection size (every page re-scans its
# manifest; measured here: 5,000 objects take ~5 minutes), so by default it serves the first
# MEDALLION_OBJECTS of the same objects: its objects/s at that size is an upper bound of its
# rate at 100k, which makes the ratio conservative. MEDALLION_OBJECTS=100000 runs it in full
# (hours); with MEDALLION_PAGES=P only the first P pages are read from medallion (its rate over
# those pages is again an upper bound of its full-read rate).
set -euo pipefail
cd "$(dirname "$0")/../.."
OBJECTS="${OBJECTS:-100000}"
MEDALLION_OBJECTS="${MEDALLION_OBJECTS:-5000}"
MEDALLION_PAGES="${MEDALLION_PAGES:-0}"
[ -n "${SKIP_SETUP:-}" ] || scripts/setup-test-deps.sh
PY=.venv-test/bin/python
cargo build -q --release -p kizuna-taxii --example taxii_bench
work=$(mktemp -d)
kpid=""; mpid=""
cleanup() { [ -n "$kpid" ] && kill "$kpid" 2>/dev/null; [ -n "$mpid" ] && kill "$mpid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

target/release/examples/taxii_bench --objects "$OBJECTS" --medallion-data "$work/data.json" --medallion-objects "$MEDALLION_OBJECTS" > "$work/kizuna.out" &
kpid=$!
for _ in $(seq 1 600); do grep -q READY "$work/kizuna.out" 2>/dev/null && break; sleep 0.5; done
kbase=$(awk '/READY/{print $2}' "$work/kizuna.out")
[ -n "$kbase" ] || { echo "kizuna bench server did not start"; exit 1; }

mport=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# session_timeout raised from medallion's 30 s: its `next` cursors otherwise expire mid-read.
cat > "$work/medallion.json" <<JSON
{"backend": {"module": "medallion.backends.memory_backend", "module_class": "MemoryBackend",
             "filename": "$work/data.json", "session_timeout": 86400},
 "users": {"bench": "bench-password"}, "taxii": {"max_page_size": 100}}
JSON
.venv-test/bin/medallion --host 127.0.0.1 --port "$mport" --log-level WARN "$work/medallion.json" >/dev/null 2>&1 &
mpid=$!
for _ in $(seq 1 600); do $PY -c "import socket; socket.create_connection(('127.0.0.1',$mport))" 2>/dev/null && break; sleep 0.5; done

col=2d3c7b10-5d1a-4a59-9b55-1e6f3c0a9b01
k100=$($PY bench/taxii/read.py "$kbase/taxii2/bench/collections/$col/" bench bench-password 100)
k1000=$($PY bench/taxii/read.py "$kbase/taxii2/bench/collections/$col/" bench bench-password 1000)
m100=$($PY bench/taxii/read.py "http://127.0.0.1:$mport/bench/collections/$col/" bench bench-password 100 "$MEDALLION_PAGES")
echo "kizuna limit 100:  $k100"
echo "kizuna limit 1000: $k1000"
echo "medallion limit 100: $m100"

mkdir -p bench/out
$PY - "$OBJECTS" "$MEDALLION_OBJECTS" "$k100" "$k1000" "$m100" "$MEDALLION_PAGES" > bench/out/taxii.md <<'PYEOF'
import json, sys
n, m = int(sys.argv[1]), int(sys.argv[2]); k100, k1000, m100 = (json.loads(a) for a in sys.argv[3:6])
mp = int(sys.argv[6])
m_read = min(m, n) if not mp else min(m, n, mp * 100)
for r, want in ((k100, n), (k1000, n), (m100, m_read)):
    assert r["objects"] == want and r["distinct"] == want, r
print(f"# TAXII 2.1 objects endpoint: full paginated read with taxii2-client as_pages\n")
print(f"medallion: first page after {m100['first_page_s']:.2f} s; kizuna: {k100['first_page_s']:.3f} s (limit 100)\n")
print("| server | objects in collection | limit | pages | seconds | objects/s | ratio vs medallion |")
print("|---|---:|---:|---:|---:|---:|---:|")
base = m100["objects_per_s"]
mname = "medallion 3.0 (memory backend)" + (f", first {m100['pages']} pages only" if mp else "")
for name, cnt, lim, r in ((mname, min(m, n), 100, m100), ("kizuna (memory store)", n, 100, k100), ("kizuna (memory store)", n, 1000, k1000)):
    print(f"| {name} | {cnt:,} | {lim} | {r['pages']} | {r['seconds']:.2f} | {r['objects_per_s']:,.0f} | {r['objects_per_s']/base:,.0f}× |")
PYEOF
cat bench/out/taxii.md
