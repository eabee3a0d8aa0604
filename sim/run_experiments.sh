#!/usr/bin/env bash
# Reruns the simulator experiments (docs/experiments.md) into sim/results/<scenario>/.
# Usage: sim/run_experiments.sh [path/to/tokenpool] [section...]
#   (default binary build/src/cli/tokenpool; sections e1 e2 e3 e5, default all.)
# Run from the repository root with ../shared beside it. E1 runs the sizing search (--size).
# Needs python3 with PyYAML (tables, generated scenarios) and, for the plots, gnuplot.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/src/cli/tokenpool
if [[ $# -gt 0 && $1 != e[0-9]* ]]; then
  bin=$1
  shift
fi
sections=("$@")
[[ ${#sections[@]} -gt 0 ]] || sections=(e1 e2 e3 e5)
out=sim/results
mkdir -p "$out"
tmp=sim/scenarios/.generated.yaml
trap 'rm -f "$tmp"' EXIT

e1() {
  for f in sim/scenarios/e1_*.yaml; do
    name=$(basename "$f" .yaml)
    case "$name" in
      *_ema) ;;  # fixed replica counts, below
      *) "$bin" sim "$f" --out "$out/$name" --size ;;
    esac
  done
  # E1 routed by the learned estimators at the replica counts sized with exact token counts.
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
}

e2() {
  # E2: offered load x0.5 to x3 of ~30 req/s for elastic (35%) and spot (40%); guaranteed 8 req/s;
  # under each admission mode (token pools and the baselines).
  mkdir -p "$out/e2"
  csv="$out/e2/latency_vs_load.csv"
  head="load,admission,guaranteed_ttft_p99_s,elastic_ttft_p99_s,spot_ttft_p99_s"
  echo "$head,guaranteed_success,elastic_success,spot_success,guaranteed_slo_met,completed_rps" \
    > "$csv"
  for load in 0.5 1 1.5 2 2.5 3; do
    for adm in token_pools none request_rate token_rate dedicated request_rate_x2 token_rate_x2; do
      e=$(awk "BEGIN { print 30 * $load * 0.35 }")
      s=$(awk "BEGIN { print 30 * $load * 0.40 }")
      # *_x2: the rate limits doubled (sold twice over, as per-customer limits usually are).
      x2="s/16, tokens_per_s: 22000/32, tokens_per_s: 44000/"
      x2="$x2; s/12, tokens_per_s: 16500/24, tokens_per_s: 33000/"
      [[ $adm == *_x2 ]] || x2=""
      sed "s/rate_rps: 10.5 /rate_rps: $e /; s/rate_rps: 12.0 /rate_rps: $s /; $x2" \
        sim/scenarios/e2_bounded_latency.yaml |
        sed "s/^admission: token_pools/admission: ${adm%_x2}/" > "$tmp"
      "$bin" sim "$tmp" --out "$out/e2/${load}_$adm" > /dev/null
      python3 - "$out/e2/${load}_$adm/summary.json" "$load" "$adm" >> "$csv" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
t = {x["name"]: x for x in d["tenants"]}
names = ["guaranteed", "elastic", "spot"]
p99 = lambda x: "%.3f" % x["ttft"]["p99_s"] if x["completed"] > 0 else "-1.000"
g = t["guaranteed"]
window = d["duration_s"] - d["warmup_s"]
print(",".join([sys.argv[2], sys.argv[3]] + [p99(t[n]) for n in names] +
               ["%.4f" % t[n]["success_rate"] for n in names] +
               ["%.4f" % (g["slo_met"] / max(1, g["arrivals"])),
                "%.2f" % (d["overall"]["completed"] / window)]))
PY
    done
  done
  python3 - "$csv" > "$out/e2/report.md" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
modes = ["token_pools", "none", "request_rate", "token_rate", "dedicated", "request_rate_x2",
         "token_rate_x2"]
def cell(r, c):
    p = float(r[c + "_ttft_p99_s"])
    return ("—" if p < 0 else "%.2f" % p) + " (%.1f%%)" % (100 * float(r[c + "_success"]))
print("# E2 bounded latency: P99 TTFT of completed requests, s (success rate)\n")
print("Written by sim/run_experiments.sh from latency_vs_load.csv; plot latency_vs_load.svg.\n")
for c in ["guaranteed", "elastic", "spot"]:
    print("## %s\n" % c)
    print("| load | " + " | ".join(modes) + " |")
    print("|---" * (len(modes) + 1) + "|")
    for load in sorted({r["load"] for r in rows}, key=float):
        by = {r["admission"]: r for r in rows if r["load"] == load}
        print("| %s | " % load + " | ".join(cell(by[m], c) for m in modes) + " |")
    print()
print("## guaranteed requests within their 2 s TTFT, and completed req/s (all tenants)\n")
print("| load | " + " | ".join(modes) + " |")
print("|---" * (len(modes) + 1) + "|")
for load in sorted({r["load"] for r in rows}, key=float):
    by = {r["admission"]: r for r in rows if r["load"] == load}
    print("| %s | " % load + " | ".join("%.1f%%, %s" % (100 * float(by[m]["guaranteed_slo_met"]),
                                                         by[m]["completed_rps"]) for m in modes) + " |")
PY
  if command -v gnuplot > /dev/null; then
    gnuplot -e "dir='$out/e2'" sim/plot_e2.gp
  fi
}

e3() {
  "$bin" sim sim/scenarios/e3_debt_fair_share.yaml --out "$out/e3_debt_fair_share"
  if command -v gnuplot > /dev/null; then
    gnuplot -e "dir='$out/e3_debt_fair_share'" sim/plot_e3.gp
  fi
}

e5() {
  for s in e5_autoscale e5_fixed_peak; do
    "$bin" sim "sim/scenarios/$s.yaml" --out "$out/$s"
  done
}

for section in "${sections[@]}"; do
  "$section"
done
