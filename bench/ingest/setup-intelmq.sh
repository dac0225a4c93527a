#!/usr/bin/env bash
# Set up IntelMQ 3.x for the ingest benchmark (the peer kizuna is compared with).
#
# Idempotent: re-running only fixes what is missing. Everything lives under bench/out/:
#   intelmq-venv/   Python venv (Debian's python3) with intelmq and pyasn from PyPI
#   intelmq/        INTELMQ_ROOT_DIR: var/{log,run,lib/bots} (etc -> ../intelmq-etc)
#   intelmq-etc/    runtime.yaml + harmonization.conf
#   intelmq-input/  the file collector's directory
#   redis-<port>.*  a private redis-server on 127.0.0.1:<port> (no persistence)
# Pipeline: file collector -> Shadowserver parser -> ASN lookup expert (pyasn) -> file output.
#
# Environment: BENCH_OUT (default bench/out), INTELMQ_REDIS_PORT (6390),
# SHADOWSERVER_SCHEMA (default ../shared/fixtures/shadowserver-schema/intelmq.json.gz),
# INTELMQ_VERSION (3.5.0), PYASN_VERSION (1.6.2).
# Source bench/out/intelmq.env afterwards to use intelmqctl by hand.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
out=${BENCH_OUT:-$repo/bench/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)
port=${INTELMQ_REDIS_PORT:-6390}
schema_gz=${SHADOWSERVER_SCHEMA:-$repo/../shared/fixtures/shadowserver-schema/intelmq.json.gz}
intelmq_version=${INTELMQ_VERSION:-3.5.0}
pyasn_version=${PYASN_VERSION:-1.6.2}
venv=$out/intelmq-venv
root=$out/intelmq
etc=$out/intelmq-etc
input=$out/intelmq-input
state=$root/var/lib/bots

log() { printf 'setup-intelmq: %s\n' "$*" >&2; }

# 1. System packages: redis-server, and what a venv with a C extension (pyasn) needs.
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
/usr/bin/python3 -c 'import ensurepip, venv' 2>/dev/null || need+=(python3-venv)
[ -e "/usr/include/python3.$(/usr/bin/python3 -c 'import sys; print(sys.version_info[1])')/Python.h" ] || need+=(python3-dev)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# 2. The venv. Debian's python3, not a per-user one (pyenv under /root): the bots run as the
#    unprivileged user `intelmq` (IntelMQ refuses to run as root) and must reach the interpreter.
if ! "$venv/bin/python" -c "import intelmq, pyasn, sys; assert intelmq.__version__ == sys.argv[1]" \
    "$intelmq_version" 2>/dev/null; then
    log "creating $venv with intelmq==$intelmq_version pyasn==$pyasn_version"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check "intelmq==$intelmq_version" "pyasn==$pyasn_version"
fi

# 3. The user the bots run as (intelmqctl drops privileges to it when started as root).
if ! id intelmq >/dev/null 2>&1; then
    log "adding system user intelmq"
    useradd --system --user-group --no-create-home --home-dir "$root" --shell /usr/sbin/nologin intelmq
fi

# 4. Directories, harmonization, the Shadowserver schema (so the parser never downloads it).
mkdir -p "$root/var/log" "$root/var/run" "$state/asn_lookup" "$state/file-output" "$etc" "$input"
[ -L "$root/etc" ] || { rm -rf "$root/etc"; ln -s ../intelmq-etc "$root/etc"; }
pkg_etc=$("$venv/bin/python" -c 'import intelmq, os; print(os.path.join(os.path.dirname(intelmq.__file__), "etc"))')
cp "$pkg_etc/harmonization.conf" "$etc/harmonization.conf"
if [ ! -s "$state/shadowserver-schema.json" ]; then
    [ -f "$schema_gz" ] || { log "schema not found: $schema_gz"; exit 1; }
    gzip -dc "$schema_gz" > "$state/shadowserver-schema.json"
fi
# Until a benchmark run installs its routing table, an empty pyasn database.
[ -f "$state/asn_lookup/ipasn.dat" ] || printf '; IP-ASN32-DAT file\n' > "$state/asn_lookup/ipasn.dat"

