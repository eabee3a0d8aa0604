#!/usr/bin/env bash
# Counts that do not depend on how busy the machine is, for tokenpool serve and for nginx in
# front of the same `tokenpool mock --instant`, over the same open-loop streaming load
# (tokenpool load, 100 req/s for 10 s, Poisson, ~100-token prompts and 8-31 output tokens):
#   * user-space instructions per request (valgrind --tool=callgrind, the whole process from the
#     moment it listens, start-up excluded: --instr-atstart=no and callgrind_control -i on),
#     divided by the requests completed; for the streaming load above and for a non-streaming
#     one (wrk, 8 keep-alive connections, 5 s: the max-throughput bench's request);
#   * system calls per request by kind (strace -c -f).
# One worker each (tokenpool workers: 1; nginx worker_processes 1, master off); request log on
# for both (tokenpool's to a file, nginx's access log). Backend /metrics reads are on for
# tokenpool (nginx has no equivalent) every 30 s: one read a second per listed backend would be
# 32 reads a second here, all to the same mock, a third of the requests of the streaming load.
# Usage: bench/gateway/run_gateway_profile.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
bin="$build/src/cli/tokenpool"
[ -x "$bin" ] || { echo "run_gateway_profile: $bin not found; build first" >&2; exit 1; }
for tool in valgrind strace callgrind_annotate callgrind_control wrk; do
  command -v "$tool" >/dev/null || { echo "run_gateway_profile: $tool not found (apt-get install valgrind strace)" >&2; exit 1; }
done
nginx=$(command -v nginx || echo /usr/sbin/nginx)
tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$tmp"; }
trap cleanup EXIT

"$bin" mock --port 0 --instant >"$tmp/mock.out" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do grep -q "listening on" "$tmp/mock.out" && break; sleep 0.05; done
mock_port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$tmp/mock.out" | sed 's/.*://')
model=$(grep -o 'model=[^ ]*' "$tmp/mock.out" | sed 's/model=//')
printf "num_prefill_tokens,num_decode_tokens\n" >"$tmp/t.csv"
for i in $(seq 0 199); do echo "$((40 + (i * 37) % 120)),$((8 + (i * 11) % 24))" >>"$tmp/t.csv"; done
digest=$(printf %s sk-bench | sha256sum | cut -d' ' -f1)
# Its own gateway config, not bench_configs.py's (the figures in docs/benchmarks.md were counted
# with this one): the mock stands for 32 replicas and the tenant's guarantee for most of them, so that the
# token pool admits wrk's unpaced requests at once (with one replica's 20K tokens/s they queued).
url=$(for _ in $(seq 1 32); do printf '"http://127.0.0.1:%s",' "$mock_port"; done)
url=${url%,}
cat >"$tmp/gw.yaml" <<EOF
listen: {host: 127.0.0.1, port: 0}
workers: 1
backend_metrics: {interval_s: 30}
models: [$model]
pools:
  - {name: main, model: $model, profile: llama-3-8b-h100, max_model_len: 8192, backends: [$url]}
tenants:
  - {name: bench, keys: [$digest]}
entitlements:
  - {tenant: bench, pool: main, class: guaranteed, guarantee: {token_rate: 600000, kv_tokens: 600000, concurrency: 1000}}
EOF
nginx_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 bench/gateway/bench_configs.py nginx "$tmp" "$mock_port" "$nginx_port" >"$tmp/nginx.conf"
python3 bench/gateway/bench_configs.py lua "$model" sk-bench >"$tmp/post.lua"

