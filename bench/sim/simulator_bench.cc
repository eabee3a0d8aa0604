// Simulator speed: simulated requests per wall-clock second for one full run (virtual time),
// on a fleet-sim A100 two-pool fleet at 100 and 1,000 req/s. Lengths are synthetic (means of
// the Azure conv trace, 1,155 prompt and 211 output tokens) so the benchmark needs no files.
// The one-hour, 3.6-million-request figure is in docs/benchmarks.md (sim/scenarios/
// speed_one_hour.yaml through the CLI).
#include <benchmark/benchmark.h>

#include <memory>
#include <vector>

#include "sim/rng.h"
#include "sim/simulator.h"
#include "tokenpool/profile.h"

namespace tokenpool::sim {
namespace {

SimConfig Fleet(double rate_rps, int32_t short_replicas) {
  Rng rng(7);
  auto rows = std::make_shared<std::vector<TraceRequest>>();
  for (int i = 0; i < 20000; ++i) {
    TraceRequest r;
    r.input_tokens = 1 + static_cast<int64_t>(rng.Exponential(1155));
    r.output_tokens = 1 + static_cast<int64_t>(rng.Exponential(211));
    if (r.input_tokens + r.output_tokens > 65536) r.input_tokens = 60000;
    rows->push_back(r);
  }
  SimConfig c;
  c.seed = 1;
  c.duration_s = 60;
  c.drain_s = 300;
  c.sample_interval_s = 10;
  c.estimator = EstimatorKind::kOracle;
  const InstanceProfile base = FindProfile("fleetsim-a100").value();
  PoolSpec s, l;
  s.name = "short";
  s.profile = WithMaxModelLen(base, 8192);
  s.replicas = short_replicas;
  l.name = "long";
  l.profile = WithMaxModelLen(base, 65536);
  l.replicas = 2;
  c.pools = {s, l};
  ArrivalSpec a;
  a.process = ArrivalProcess::kPoisson;
  a.rate_rps = rate_rps;
  a.lengths = rows;
  c.workload = a;
  TenantSpec t;
  t.name = "fleet";
  t.cls = EntitlementClass::kGuaranteed;
  t.guarantee_share = 1;
  t.share = 1;
  c.tenants = {t};
  return c;
}

void BM_Simulate(benchmark::State& state) {
  const double rate = static_cast<double>(state.range(0));
  // 154 short replicas carry 1,000 req/s of Azure conv (E1); scale with the rate.
  const SimConfig c = Fleet(rate, static_cast<int32_t>(rate * 0.154) + 1);
  int64_t requests = 0;
  for (auto _ : state) {
    Result<SimResult> r = RunSimulation(c, {});
    if (!r.ok()) {
      state.SkipWithError(r.status().message().c_str());
      return;
    }
    requests += r->requests;
    benchmark::DoNotOptimize(r->event_log_hash);
  }
  state.SetItemsProcessed(requests);
}
BENCHMARK(BM_Simulate)->Arg(100)->Arg(1000)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace tokenpool::sim

BENCHMARK_MAIN();
