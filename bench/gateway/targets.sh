# Sourced by saturation.sh and kernel_profile.sh: the targets placed as gateway_bench.py places
# them, `tokenpool mock --instant` on CPU 0 and each proxy alone on CPU 1, with the configs of
# bench_configs.py (64 replicas of 1,024 tokens of context, a guarantee above what the mock can
# serve, the request log on, to a file).
# Expects T (a scratch directory), A (a tokenpool binary), B (a second one, or empty) and the
# array pids (what the caller's exit trap kills).

wait_line() {
  for _ in $(seq 200); do grep -q "listening on" "$1" && return 0; sleep 0.05; done
  echo "no start: $1" >&2
  cat "$1" >&2
  exit 1
}
port_of() { grep -o 'listening on [0-9.]*:[0-9]*' "$1" | head -1 | sed 's/.*://'; }

# start_targets [HOOK]: starts the mock, nginx, A and B (when set), calling `HOOK PID NAME` for
# each proxy once it listens. Sets MOCK (the mock's PID), model, names ("nginx A" or
# "nginx A B"), PORT[name] and PID[name], and writes wrk's script to $T/p.lua.
declare -A PORT PID
start_targets() {
  local hook=${1:-true} mp np v bin
  taskset -c 0 "$A" mock --port 0 --instant >"$T/mock.out" 2>&1 &
  MOCK=$!
  pids+=("$MOCK")
  wait_line "$T/mock.out"
  mp=$(port_of "$T/mock.out")
  model=$(grep -o 'model=[^ ]*' "$T/mock.out" | head -1 | sed 's/model=//')
  python3 bench/gateway/bench_configs.py gateway "$mp" "$model" sk-bench >"$T/gw.yaml"
  np=$(python3 -c \
    'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 bench/gateway/bench_configs.py nginx "$T" "$mp" "$np" >"$T/nginx.conf"
  # master_process off: the one nginx process serves.
  taskset -c 1 nginx -p "$T" -c "$T/nginx.conf" >"$T/nginx.out" 2>&1 &
  pids+=($!)
  PORT[nginx]=$np
  PID[nginx]=$!
  "$hook" "${PID[nginx]}" nginx
  names="nginx"
  for v in A B; do
    bin=${!v}
    [ -z "$bin" ] && continue
    taskset -c 1 "$bin" serve --config "$T/gw.yaml" >"$T/gw$v.out" 2>"$T/gw$v.err" &
    PID[$v]=$!
    pids+=($!)
    wait_line "$T/gw$v.out"
    "$hook" "${PID[$v]}" "$v"
    PORT[$v]=$(port_of "$T/gw$v.out")
    names="$names $v"
  done
  python3 bench/gateway/bench_configs.py lua "$model" sk-bench >"$T/p.lua"
}
