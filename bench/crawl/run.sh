#!/usr/bin/env bash
# Crawler benchmark: a farm of generated sites on loopback (one server, host-based routing,
# names pinned through each crawler's override table), crawled in the same run by
#   1. kizuna-crawl (crawl_bench example: fetch, follow, YARA-X, hashes, verdicts, observations)
#   2. a baseline crawler in Python (requests + BeautifulSoup, same following rules and limits,
#      hashing downloads), run in the test venv.
# Writes bench/out/crawl.md. Usage: bench/crawl/run.sh [SITES] (default 10000)
set -euo pipefail
cd "$(dirname "$0")/../.."
SITES="${1:-10000}"
# Threads of the Python baseline: 4 was its best on this 2-core machine (2026-12-01, quiet:
# 2 → 287, 4 → 327, 8 → 302, 16 → 307 pages/s; more threads only fight over the GIL).
PY_THREADS="${PY_THREADS:-4}"
OUT=bench/out
WORK="$OUT/crawl-farm"
mkdir -p "$WORK"

scripts/setup-test-deps.sh            # requests, beautifulsoup4 into .venv-test
PY=.venv-test/bin/python
cargo build --release -q -p kizuna-crawl --examples
BIN=target/release/examples

"$BIN/crawl_farm" --sites "$SITES" --out "$WORK" --seconds 3600 > "$WORK/farm.log" 2>&1 &
FARM=$!
trap 'kill $FARM 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do grep -q listening "$WORK/farm.log" 2>/dev/null && break; sleep 0.1; done
echo "farm: $(cat "$WORK/farm.log"), $SITES sites"

# kizuna before and after python, so that a change of the machine's load during the run shows.
# CPU seconds (user+sys) of each side too: less sensitive to other load than wall time.
kz() {
  /usr/bin/time -f "%U %S" -o "$1.cpu" \
    "$BIN/crawl_bench" --seeds "$WORK/seeds.txt" --hosts "$WORK/hosts.txt" --rules data/yara --concurrency 64 > "$1"
  cat "$1" "$1.cpu"
}
echo "kizuna-crawl (1)…"; kz "$WORK/kizuna.json"
echo "python requests + BeautifulSoup…"
/usr/bin/time -f "%U %S" -o "$WORK/python.json.cpu" \
  "$PY" bench/crawl/baseline.py --seeds "$WORK/seeds.txt" --hosts "$WORK/hosts.txt" --threads "$PY_THREADS" > "$WORK/python.json"
cat "$WORK/python.json" "$WORK/python.json.cpu"
echo "kizuna-crawl (2)…"; kz "$WORK/kizuna2.json"

"$PY" - "$WORK/kizuna.json" "$WORK/kizuna2.json" "$WORK/python.json" "$SITES" "$(cat /proc/loadavg)" > "$OUT/crawl.md" <<'PYEOF'
import json, sys, platform, os
def load(f):
    d = json.load(open(f))
    d["cpu"] = sum(float(x) for x in open(f + ".cpu").read().split()[-2:])
    return d
k1, k2, p = load(sys.argv[1]), load(sys.argv[2]), load(sys.argv[3])
sites, load = sys.argv[4], sys.argv[5]
k_mean = (k1["pages_per_sec"] + k2["pages_per_sec"]) / 2
ratio = k_mean / p["pages_per_sec"]
same = k1["verdicts"] == p["verdicts"] == k2["verdicts"]
print(f"# Crawler: pages judged per second, {sites} loopback sites\n")
print(f"Machine: {os.cpu_count()} cores, {platform.platform()}, /proc/loadavg at the end: {load}. "
      "Farm server on the same machine (shares the cores).\n")
print("| side | pages | seconds | pages/s | CPU s (user+sys) | CPU µs/page | peak RSS (MiB) | verdicts (nodes) |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for s, tag in ((k1, " (before python)"), (p, ""), (k2, " (after python)")):
    v = ", ".join(f"{a} {b}" for a, b in sorted(s["verdicts"].items()))
    print(f"| {s['side']}{tag} | {s['pages']} | {s['seconds']:.2f} | {s['pages_per_sec']:.0f} | {s['cpu']:.1f} | "
          f"{1e6 * s['cpu'] / s['pages']:.0f} | {s['peak_rss_kib']/1024:.0f} | {v} |")
print(f"\nRatio kizuna (mean of both runs, {k_mean:.0f} pages/s) / python: **{ratio:.1f}×** (target ≥ 20×). "
      f"Same verdicts on all runs: {'yes' if same else 'NO'}.")
k_cpu = (k1["cpu"] + k2["cpu"]) / 2
print(f"CPU per page, python / kizuna: **{p['cpu'] / k_cpu:.1f}×** (each side's own process; the farm server's CPU not counted).")
print("\nkizuna-crawl: 64 chains at once on a 2-thread tokio runtime, YARA-X scan of every body, MD5/SHA-1/SHA-256 of downloads, "
      f"observations encoded as IntelMQ JSON. Python: {p.get('threads', '?')} threads, requests (allow_redirects=False, streamed with caps), "
      "BeautifulSoup html.parser, hashlib, substring checks in place of YARA.")
PYEOF
cat "$OUT/crawl.md"
