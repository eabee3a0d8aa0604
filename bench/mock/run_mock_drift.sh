#!/usr/bin/env bash
# Does the mock keep model time when its step timer wakes late? Four streaming requests of 400
# tokens, one after another, against `tokenpool mock` at speedup 1: prints the wall time (curl)
# and the engine's own end-to-end sum (vllm:e2e_request_latency_seconds_sum, model time). On a
# loaded machine a mock that starts each step at the late wake-up shows a larger model sum for
# the same work; compare builds run in the same minutes.
# Usage: bench/mock/run_mock_drift.sh [path/to/tokenpool]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/src/cli/tokenpool}
tmp=$(mktemp -d)
"$bin" mock --port 0 >"$tmp/mock.out" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do grep -q "listening on" "$tmp/mock.out" && break; sleep 0.05; done
port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$tmp/mock.out" | sed 's/.*://')
model=$(grep -o 'model=[^ ]*' "$tmp/mock.out" | sed 's/model=//')
wall=0
for _ in 1 2 3 4; do
  t=$(curl -s -o /dev/null -w "%{time_total}" "http://127.0.0.1:$port/v1/chat/completions" \
    -H 'content-type: application/json' \
    -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi there\"}],\"max_tokens\":400,\"stream\":true}")
  wall=$(python3 -c "print($wall + $t)")
done
sum=$(curl -s "http://127.0.0.1:$port/metrics" | awk '/^vllm:e2e_request_latency_seconds_sum/ {print $2}')
python3 -c "print('wall %.3f s, engine e2e sum %.3f s, wall/engine %.4f' % ($wall, $sum, $wall / $sum))"
