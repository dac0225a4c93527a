#!/usr/bin/env bash
# Installs everything the test suite needs that cargo does not fetch. Idempotent: a second run
# installs nothing. Debian packages come from apt; Python packages go into .venv-test.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# (packages are added here as features that test against real peers land)
for pkg in "$@"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