# measure NAME MODE LOAD: starts NAME (tokenpool|nginx) under MODE (callgrind|strace), applies
# LOAD (stream|plain), stops it and prints the counts per request.
measure() {
  local name=$1 mode=$2 kind=${3:-stream}
  local wrap=()
  case $mode in
    callgrind) wrap=(valgrind --tool=callgrind --instr-atstart=no "--callgrind-out-file=$tmp/$name.cg") ;;
    strace) wrap=(strace -c -f -o "$tmp/$name.strace") ;;
  esac
  local port
  if [ "$name" = tokenpool ]; then
    "${wrap[@]}" "$bin" serve --config "$tmp/gw.yaml" >"$tmp/gw.out" 2>"$tmp/gw.err" &
    local pid=$!
    for _ in $(seq 1 400); do grep -q "listening on" "$tmp/gw.out" 2>/dev/null && break; sleep 0.05; done
    port=$(grep -o 'listening on [0-9.]*:[0-9]*' "$tmp/gw.out" | sed 's/.*://')
  else
    "${wrap[@]}" "$nginx" -p "$tmp" -c "$tmp/nginx.conf" >"$tmp/nginx.out" 2>&1 &
    local pid=$!
    for _ in $(seq 1 400); do [ -s "$tmp/nginx.pid" ] && break; sleep 0.05; done
    sleep 1
    port=$nginx_port
  fi
  # PROFILE_WARMUP_S=N: N seconds of the plain load before counting starts (callgrind), so that
  # what is counted is the steady state (the estimator past its full-learning reports).
  if [ "$mode" = callgrind ] && [ "$kind" = plain ] && [ "${PROFILE_WARMUP_S:-0}" != 0 ]; then
    wrk -t1 -c8 -d"${PROFILE_WARMUP_S}s" -s "$tmp/post.lua" "http://127.0.0.1:$port" >"$tmp/warm.out"
    echo "$name ($kind): warm-up $(awk '/requests in/ {print $1}' "$tmp/warm.out") requests, not counted"
  fi
  if [ "$mode" = callgrind ]; then callgrind_control -i on "$pid" >/dev/null; fi
  local n
  if [ "$kind" = stream ]; then
    "$bin" load --target "127.0.0.1:$port" --trace "$tmp/t.csv" --process poisson --rate 100 \
      --duration 10 --key "b=sk-bench" --model "$model" --quiet --json "$tmp/l.json"
    n=$(python3 -c "import json;print(json.load(open('$tmp/l.json'))['completed'])")
  else
    wrk -t1 -c8 -d5s -s "$tmp/post.lua" "http://127.0.0.1:$port" >"$tmp/wrk.out"
    if grep -q "Non-2xx" "$tmp/wrk.out"; then cat "$tmp/wrk.out" >&2; exit 1; fi
    n=$(awk '/requests in/ {print $1}' "$tmp/wrk.out")
  fi
  # The process itself: under strace, $pid is strace's and the target is its child.
  local target=$pid
  if [ "$mode" = strace ]; then target=$(pgrep -P "$pid" | head -1); fi
  if [ "$name" = tokenpool ]; then kill -TERM "$target"; else kill -QUIT "$(cat "$tmp/nginx.pid")"; fi
  wait "$pid" 2>/dev/null || true
  rm -f "$tmp/nginx.pid"
  if [ "$mode" = callgrind ]; then
    local total
    total=$(callgrind_annotate "$tmp/$name.cg" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
    echo "$name ($kind): $n requests, $total instructions, $((total / n)) per request"
  else
    echo "$name ($kind): $n requests; system calls per request:"
    awk -v n="$n" 'NR > 2 && $NF != "total" && $4 ~ /^[0-9]+$/ { printf "  %-14s %6.2f\n", $NF, $4 / n }' \
      "$tmp/$name.strace" | sort -k2 -nr | head -8
  fi
}

# PROFILE_KEEP=DIR keeps the callgrind files (for callgrind_annotate) in DIR. PROFILE_TARGETS
# and PROFILE_KINDS narrow the runs (default "tokenpool nginx" and "stream plain").
# PROFILE_WARMUP_S: see measure (default 0: counting starts with the first request).
targets=${PROFILE_TARGETS:-tokenpool nginx}
kinds=${PROFILE_KINDS:-stream plain}
keep() {
  if [ -n "${PROFILE_KEEP:-}" ]; then mkdir -p "$PROFILE_KEEP"; cp "$tmp/$1.cg" "$PROFILE_KEEP/$1-$2.cg"; fi
}
echo "== user-space instructions (callgrind) =="
for kind in $kinds; do
  for t in $targets; do measure "$t" callgrind "$kind"; keep "$t" "$kind"; done
done
echo "== system calls (strace -c -f) =="
for kind in $kinds; do
  for t in $targets; do measure "$t" strace "$kind"; done
done
