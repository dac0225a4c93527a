#!/usr/bin/env bash
# Run IntelMQ's Shadowserver pipeline on one report file and measure its throughput.
#
#   bench/ingest/intelmq_run.sh INPUT.csv ROUTES.ipasn
#
# INPUT.csv is a Shadowserver report whose file name carries the report type as Shadowserver
# names its files (2026-03-05-event4_sinkhole-x.csv); otherwise set REPORT=event4_sinkhole.
# ROUTES.ipasn is the routing table in pyasn's IPASN text format (kizuna-gen's write_ipasn).
#
# Runs setup-intelmq.sh (idempotent), stops all bots, empties the private redis, installs the
# routing table, starts parser, ASN expert and file output and waits until they have initialised
# (so loading pyasn is not timed), then drops the file into the collector's directory and starts
# the clock. It waits until the output has one line per input row (or the queues are empty and
# the output stopped growing for IDLE_SECS, default 20), and prints
#   events/s = events written / (time of the last output line - time the file was dropped)
# with each bot's peak RSS (VmHWM). The last line is machine-readable:
#   RESULT tool=intelmq events=N expected=N seconds=S events_per_s=R peak_rss_kb=K ...
# and bench/out/intelmq-result.json holds the same. Bots are stopped at the end; the redis
# server stays up for the next run.
set -euo pipefail

if [ $# -ne 2 ]; then
    sed -n '2,20p' "$0" >&2
    exit 2
fi
input_csv=$(realpath "$1")
routes=$(realpath "$2")
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${BENCH_OUT:-$repo/bench/out}
idle_secs=${IDLE_SECS:-20}
timeout_secs=${TIMEOUT_SECS:-7200}

"$here/setup-intelmq.sh" 2>/dev/null || "$here/setup-intelmq.sh"
out=$(cd "$out" && pwd)
# shellcheck disable=SC1091
. "$out/intelmq.env"
port=$INTELMQ_REDIS_PORT
root=${INTELMQ_ROOT_DIR%/}
state=$root/var/lib/bots
inbox=$out/intelmq-input
events=$state/file-output/events.txt
bots=(shadowserver-parser asn-lookup-expert file-output shadowserver-collector)
rc() { redis-cli -h 127.0.0.1 -p "$port" "$@"; }
log() { printf 'intelmq_run: %s\n' "$*" >&2; }

name=$(basename "$input_csv")
if ! [[ $name =~ ^([0-9]{4}-[0-9]{2}-[0-9]{2}-)?[A-Za-z0-9_]+(-[A-Za-z0-9_]+)*\.csv$ ]]; then
    [ -n "${REPORT:-}" ] || { log "file name $name carries no report type: set REPORT=<type>"; exit 2; }
    name="2026-03-05-$REPORT-bench.csv"
fi
expected=$(($(wc -l < "$input_csv") - 1))

# A clean slate: no bots, no queued messages, no old output or logs.
intelmqctl stop >/dev/null 2>&1 || true
rc FLUSHALL >/dev/null
rm -f "$events" "$root"/var/log/*.log "$root"/var/log/*.dump "$inbox"/*
cp "$routes" "$state/asn_lookup/ipasn.dat"
chown intelmq:intelmq "$state/asn_lookup/ipasn.dat"

started_bots() {
    for b in "$@"; do
        intelmqctl start "$b" >/dev/null
    done
    for b in "$@"; do
        for _ in $(seq 600); do
            grep -q "Bot initialization completed" "$root/var/log/$b.log" 2>/dev/null && continue 2
            sleep 0.1
        done
        log "$b did not initialise:"
        tail -20 "$root/var/log/$b.log" >&2 || true
        exit 1
    done
}
started_bots shadowserver-parser asn-lookup-expert file-output shadowserver-collector

# Drop the file (atomically: the collector only takes *.csv) and start the clock.
cp "$input_csv" "$inbox/.incoming"
chown intelmq:intelmq "$inbox/.incoming"
load_before=$(cut -d' ' -f1 /proc/loadavg)
t0=$(date +%s.%N)
mv "$inbox/.incoming" "$inbox/$name"

count() { if [ -f "$events" ]; then wc -l < "$events"; else echo 0; fi; }
queued() {
    local n=0 q
    for q in shadowserver-parser-queue asn-lookup-expert-queue file-output-queue; do
        n=$((n + $(rc LLEN "$q")))
    done
    echo "$n"
}
last_n=-1
last_change=$(date +%s)
status=complete
while :; do
    n=$(count)
    now=$(date +%s)
    if [ "$n" -ge "$expected" ]; then
        break
    fi
    if [ "$n" -ne "$last_n" ]; then
        last_n=$n
        last_change=$now
    elif [ $((now - last_change)) -ge "$idle_secs" ] && [ ! -e "$inbox/$name" ] && [ "$(queued)" -eq 0 ]; then
        status=stalled
        break
    fi
    if [ $((now - ${t0%.*})) -ge "$timeout_secs" ]; then
        status=timeout
        break
    fi
    sleep 0.2
done
n=$(count)
load_after=$(cut -d' ' -f1 /proc/loadavg)
t_last=$(stat -c %.9Y "$events" 2>/dev/null || echo "$t0")

# Peak RSS of each bot process (VmHWM), read before stopping them.
rss_json=""
rss_total=0
for b in "${bots[@]}"; do
    pid=$(cat "$root/var/run/$b.pid" 2>/dev/null || true)
    kb=0
    if [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; then
        kb=$(awk '/^VmHWM:/ {print $2}' "/proc/$pid/status")
    fi
    rss_total=$((rss_total + kb))
    rss_json="$rss_json${rss_json:+,}\"$b\":$kb"
done
dumped=$(python3 - "$root/var/log" <<'PY'
import json, pathlib, sys
n = 0
for p in pathlib.Path(sys.argv[1]).glob("*.dump"):
    try:
        n += len(json.loads(p.read_text()))
    except ValueError:
        pass
print(n)
PY
)
intelmqctl stop >/dev/null 2>&1 || true

secs=$(python3 -c "import sys; print(f'{max(float(sys.argv[2]) - float(sys.argv[1]), 1e-9):.3f}')" "$t0" "$t_last")
rate=$(python3 -c "import sys; print(f'{int(sys.argv[1]) / float(sys.argv[2]):.1f}')" "$n" "$secs")
intelmq_version=$(python -c "import intelmq; print(intelmq.__version__)")
echo "IntelMQ $intelmq_version: $n of $expected events in ${secs}s (drop to last output line): $rate events/s ($status)"
echo "peak RSS (VmHWM, kB): {$rss_json} total $rss_total; messages dumped on errors: $dumped"
echo "machine: $(nproc) CPUs, load average $load_before at the start, $load_after at the end"
cat > "$out/intelmq-result.json" <<JSON
{"tool":"intelmq","version":"$intelmq_version","input":"$input_csv","report_file":"$name","events":$n,"expected":$expected,"seconds":$secs,"events_per_s":$rate,"status":"$status","peak_rss_kb":{$rss_json},"peak_rss_kb_total":$rss_total,"dumped":$dumped,"cpus":$(nproc),"load_before":$load_before,"load_after":$load_after}
JSON
echo "RESULT tool=intelmq events=$n expected=$expected seconds=$secs events_per_s=$rate peak_rss_kb=$rss_total status=$status dumped=$dumped"
[ "$status" = complete ]
