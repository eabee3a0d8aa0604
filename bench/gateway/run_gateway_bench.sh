#!/usr/bin/env bash
# tokenpool serve side by side with nginx in front of the same mock, in one run: maximum
# throughput, added latency P50/P99 at 1,000 and 5,000 req/s, and CPU per request.
# Details in gateway_bench.py; results and how to read them in docs/benchmarks.md.
# Usage: bench/gateway/run_gateway_bench.sh [build-dir] [rounds] [seconds] [--mock-with-proxy]
#                                           [--busy-poll-us=N]
set -euo pipefail
cd "$(dirname "$0")/../.."
exec python3 bench/gateway/gateway_bench.py "$@"
