#!/usr/bin/env bash
# E2 bounded latency, live: the simulator's E2 scenario (sim/scenarios/e2_bounded_latency.yaml)
# against two `tokenpool mock` replicas behind `tokenpool serve`, driven by `tokenpool load`,
# at several load points with token pools and with admission disabled; then the same scenario
# in the simulator, side by side (docs/live-experiments.md).
#
# Usage: experiments/live/run_e2.sh [path/to/tokenpool]        (from anywhere)
# Environment (defaults in brackets):
#   LOADS ["0.5 1 2 3"]   load factors (x the pool's ~30 req/s for elastic and spot)
#   MODES ["token_pools none"]
#   SPEEDUP_TP [1]        mock --speedup K for the token-pool runs; the gateway gets
#                         time_scale: K, so its pools keep model time (docs/gateway.md)
#   SPEEDUP_NONE [1]      mock --speedup for the admission-disabled runs (the gateway's clock
#                         plays no part there; it gets time_scale: K as well)
#   DURATION [90] WARMUP [30] DRAIN [30]   model seconds (arrivals, unmeasured start, drain)
#   OUT [experiments/live/results/e2]
# Writes OUT/report.md, e2_live_vs_sim.csv, points.jsonl, p99_vs_load.svg and a folder per
# point (scenario files, gateway config, load rows/summary/table, simulator output).
set -euo pipefail
# A binary given by a relative path is found from where the script was started.
[[ $# -gt 0 ]] && TOKENPOOL=$(realpath -m -- "$1") && export TOKENPOOL
cd "$(dirname "$0")/../.."
source experiments/live/lib.sh

LOADS=${LOADS:-"0.5 1 2 3"}
MODES=${MODES:-"token_pools none"}
SPEEDUP_TP=${SPEEDUP_TP:-1}
SPEEDUP_NONE=${SPEEDUP_NONE:-1}
DURATION=${DURATION:-90}
WARMUP=${WARMUP:-30}
DRAIN=${DRAIN:-30}
out=${OUT:-$LIVE/results/e2}
[[ -x $TP ]] || { echo "no tokenpool binary at $TP (pass its path)" >&2; exit 2; }
rm -rf "$out"
mkdir -p "$out"
: > "$out/commands.txt"

for mode in $MODES; do
  for load in $LOADS; do
    d="$out/${mode}_$load"
    mkdir -p "$d"
    if [[ $mode == token_pools ]]; then k=$SPEEDUP_TP; dup=1; metrics=1; else k=$SPEEDUP_NONE; dup=32; metrics=0; fi
    e=$(awk "BEGIN { print 30 * $load * 0.35 }")
    s=$(awk "BEGIN { print 30 * $load * 0.40 }")
    # The pool's shape: the gateway sizes token_rate with the default workload shape
    # (WorkloadShape{}: 1,155 prompt + 211 output tokens); the simulator gets the same.
    $PY $LIVE/live.py scenario sim/scenarios/e2_bounded_latency.yaml "$d/scenario.yaml" \
      "$d/scenario_wall.yaml" --speedup "$k" --set "duration_s=$DURATION" \
      --set "warmup_s=$WARMUP" --set "drain_s=$DRAIN" --set "admission=$mode" \
      --set "pools.0.shape={mean_prompt_tokens: 1155, mean_output_tokens: 211}" \
      --tenant-rate "elastic=$e" --tenant-rate "spot=$s"
    ports=()
    for i in 0 1; do
      live_start_mock "$d/mock$i.log" 0 --profile llama-3-8b-h100 --max-model-len 8192 \
        --speedup "$k" --seed "$i" > /dev/null
      ports+=("$MOCK_PORT")
    done
    $PY $LIVE/live.py gateway-config "$d/gateway.yaml" --ports "${ports[0]},${ports[1]}" \
      --dup "$dup" --tenants guaranteed,elastic,spot --admin-token "$ADMIN_TOKEN" \
      --max-model-len 8192 --metrics "$metrics" --time-scale "$k"
    live_start_gateway "$d/gateway.log" "$d/gateway.yaml" > /dev/null
    # SLOs in model ms: the gateway's pools run on model time (time_scale).
    $PY $LIVE/live.py entitle "$ADMIN_PORT" "$ADMIN_TOKEN" "$d/scenario.yaml" --dup "$dup" \
      > "$d/entitlements.txt"
    drain=$(awk "BEGIN { print $DRAIN / $k }")
    echo "== $mode load $load speedup $k: $(date -u +%H:%M:%S)" >&2
    cmd=("$TP" load --target "127.0.0.1:$GW_PORT" --scenario "$d/scenario_wall.yaml"
      --model "$MODEL" --seed 1 --drain "$drain" --csv "$d/rows.csv" --json "$d/summary.json"
      --no-progress)
    echo "${cmd[*]}" | sed "s#127.0.0.1:$GW_PORT#127.0.0.1:GATEWAY#" >> "$out/commands.txt"
    "${cmd[@]}" > "$d/load.txt" 2>&1 || echo "load exited $? (see $d/load.txt)" >&2
    live_stop_all
  done
done
live_scrub "$out"/commands.txt "$out"/*/*.log "$out"/*/load.txt "$out"/*/gateway.yaml
# The simulator on the scenario and on the live requests, the tables and the plot.
"$LIVE/analyze_e2.sh" "$TP" "$out"
echo "wrote $out/report.md" >&2
