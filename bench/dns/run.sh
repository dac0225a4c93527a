#!/usr/bin/env bash
# bench/dns: kizuna's RPZ primary vs a stock BIND 9 primary, each with its own BIND 9 RPZ
# secondary (min-update-interval 0, max-policy-ttl 1, serial-query-rate 1000) on loopback, same
# inputs, same run; then a big zone with BIND 9 and Unbound as secondaries.
# Writes bench/out/dns.md. Options are passed to the driver:
#   --latency N   indicators added one by one on each side (default 300; 0 skips (a))
#   --names M     names in the big zone (default 1000000; 0 skips (b))
#   --changes C   changes delivered to the big zone (default 1000)
# Environment: DNS_BENCH_SQR=20 runs every BIND with its default serial-query-rate/notify-rate;
# DNS_BENCH_UNBOUND_ZONEFILE=1 makes Unbound also keep the transferred zone on disk;
# DNS_BENCH_KEEP=1 keeps the working directory (BIND and Unbound logs).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup-test-deps.sh            # bind9, bind9-utils, bind9-dnsutils, unbound (scripts/deps/dns.apt)
mkdir -p bench/out
cargo build --release -p kizuna-dns --example dns_bench
exec target/release/examples/dns_bench --out bench/out/dns.md "$@"
