#!/usr/bin/env bash
# (Re)does the simulator side and the report of a live E2 run from its folders (run_e2.sh
# calls it; it can be rerun alone): per point the scenario's own prediction (sim/), the
# simulator on exactly the requests the live run sent (replay/, sim_replay/), points.jsonl,
# report.md, e2_live_vs_sim.csv and the plot.
# Usage: experiments/live/analyze_e2.sh [path/to/tokenpool] [results dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
TP=${1:-${TOKENPOOL:-build/src/cli/tokenpool}}
out=${2:-experiments/live/results/e2}
PY=${PYTHON:-python3}
LIVE=experiments/live
: > "$out/points.jsonl"
: > "$out/sim_commands.txt"
for d in "$out"/token_pools_* "$out"/none_*; do
  [[ -f $d/rows.csv || -f $d/rows.csv.gz ]] || continue
  name=$(basename "$d")
  mode=${name%_*}
  load=${name##*_}
  k=$(sed -nE 's/.*speedup ([0-9.]*[0-9]).*/\1/p' "$d/scenario_wall.yaml" | head -1)
  "$TP" sim "$d/scenario.yaml" --out "$d/sim" > /dev/null
  $PY $LIVE/live.py replay "$d/scenario.yaml" "$d/rows.csv" "$d/replay" --speedup "$k"
  "$TP" sim "$d/replay/scenario.yaml" --out "$d/sim_replay" > /dev/null
  {
    echo "$TP sim $d/scenario.yaml --out $d/sim"
    echo "$PY $LIVE/live.py replay $d/scenario.yaml $d/rows.csv $d/replay --speedup $k"
    echo "$TP sim $d/replay/scenario.yaml --out $d/sim_replay"
  } >> "$out/sim_commands.txt"
  $PY $LIVE/live.py point "$d/rows.csv" "$d/sim/summary.json" "$d/scenario.yaml" \
    --replay "$d/sim_replay/summary.json" --speedup "$k" --label "$name" \
    --extra "admission=$mode" --extra "load=$load" >> "$out/points.jsonl"
done
$PY $LIVE/live.py e2-report "$out"
for d in "$out"/*/; do if [[ -f $d/rows.csv ]]; then gzip -f "$d/rows.csv"; fi; done  # 1 MB -> 0.2
if command -v gnuplot > /dev/null; then
  gnuplot -e "dir='$out'" $LIVE/plot_e2.gp
fi
