# Sourced by experiments/live/run_*.sh: start mocks and the gateway on free loopback ports,
# remember their PIDs, and stop exactly those on exit.
# The binary: $TOKENPOOL, or the scripts' first argument, default build/src/cli/tokenpool.

TP=${TOKENPOOL:-build/src/cli/tokenpool}
PY=${PYTHON:-python3}
LIVE=experiments/live
ADMIN_TOKEN=live-admin-token
MODEL=llama-3-8b
declare -a LIVE_PIDS=()

live_stop_all() {
  local p
  for p in "${LIVE_PIDS[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${LIVE_PIDS[@]}"; do wait "$p" 2> /dev/null || true; done
  LIVE_PIDS=()
}
trap live_stop_all EXIT
trap 'exit 130' INT TERM

# live_wait_banner LOG REGEX [PID]: waits up to 20 s for REGEX in LOG, and no longer than
# process PID lives; prints the matching line.
live_wait_banner() {
  local i
  for i in $(seq 200); do
    if grep -m1 -E "$2" "$1" 2> /dev/null; then return 0; fi
    if [[ -n ${3:-} ]] && ! kill -0 "$3" 2> /dev/null; then
      echo "process $3 exited before its banner; $1:" >&2
      cat "$1" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "no banner in $1:" >&2
  cat "$1" >&2
  return 1
}

# live_start_mock LOG PORT [mock flags...]: starts one replica; sets MOCK_PID, MOCK_PORT.
live_start_mock() {
  local log=$1 port=$2
  shift 2
  "$TP" mock --port "$port" --model "$MODEL" "$@" > "$log" 2>&1 &
  MOCK_PID=$!
  LIVE_PIDS+=("$MOCK_PID")
  local line
  line=$(live_wait_banner "$log" "listening on" "$MOCK_PID") || return 1
  MOCK_PORT=$(sed -E 's/.*listening on [^:]+:([0-9]+).*/\1/' <<< "$line")
}

# live_start_gateway LOG CONFIG: sets GW_PID, GW_PORT, ADMIN_PORT.
live_start_gateway() {
  "$TP" serve --config "$2" > "$1" 2>&1 &
  GW_PID=$!
  LIVE_PIDS+=("$GW_PID")
  local line
  line=$(live_wait_banner "$1" "tokenpool serve listening on" "$GW_PID") || return 1
  GW_PORT=$(sed -E 's/.*listening on [^:]+:([0-9]+).*/\1/' <<< "$line")
  ADMIN_PORT=$(sed -E 's/.*admin=[^:]+:([0-9]+).*/\1/' <<< "$line")
}

# live_kill PID: stops one of ours and forgets it.
live_kill() {
  local sig=${2:-TERM} p keep=()
  kill -s "$sig" "$1" 2> /dev/null || true
  wait "$1" 2> /dev/null || true
  for p in "${LIVE_PIDS[@]}"; do [[ $p == "$1" ]] || keep+=("$p"); done
  LIVE_PIDS=("${keep[@]}")
}

# Paths written into results must not name this machine: strip the repository root.
live_scrub() {
  local root
  root=$(pwd)
  sed -i "s#$root/##g; s#/tmp/[^ ]*#<tmp>#g" "$@"
}
