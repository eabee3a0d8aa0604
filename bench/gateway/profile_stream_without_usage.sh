#!/usr/bin/env bash
# User-space instructions per streamed request whose client did not ask for usage (the gateway
# adds include_usage upstream, reads the usage chunk and takes it and the nulls out again), the
# path `run_gateway_profile.sh` does not take: `tokenpool load` always asks for usage.
# One keep-alive client sends 300 sequential streamed chat requests (24 tokens each) to
# `tokenpool serve` (bench_configs.py's config, /metrics reads every 30 s) in front of
# `tokenpool mock --instant`; callgrind counts the gateway from the second request on.
# Usage: bench/gateway/profile_stream_without_usage.sh [tokenpool-binary]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/src/cli/tokenpool}
for tool in valgrind callgrind_annotate callgrind_control python3; do
  command -v "$tool" >/dev/null ||
    { echo "profile_stream_without_usage: $tool not found" >&2; exit 1; }
done
T=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$T"' EXIT
"$bin" mock --port 0 --instant >"$T/mock.out" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$T/mock.out" && break; sleep 0.05; done
mp=$(grep -o 'listening on [0-9.]*:[0-9]*' "$T/mock.out" | sed 's/.*://')
model=$(grep -o 'model=[^ ]*' "$T/mock.out" | sed 's/model=//')
{ echo "backend_metrics: {interval_s: 30}"
  python3 bench/gateway/bench_configs.py gateway "$mp" "$model" sk-bench; } >"$T/gw.yaml"
valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$T/cg" \
  "$bin" serve --config "$T/gw.yaml" >"$T/gw.out" 2>"$T/gw.err" &
gw=$!
pids+=("$gw")
for _ in $(seq 400); do grep -q "listening on" "$T/gw.out" 2>/dev/null && break; sleep 0.05; done
gp=$(grep -o 'listening on [0-9.]*:[0-9]*' "$T/gw.out" | head -1 | sed 's/.*://')
n=300
python3 - "$gp" "$model" "$gw" "$n" <<'PY'
import http.client, json, subprocess, sys
port, model, pid, n = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
c = http.client.HTTPConnection("127.0.0.1", port)
body = json.dumps({"model": model, "stream": True, "max_tokens": 24, "messages": [
    {"role": "user", "content": "Write a haiku about token pools and GPUs, please."}]})
for i in range(n + 1):
    if i == 1:  # the first request's one-time costs (key digest set-up, buffers) left out
        subprocess.run(["callgrind_control", "-i", "on", pid], check=True, capture_output=True)
    c.request("POST", "/v1/chat/completions", body,
              {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"})
    r = c.getresponse()
    data = r.read()
    if r.status != 200 or b"usage" in data or not data.endswith(b"data: [DONE]\n\n"):
        sys.exit(f"unexpected answer {r.status}: {data[:300]!r}")
PY
kill -TERM "$gw"
wait "$gw" 2>/dev/null || true
total=$(callgrind_annotate "$T/cg" 2>/dev/null |
  awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
echo "tokenpool (stream, no include_usage): $n requests, $total instructions," \
  "$((total / n)) per request"
