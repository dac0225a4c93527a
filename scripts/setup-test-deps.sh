#!/usr/bin/env bash
# Installs everything the test suite needs that cargo does not fetch. Idempotent: a second run
# installs nothing. Each area lists its needs in scripts/deps/<area>.apt (Debian packages, one
# per line) and scripts/deps/<area>.pip (PyPI requirements, one per line); Python packages go
# into .venv-test at the repository root (tests find it through KIZUNA_TEST_VENV or that path).
set -euo pipefail
cd "$(dirname "$0")/.."

shopt -s nullglob
want_apt=()
for f in scripts/deps/*.apt; do
  while read -r pkg _; do
    case "$pkg" in ''|'#'*) continue ;; esac
    want_apt+=("$pkg")
  done < "$f"
done
need_apt=()
for pkg in "${want_apt[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need_apt+=("$pkg")
done
if [ "${#need_apt[@]}" -gt 0 ]; then
  echo "setup-test-deps: installing Debian packages: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

pip_files=(scripts/deps/*.pip)
if [ "${#pip_files[@]}" -gt 0 ]; then
  venv=.venv-test
  stamp="$venv/.kizuna-requirements"
  want=$(cat "${pip_files[@]}" | grep -v '^\s*#' | grep -v '^\s*$' | sort -u)
  if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
  fi
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    echo "setup-test-deps: installing Python packages into $venv"
    "$venv/bin/pip" install -q --disable-pip-version-check $want
    printf '%s' "$want" > "$stamp"
  fi
fi

# The browser tests' driver (playwright-core, pinned by tests/browser/package-lock.json); the
# browser itself is Debian's chromium from the apt lists above, never a download.
if [ -f tests/browser/package-lock.json ] && [ ! -f tests/browser/node_modules/playwright-core/package.json ]; then
  echo "setup-test-deps: npm ci in tests/browser"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi
