#!/usr/bin/env bash
# Reruns the simulator experiments (docs/experiments.md) into sim/results/<scenario>/.
# Usage: sim/run_experiments.sh [path/to/tokenpool] [section...]
#   (default binary build/src/cli/tokenpool; sections e1 e1_reliability e2 e3 e4 e5, default all,
#   in that order; e1_reliability reads e1's sized fleets.)
# Run from the repository root with ../shared beside it. E1 and E4 run the sizing search
# (--size). Needs python3 with PyYAML (tables, generated scenarios) and, for the plots, gnuplot.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=build/src/cli/tokenpool
if [[ $# -gt 0 && $1 != e[0-9]* ]]; then
  bin=$1
  shift
fi
sections=("$@")
[[ ${#sections[@]} -gt 0 ]] || sections=(e1 e1_reliability e2 e3 e4 e5)
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

e1_reliability() {
  # E1 reliability at 90% utilization (fleet-sim profile): each sized fleet of e1 resized so
  # that its token pools run at 90% mean utilization (per pool: ceil(replicas x measured
  # utilization / 0.9), at least 1), then run with token pools and without admission control.
  mkdir -p "$out/e1_reliability"
  for t in code conv sharegpt; do
    for c in homogeneous two_pool; do
      for adm in token_pools none; do
        python3 - "sim/scenarios/e1_${t}_fs_$c.yaml" "$out/e1_${t}_fs_$c" "$adm" > "$tmp" <<'PY'
import csv, json, math, sys, yaml
sc = yaml.safe_load(open(sys.argv[1]))
d = json.load(open(sys.argv[2] + "/summary.json"))
rows = list(csv.DictReader(open(sys.argv[2] + "/timeseries.csv")))
for i, p in enumerate(sc["pools"]):
    n = d["sizing"]["replicas"][i]
    u = [float(r[p["name"] + "_utilization"]) for r in rows
         if d["warmup_s"] < float(r["t_s"]) <= d["duration_s"]]
    p["replicas"] = max(1, math.ceil(n * (sum(u) / len(u)) / 0.9 - 1e-9))
sc["name"] += "-util90-" + sys.argv[3]
sc["admission"] = sys.argv[3]
print(yaml.safe_dump(sc, sort_keys=False))
PY
        "$bin" sim "$tmp" --out "$out/e1_reliability/${t}_${c}_$adm" > /dev/null
      done
    done
  done
  python3 - "$out/e1_reliability" > "$out/e1_reliability/report.md" <<'PY'
import csv, json, os, sys
base = sys.argv[1]
w = csv.writer(open(base + "/reliability.csv", "w", newline=""))
cols = ["trace", "fleet", "admission", "replicas", "gpus", "utilization", "requests",
        "preemptions_per_1k", "refused", "expired", "success", "ttft_p50_s", "ttft_p99_s",
        "tpot_p50_ms", "tpot_p99_ms"]
w.writerow(cols)
print("# E1 reliability at 90% utilization (fleetsim-a100, 1,000 req/s)\n")
print("Written by sim/run_experiments.sh (section e1_reliability). Replicas: the sized fleet of")
print("e1_<trace>_fs_<fleet> scaled so that its token pools run at 90% mean utilization;")
print("utilization: the token pools' busiest dimension, mean over the measured samples (not")
print("measured without admission control). Latencies over completed requests.\n")
print("| trace | fleet | admission | replicas | utilization | preempt/1k | refused | expired | "
      "success | TTFT P50/P99 s | TPOT P50/P99 ms |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for t in ["code", "conv", "sharegpt"]:
    for f in ["homogeneous", "two_pool"]:
        for a in ["token_pools", "none"]:
            d = json.load(open("%s/%s_%s_%s/summary.json" % (base, t, f, a)))
            rows = list(csv.DictReader(open("%s/%s_%s_%s/timeseries.csv" % (base, t, f, a))))
            reps = [p["replicas_initial"] for p in d["pools"]]
            util = []
            for name in [p["stats"]["name"] for p in d["pools"]]:
                u = [float(r[name + "_utilization"]) for r in rows
                     if d["warmup_s"] < float(r["t_s"]) <= d["duration_s"]]
                util.append(sum(u) / len(u))
            o = d["overall"]
            row = [t, f, a, "+".join(map(str, reps)), d["gpus"],
                   "/".join("%.3f" % u for u in util) if a == "token_pools" else "",
                   o["arrivals"], "%.2f" % o["preemptions_per_1k"], o["refused_total"],
                   o["expired"], "%.4f" % o["success_rate"], "%.3f" % o["ttft"]["p50_s"],
                   "%.3f" % o["ttft"]["p99_s"], "%.1f" % (1000 * o["tpot"]["p50_s"]),
                   "%.1f" % (1000 * o["tpot"]["p99_s"])]
            w.writerow(row)
            print("| %s | %s | %s | %s | %s | %s | %d | %d | %.2f%% | %s / %s | %s / %s |" % (
                t, f, a, row[3], row[5] or "—", row[7], o["refused_total"], o["expired"],
                100 * o["success_rate"], row[11], row[12], row[13], row[14]))
PY
}

e4() {
  # E4 pooling vs dedicated: the pooled fleet sized with --size, then every tenant alone on an
  # endpoint of its own (e4_pooled.yaml with that tenant only, guarantee 1), sized the same way.
  mkdir -p "$out/e4"
  "$bin" sim sim/scenarios/e4_pooled.yaml --out "$out/e4/pooled" --size > /dev/null
  tenants=$(python3 -c 'import sys, yaml
print(" ".join(t["name"] for t in yaml.safe_load(open(sys.argv[1]))["tenants"]))' \
    sim/scenarios/e4_pooled.yaml)
  for name in $tenants; do
    python3 - sim/scenarios/e4_pooled.yaml "$name" > "$tmp" <<'PY'
import sys, yaml
sc = yaml.safe_load(open(sys.argv[1]))
sc["tenants"] = [t for t in sc["tenants"] if t["name"] == sys.argv[2]]
sc["tenants"][0]["guarantee_share"] = 1
sc["name"] = "e4-dedicated-" + sys.argv[2]
sc["pools"][0]["replicas"] = 1
print(yaml.safe_dump(sc, sort_keys=False))
PY
    "$bin" sim "$tmp" --out "$out/e4/dedicated_$name" --size > /dev/null
  done
  python3 - "$out/e4" $tenants > "$out/e4/report.md" <<'PY'
import csv, json, sys
base, names = sys.argv[1], sys.argv[2:]
def load(d):
    s = json.load(open(d + "/summary.json"))
    rows = list(csv.DictReader(open(d + "/timeseries.csv")))
    pool = s["pools"][0]["stats"]["name"]
    u = [float(r[pool + "_utilization"]) for r in rows
         if s["warmup_s"] < float(r["t_s"]) <= s["duration_s"]]
    return s, sum(u) / len(u)
pooled, pu = load(base + "/pooled")
pt = {t["name"]: t for t in pooled["tenants"]}
w = csv.writer(open(base + "/e4.csv", "w", newline=""))
w.writerow(["tenant", "arrivals", "dedicated_gpus", "dedicated_utilization",
            "dedicated_ttft_p99_all_s", "dedicated_tpot_p99_ms", "dedicated_success",
            "pooled_ttft_p99_all_s", "pooled_tpot_p99_ms", "pooled_success"])
print("# E4 pooling vs dedicated endpoints\n")
print("Written by sim/run_experiments.sh (section e4). Each fleet sized with --size for P99 TTFT")
print("(all requests) <= %g s and P99 TPOT <= %g ms; utilization: the token pool's busiest" %
      (2, 80))
print("dimension, mean over the measured samples. P99 TTFT -1: the P99 request got no first token.\n")
print("| tenant | arrivals | dedicated GPUs | dedicated utilization | P99 TTFT / TPOT dedicated | "
      "P99 TTFT / TPOT pooled | success dedicated / pooled |")
print("|---|---|---|---|---|---|---|")
tot_gpus, tot_util_w, tot_gpu_h = 0, 0, 0
for n in names:
    d, du = load(base + "/dedicated_" + n)
    t, p = d["tenants"][0], pt[n]
    tot_gpus += d["gpus"]
    tot_util_w += du * d["gpus"]
    tot_gpu_h += d["gpu_hours"]
    w.writerow([n, t["arrivals"], d["gpus"], "%.3f" % du, "%.3f" % t["ttft_p99_all_s"],
                "%.1f" % (1000 * t["tpot"]["p99_s"]), "%.4f" % t["success_rate"],
                "%.3f" % p["ttft_p99_all_s"], "%.1f" % (1000 * p["tpot"]["p99_s"]),
                "%.4f" % p["success_rate"]])
    print("| %s | %d | %d | %.3f | %.2f s / %.1f ms | %.2f s / %.1f ms | %.2f%% / %.2f%% |" % (
        n, t["arrivals"], d["gpus"], du, t["ttft_p99_all_s"], 1000 * t["tpot"]["p99_s"],
        p["ttft_p99_all_s"], 1000 * p["tpot"]["p99_s"], 100 * t["success_rate"],
        100 * p["success_rate"]))
o = pooled["overall"]
w.writerow(["pooled", o["arrivals"], pooled["gpus"], "%.3f" % pu, "", "", "",
            "%.3f" % o["ttft_p99_all_s"], "%.1f" % (1000 * o["tpot"]["p99_s"]),
            "%.4f" % o["success_rate"]])
print("\n| fleet | GPUs | mean utilization | GPU-hours |")
print("|---|---|---|---|")
print("| dedicated, sum of %d endpoints | %d | %.3f (GPU-weighted) | %.2f |" % (
    len(names), tot_gpus, tot_util_w / tot_gpus, tot_gpu_h))
print("| pooled, token pools | %d | %.3f | %.2f |" % (pooled["gpus"], pu, pooled["gpu_hours"]))
print("\nPooling saves %.1f%% of the GPUs." % (100 * (1 - pooled["gpus"] / tot_gpus)))
PY
  if command -v gnuplot > /dev/null; then
    gnuplot -e "dir='$out/e4/pooled'" sim/plot_e4.gp
  fi
}

e5() {
  # The fixed fleet gets the peak replica count the autoscaled run reached.
  "$bin" sim sim/scenarios/e5_autoscale.yaml --out "$out/e5_autoscale"
  python3 - sim/scenarios/e5_fixed_peak.yaml "$out/e5_autoscale/summary.json" > "$tmp" <<'PY'
import json, sys, yaml
sc = yaml.safe_load(open(sys.argv[1]))
sc["pools"][0]["replicas"] = json.load(open(sys.argv[2]))["pools"][0]["replicas_peak"]
print(yaml.safe_dump(sc, sort_keys=False))
PY
  "$bin" sim "$tmp" --out "$out/e5_fixed_peak"
  if command -v gnuplot > /dev/null; then
    gnuplot -e "dir='$out/e5_autoscale'" sim/plot_e5.gp
  fi
}

for section in "${sections[@]}"; do
  "$section"
done
