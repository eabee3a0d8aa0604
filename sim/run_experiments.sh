#!/usr/bin/env bash
# Reruns the simulator experiments (docs/experiments.md) into sim/results/<scenario>/.
# Usage: sim/run_experiments.sh [path/to/tokenpool]   (default: build/src/cli/tokenpool)
# Run from the repository root with ../shared beside it. E1 runs the sizing search (--size);
# about 12 minutes of wall time (5 CPU-minutes) in all. Needs python3 (E2's CSV) and, for the
# plots, gnuplot.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/src/cli/tokenpool}
out=sim/results
mkdir -p "$out"
for f in sim/scenarios/e1_*.yaml; do
  name=$(basename "$f" .yaml)
  case "$name" in
    *_ema) ;;  # fixed replica counts, below
    *) "$bin" sim "$f" --out "$out/$name" --size ;;
  esac
done
# E1 routed by the learned estimators at the replica counts sized with exact token counts.
tmp=sim/scenarios/.generated.yaml
trap 'rm -f "$tmp"' EXIT
for t in code conv; do
  for e in ema linear static; do
    sed "s/^estimator: ema .*/estimator: $e/" "sim/scenarios/e1_${t}_fs_two_pool_ema.yaml" > "$tmp"
    "$bin" sim "$tmp" --out "$out/e1_estimator/${t}_fs_two_pool_$e"
  done
done
# The llama-3-70b-a100 code runs are bound by TPOT (prefill stalls); size them on TTFT alone too.
for s in homogeneous two_pool; do
  "$bin" sim "sim/scenarios/e1_code_l70_$s.yaml" --out "$out/e1_code_l70_${s}_ttft_only" \
    --size --slo-tpot-p99 10
done
# E1 boundary sweep (fleet-sim profile, conv): the two-pool scenario at other short contexts.
for b in 4096 6144 12288 16384; do
  sed "s/max_model_len: 8192/max_model_len: $b/; s/^name: \(.*\)/name: \1-boundary-$b/" \
    sim/scenarios/e1_conv_fs_two_pool.yaml > "$tmp"
  "$bin" sim "$tmp" --out "$out/e1_sweep/conv_fs_two_pool_$b" --size
done
# E2: offered load x0.5 to x3 of ~30 req/s for elastic (35%) and spot (40%); guaranteed 8 req/s.
mkdir -p "$out/e2"
csv="$out/e2/latency_vs_load.csv"
echo "load,admission,guaranteed_ttft_p99_s,elastic_ttft_p99_s,spot_ttft_p99_s,\
guaranteed_success,elastic_success,spot_success" > "$csv"
for load in 0.5 1 1.5 2 2.5 3; do
  for adm in token_pools none; do
    e=$(awk "BEGIN { print 30 * $load * 0.35 }")
    s=$(awk "BEGIN { print 30 * $load * 0.40 }")
    sed "s/rate_rps: 10.5 /rate_rps: $e /; s/rate_rps: 12.0 /rate_rps: $s /" \
      sim/scenarios/e2_bounded_latency.yaml | sed "s/^admission: token_pools/admission: $adm/" \
      > "$tmp"
    "$bin" sim "$tmp" --out "$out/e2/${load}_$adm" > /dev/null
    python3 - "$out/e2/${load}_$adm/summary.json" "$load" "$adm" >> "$csv" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = {x["name"]: x for x in d["tenants"]}
names = ["guaranteed", "elastic", "spot"]
print(",".join([sys.argv[2], sys.argv[3]] + ["%.3f" % t[n]["ttft"]["p99_s"] for n in names] +
               ["%.4f" % t[n]["success_rate"] for n in names]))
PY
  done
done
if command -v gnuplot > /dev/null; then
  gnuplot -e "dir='$out/e2'" sim/plot_e2.gp
fi
for s in e5_autoscale e5_fixed_peak; do
  "$bin" sim "sim/scenarios/$s.yaml" --out "$out/$s"
done
"$bin" sim sim/scenarios/e3_debt_fair_share.yaml --out "$out/e3_debt_fair_share"
if command -v gnuplot > /dev/null; then
  gnuplot -e "dir='$out/e3_debt_fair_share'" sim/plot_e3.gp
fi
