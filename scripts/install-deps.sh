#!/usr/bin/env bash
# Installs every build and test dependency of tokenpool from Debian 12 packages.
# Run as root. Idempotent: packages already present are skipped by apt. Quiet unless it fails.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps.sh: must run as root (it calls apt-get)" >&2
  exit 1
fi

# Boost: the 1.81 packages only. libboost-dev is 1.74 and conflicts with them.
packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev libboost-system1.81-dev
  libsimdjson-dev libyaml-cpp-dev prometheus-cpp-dev libspdlog-dev libfmt-dev libcli11-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  libssl-dev zlib1g-dev gnuplot-nox redis-server nginx-light wrk
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Node.js and npm run the official openai client against the gateway in gateway_tests. A
# machine that already has node (e.g. from NodeSource, which bundles npm) keeps it; Debian's
# nodejs 18 + npm otherwise.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

export DEBIAN_FRONTEND=noninteractive
if [ "${#missing[@]}" -gt 0 ]; then
  log=$(mktemp)
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    echo "install-deps.sh: apt-get failed installing: ${missing[*]}" >&2
    tail -40 "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi

# The openai npm client at the version pinned in its package-lock.json (no dependencies).
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
client="$root/tests/gateway/openai_client"
if [ ! -f "$client/node_modules/openai/package.json" ]; then
  log=$(mktemp)
  if ! (cd "$client" && npm ci --no-audit --no-fund) >"$log" 2>&1; then
    echo "install-deps.sh: npm ci failed in tests/gateway/openai_client" >&2
    tail -40 "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
fi