# 5. runtime.yaml.
cat > "$etc/runtime.yaml" <<YAML
global:
  destination_pipeline_broker: redis
  destination_pipeline_host: 127.0.0.1
  destination_pipeline_port: $port
  destination_pipeline_db: 2
  source_pipeline_broker: redis
  source_pipeline_host: 127.0.0.1
  source_pipeline_port: $port
  source_pipeline_db: 2
  statistics_host: 127.0.0.1
  statistics_port: $port
  statistics_database: 3
  process_manager: intelmq
  logging_handler: file
  logging_level: INFO
  error_procedure: pass
  error_dump_message: true
  error_log_message: false
  http_proxy: null
  https_proxy: null
shadowserver-collector:
  bot_id: shadowserver-collector
  name: File
  description: Reads Shadowserver report CSVs dropped into the benchmark input directory.
  group: Collector
  groupname: collectors
  module: intelmq.bots.collectors.file.collector_file
  enabled: true
  run_mode: continuous
  parameters:
    destination_queues:
      _default: [shadowserver-parser-queue]
    path: $input
    postfix: .csv
    delete_file: true
    chunk_size: 1048576
    chunk_replicate_header: true
    rate_limit: 1
    provider: Shadowserver
shadowserver-parser:
  bot_id: shadowserver-parser
  name: Shadowserver
  description: Parses Shadowserver CSVs with the schema in VAR_STATE_PATH (report type from the file name).
  group: Parser
  groupname: parsers
  module: intelmq.bots.parsers.shadowserver.parser
  enabled: true
  run_mode: continuous
  parameters:
    destination_queues:
      _default: [asn-lookup-expert-queue]
    # feed.name from the schema (e.g. "Sinkhole-Events IPv4"), not the collector's name.
    overwrite: true
asn-lookup-expert:
  bot_id: asn-lookup-expert
  name: ASN Lookup
  description: Adds source/destination ASN and network from a pyasn database of the benchmark's routing table.
  group: Expert
  groupname: experts
  module: intelmq.bots.experts.asn_lookup.expert
  enabled: true
  run_mode: continuous
  parameters:
    destination_queues:
      _default: [file-output-queue]
    database: $state/asn_lookup/ipasn.dat
    autoupdate_cached_database: false
file-output:
  bot_id: file-output
  name: File
  description: Writes one JSON event per line.
  group: Output
  groupname: outputs
  module: intelmq.bots.outputs.file.output
  enabled: true
  run_mode: continuous
  parameters:
    file: $state/file-output/events.txt
    hierarchical_output: false
    single_key: false
YAML

cat > "$out/intelmq.env" <<ENV
export INTELMQ_ROOT_DIR=$root/
export PATH=$venv/bin:\$PATH
export INTELMQ_REDIS_PORT=$port
ENV
chown -R intelmq:intelmq "$root" "$etc" "$input"

# 6. The private redis.
if ! redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1; then
    log "starting redis-server on 127.0.0.1:$port"
    redis-server --bind 127.0.0.1 --port "$port" --save '' --appendonly no --daemonize yes \
        --dir "$out" --pidfile "$out/redis-$port.pid" --logfile "$out/redis-$port.log"
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi
redis-cli -h 127.0.0.1 -p "$port" ping >/dev/null

# 7. IntelMQ's own check of the configuration (after recording, once, that a fresh 3.x
#    configuration needs no upgrades).
# shellcheck disable=SC1091
. "$out/intelmq.env"
if [ ! -f "$root/var/lib/state.json" ]; then
    intelmqctl upgrade-config >"$out/intelmq-upgrade.log" 2>&1 || { cat "$out/intelmq-upgrade.log" >&2; exit 1; }
fi
if ! intelmqctl check --no-connections >"$out/intelmq-check.log" 2>&1; then
    if grep -q -E '\b(ERROR|CRITICAL)\b' "$out/intelmq-check.log"; then
        cat "$out/intelmq-check.log" >&2
        exit 1
    fi
fi
log "ready: INTELMQ_ROOT_DIR=$root, redis 127.0.0.1:$port (source $out/intelmq.env)"
