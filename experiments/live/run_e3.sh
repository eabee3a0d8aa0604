#!/usr/bin/env bash
# E3 debt fair share, live: the simulator's E3 tenants (sim/scenarios/e3_debt_fair_share.yaml)
# on a compressed timeline, against two `tokenpool mock` replicas behind `tokenpool serve`:
# a replica's process is killed (SIGKILL) at FAIL_S and started again on the same port at
# BACK_S; the third tenant's entitlement is created through POST /admin/entitlements at JOIN_S
# (its arrivals start then). GET /admin/tenants is sampled every second. Then the same
# scenario in the simulator (capacity_events at FAIL_S and BACK_S), side by side
# (docs/live-experiments.md).
#
# Usage: experiments/live/run_e3.sh [path/to/tokenpool]
# Environment: DURATION [330] FAIL_S [60] BACK_S [150] JOIN_S [180] DRAIN [30] (model seconds),
#   SPEEDUP [1] (mock --speedup K and the gateway's time_scale: K; wall seconds = model / K),
#   OUT [experiments/live/results/e3].
set -euo pipefail
# A binary given by a relative path is found from where the script was started.
[[ $# -gt 0 ]] && TOKENPOOL=$(realpath -m -- "$1") && export TOKENPOOL
cd "$(dirname "$0")/../.."
source experiments/live/lib.sh

DURATION=${DURATION:-330}
FAIL_S=${FAIL_S:-60}
BACK_S=${BACK_S:-150}
JOIN_S=${JOIN_S:-180}
DRAIN=${DRAIN:-30}
k=${SPEEDUP:-1}
out=${OUT:-$LIVE/results/e3}
[[ -x $TP ]] || { echo "no tokenpool binary at $TP (pass its path)" >&2; exit 2; }
rm -rf "$out"
mkdir -p "$out"
: > "$out/commands.txt"

# The gateway sizes token_rate with the default workload shape; the simulator gets the same.
$PY $LIVE/live.py scenario sim/scenarios/e3_debt_fair_share.yaml "$out/scenario.yaml" \
  "$out/scenario_wall.yaml" --speedup $k --set "duration_s=$DURATION" --set "drain_s=$DRAIN" \
  --set "pools.0.shape={mean_prompt_tokens: 1155, mean_output_tokens: 211}" \
  --set "capacity_events=[{at_s: $FAIL_S, pool: shared, replicas: 1}, {at_s: $BACK_S, pool: shared, replicas: 2}]" \
  --set "tenants.2.arrivals.start_s=$JOIN_S"

mock_flags=(--profile llama-3-8b-h100 --max-model-len 16384 --speedup $k)
live_start_mock "$out/mock0.log" 0 "${mock_flags[@]}" --seed 0 > /dev/null
port0=$MOCK_PORT
live_start_mock "$out/mock1.log" 0 "${mock_flags[@]}" --seed 1 > /dev/null
port1=$MOCK_PORT
pid1=$MOCK_PID
tenants=elastic-copilot,elastic-synth,analytics-reports
$PY $LIVE/live.py gateway-config "$out/gateway.yaml" --ports "$port0,$port1" \
  --tenants "$tenants" --admin-token "$ADMIN_TOKEN" --max-model-len 16384 --time-scale $k
live_start_gateway "$out/gateway.log" "$out/gateway.yaml" > /dev/null
$PY $LIVE/live.py entitle "$ADMIN_PORT" "$ADMIN_TOKEN" "$out/scenario.yaml" \
  --skip analytics-reports > "$out/entitlements.txt"

$PY $LIVE/live.py sample "$ADMIN_PORT" "$ADMIN_TOKEN" "$out/admin_samples.jsonl" &
LIVE_PIDS+=($!)
sampler_start=$(date +%s.%N)
cmd=("$TP" load --target "127.0.0.1:$GW_PORT" --scenario "$out/scenario_wall.yaml" --model "$MODEL"
  --seed 1 --drain "$(awk "BEGIN { print $DRAIN / $k }")" --csv "$out/rows.csv" --json "$out/summary.json" --no-progress)
echo "${cmd[*]}" | sed "s#127.0.0.1:$GW_PORT#127.0.0.1:GATEWAY#" >> "$out/commands.txt"
"${cmd[@]}" > "$out/load.txt" 2>&1 &
load_pid=$!
LIVE_PIDS+=("$load_pid")
t0=$(date +%s.%N)
offset=$(awk "BEGIN { print $t0 - $sampler_start }")
echo "admin sampler started $offset s before the load process" >> "$out/events.txt"
# Sleeps until model second $1 of the load (wall: t0 + $1 / K).
at() { sleep "$(awk "BEGIN { d = $t0 + $1 / $k - $(date +%s.%N); print (d > 0 ? d : 0) }")"; }

at "$FAIL_S"
echo "== $(date -u +%H:%M:%S) t=$FAIL_S: SIGKILL replica 1 (port $port1)" | tee -a "$out/events.txt" >&2
live_kill "$pid1" KILL
# The pools learn of it from the failed /metrics reads and connects (capacity follows healthy
# instances). No config rewrite: a reload would now be accepted (backends reload), and its
# file's `entitlements: []` would replace the ones posted through the admin API.
at "$BACK_S"
echo "== $(date -u +%H:%M:%S) t=$BACK_S: replica 1 started again on port $port1" | tee -a "$out/events.txt" >&2
live_start_mock "$out/mock1_restarted.log" "$port1" "${mock_flags[@]}" --seed 1 > /dev/null
# Its arrivals start at JOIN_S: posted 2 wall seconds before (2 K model seconds).
join_at=$(awk "BEGIN { print $JOIN_S - 2 * $k }")
at "$join_at"
echo "== $(date -u +%H:%M:%S) t=$join_at: POST /admin/entitlements analytics-reports" | tee -a "$out/events.txt" >&2
$PY $LIVE/live.py entitle "$ADMIN_PORT" "$ADMIN_TOKEN" "$out/scenario.yaml" \
  --only analytics-reports >> "$out/entitlements.txt"
wait "$load_pid" || echo "load exited $? (see $out/load.txt)" >&2
live_stop_all

"$TP" sim "$out/scenario.yaml" --out "$out/sim" > /dev/null
echo "$TP sim $out/scenario.yaml --out $out/sim" >> "$out/commands.txt"
$PY $LIVE/live.py replay "$out/scenario.yaml" "$out/rows.csv" "$out/replay" --speedup $k
"$TP" sim "$out/replay/scenario.yaml" --out "$out/sim_replay" > /dev/null
{
  echo "$PY $LIVE/live.py replay $out/scenario.yaml $out/rows.csv $out/replay --speedup $k"
  echo "$TP sim $out/replay/scenario.yaml --out $out/sim_replay"
} >> "$out/commands.txt"
phases="[[0, $FAIL_S, \"two replicas\"], [$((FAIL_S + 10)), $BACK_S, \"one replica\"],"
phases="$phases [$BACK_S, $JOIN_S, \"recovered\"], [$((JOIN_S + 20)), $DURATION, \"three tenants\"]]"
$PY $LIVE/live.py e3-report "$out" "$out/scenario.yaml" --speedup $k --sampler-offset "$offset" \
  --phases "$phases"
if command -v gnuplot > /dev/null; then
  gnuplot -e "dir='$out'; fail=$FAIL_S; back=$BACK_S; join=$JOIN_S; end=$DURATION" \
    $LIVE/plot_e3.gp
fi
live_scrub "$out"/commands.txt "$out"/*.log "$out"/load.txt "$out"/events.txt
gzip -f "$out/rows.csv"  # live.py reads rows.csv.gz too
echo "wrote $out/report.md" >&2
