#!/usr/bin/env bash
# Runs the token-pool benchmarks (5 repetitions) and prints each median beside its goal, with the
# ratio measured / goal (< 1.00 meets the goal). Usage: bench/run_core_bench.sh [build-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
bin="$build/bench/token_pool_bench"
[ -x "$bin" ] || { echo "run_core_bench: $bin not found; build first (scripts/build.sh)" >&2; exit 1; }
json=$(mktemp)
"$bin" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_format=json >"$json" 2>/dev/null
python3 - "$json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
med = {b["run_name"]: b for b in d["benchmarks"] if b.get("aggregate_name") == "median"}
def ns(name): return med[name]["real_time"] * {"ns": 1, "us": 1e3, "ms": 1e6}[med[name]["time_unit"]]
rows = [
  ("admit+settle, 1 entitlement (scale baseline)", ns("BM_AdmitSettle/1"), None, "ns"),
  ("admit+settle, 10,000 entitlements", ns("BM_AdmitSettle/10000"), 300, "ns"),
  ("queued admit+dispatch, 1,000 queued", ns("BM_QueuedAdmitDispatch/10000"), 1000, "ns"),
  ("state per entitlement", med["BM_StatePerEntitlement/iterations:3"]["bytes_per_entitlement"], 1024, "B"),
]
print(f"{'benchmark (median of 5)':48} {'measured':>10} {'goal':>8} {'ratio':>7}")
for name, v, goal, unit in rows:
    g = f"{goal} {unit}" if goal else "-"
    r = f"{v / goal:.2f}" if goal else "-"
    print(f"{name:48} {v:8.1f} {unit:>1} {g:>8} {r:>7}")
base = ns("BM_AdmitSettle/1")
print(f"10,000 vs 1 entitlement admit+settle: x{ns('BM_AdmitSettle/10000') / base:.2f}")
PY
rm -f "$json"
