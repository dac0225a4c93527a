#!/usr/bin/env bash
# bench/dns: kizuna's RPZ primary vs a stock BIND 9 primary, both feeding a BIND 9 RPZ
# secondary (min-update-interval 0, max-policy-ttl 1) on loopback, same inputs, same run.
# Writes bench/out/dns.md. Options are passed to the driver:
#   --latency N   indicators added one by one on each side (default 300; the target needs ≥ 200)
#   --names M     names in the big zone (default 1000000)
#   --changes C   changes delivered to the big zone (default 1000)
set -euo pipefail
cd "$(dirname "$0")/../.."
bash scripts/setup-test-deps.sh            # bind9, bind9-utils, bind9-dnsutils (scripts/deps/dns.apt)
mkdir -p bench/out
cargo build --release -p kizuna-dns --example dns_bench
exec target/release/examples/dns_bench --out bench/out/dns.md "$@"
