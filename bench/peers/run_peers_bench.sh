#!/usr/bin/env bash
# The same load against the mock directly, nginx, the Portkey AI gateway and tokenpool, in one
# run (issue 7, deliverable 4): throughput, added latency P50/P99 and CPU per request, as ratios
# to the direct run. The harness is bench/gateway/gateway_bench.py with --portkey.
# Needs: `npm ci` in bench/peers/portkey (node_modules is not committed).
# Usage: bench/peers/run_peers_bench.sh [build-dir] [rounds] [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -d bench/peers/portkey/node_modules ]; then
  (cd bench/peers/portkey && npm ci --no-audit --no-fund >/dev/null)
fi
exec python3 bench/gateway/gateway_bench.py --portkey "$@"
