// Simulator properties: determinism, conservation, routing, sizing (tests/sim ↔ src/sim).
#include "sim/simulator.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "sim/report.h"
#include "sim/rng.h"
#include "sim/sizing.h"
#include "tokenpool/profile.h"

namespace tokenpool::sim {
namespace {

// 90% short requests (<= 8K total), 10% long (12K-40K), like a chat mix with a long tail.
TraceRows MixedRows() {
  Rng rng(99);
  auto rows = std::make_shared<std::vector<TraceRequest>>();
  for (int i = 0; i < 2000; ++i) {
    TraceRequest r;
    if (rng.Uniform() < 0.9) {
      r.input_tokens = 50 + static_cast<int64_t>(rng.Below(3000));
      r.output_tokens = 1 + static_cast<int64_t>(rng.Below(300));
    } else {
      r.input_tokens = 12000 + static_cast<int64_t>(rng.Below(28000));
      r.output_tokens = 1 + static_cast<int64_t>(rng.Below(300));
    }
    r.arrival_s = 0.2 * i;
    rows->push_back(r);
  }
  return rows;
}

SimConfig TwoPools(double rate_rps = 4, double duration_s = 60) {
  SimConfig c;
  c.name = "test";
  c.seed = 5;
  c.duration_s = duration_s;
  c.warmup_s = 5;
  c.drain_s = 120;
  c.sample_interval_s = 5;
  const InstanceProfile base = FindProfile("fleetsim-a100").value();
  PoolSpec short_pool, long_pool;
  short_pool.name = "short";
  short_pool.profile = WithMaxModelLen(base, 8192);
  short_pool.replicas = 2;
  long_pool.name = "long";
  long_pool.profile = WithMaxModelLen(base, 65536);
  long_pool.replicas = 2;
  c.pools = {short_pool, long_pool};
  c.router = "two-pool";
  c.workload = ArrivalSpec{.process = ArrivalProcess::kPoisson,
                           .rate_rps = rate_rps,
                           .lengths = MixedRows(),
                           .source = "mixed"};
  c.tenants.clear();
  for (const char* name : {"a", "b"}) {
    TenantSpec t;
    t.name = name;
    t.guarantee_share = 0.4;
    t.share = c.tenants.empty() ? 2 : 1;
    t.slo.max_queue_wait = Seconds(5);
    c.tenants.push_back(t);
  }
  c.categories = {{.name = "prose", .share = 3, .bytes_per_token = 4.5, .noise = 0.1},
                  {.name = "code", .share = 1, .bytes_per_token = 3.5, .noise = 0.15}};
  return c;
}

int64_t EndsTotal(const SimResult& r) {
  int64_t n = 0;
  for (const auto& [k, v] : r.ends) n += v;
  return n;
}

TEST(SimulatorTest, SameSeedSameEventLogAndReport) {
  const SimConfig c = TwoPools();
  const SimResult a = RunSimulation(c, {}).value();
  const SimResult b = RunSimulation(c, {}).value();
  EXPECT_EQ(a.event_log_hash, b.event_log_hash);
  EXPECT_EQ(SummaryJson(a, nullptr), SummaryJson(b, nullptr));
  EXPECT_EQ(TimeSeriesCsv(a), TimeSeriesCsv(b));
  SimConfig other = c;
  other.seed = 6;
  EXPECT_NE(RunSimulation(other, {}).value().event_log_hash, a.event_log_hash);
}

TEST(SimulatorTest, EveryRequestEndsOnceAndEverythingIsReleased) {
  SimConfig c = TwoPools(/*rate_rps=*/12, /*duration_s=*/40);
  // A failure mid-run, and a drain too short for everything: failed and cut-off ends occur.
  c.capacity_events = {{.at_s = 20, .pool = 0, .replicas = 1},
                       {.at_s = 30, .pool = 0, .replicas = 2}};
  c.drain_s = 1;
  const SimResult r = RunSimulation(c, {}).value();
  ASSERT_GT(r.requests, 300);
  EXPECT_EQ(EndsTotal(r), r.requests);
  EXPECT_GT(r.ends.count("completed"), 0u);
  EXPECT_EQ(r.open_reservations_at_end, 0);
  EXPECT_EQ(r.in_use_at_end, 0);
  // Per group: arrivals = completed + refused + expired + failed + cut off.
  for (const GroupStats& g : r.tenants) {
    EXPECT_EQ(g.arrivals, g.completed + g.refused_total + g.expired + g.failed + g.cut_off)
        << g.name;
  }
}

TEST(SimulatorTest, LongRequestsNeverReachAPoolTheyExceed) {
  SimConfig c = TwoPools(6, 60);
  c.estimator = EstimatorKind::kOracle;
  const SimResult r = RunSimulation(c, {}).value();
  EXPECT_EQ(r.estimator.misrouted_short, 0);
  EXPECT_EQ(r.ends.count("refused_engine_context_exceeded"), 0u);
  EXPECT_GT(r.pools[1].stats.completed, 0);  // the long pool served the long ones
  // With the learned estimator a misroute is counted, never silent: the engine refuses it.
  c.estimator = EstimatorKind::kCore;
  const SimResult e = RunSimulation(c, {}).value();
  const auto it = e.ends.find("refused_engine_context_exceeded");
  EXPECT_EQ(it == e.ends.end() ? 0 : it->second, e.estimator.misrouted_short);
}

TEST(SimulatorTest, SingleRouterRefusesWhatNoPoolFits) {
  SimConfig c = TwoPools(6, 30);
  c.pools.pop_back();  // only the 8K pool
  c.router = "single";
  c.estimator = EstimatorKind::kOracle;
  const SimResult r = RunSimulation(c, {}).value();
  EXPECT_GT(r.ends.at("refused_no_pool_fits"), 0);
  EXPECT_EQ(r.ends.count("refused_engine_context_exceeded"), 0u);
  EXPECT_EQ(EndsTotal(r), r.requests);
}

TEST(SimulatorTest, SizingFindsAMonotoneMinimum) {
  SimConfig c = TwoPools(8, 40);
  c.estimator = EstimatorKind::kOracle;
  c.slo = {.ttft_p99_s = 2, .tpot_p99_s = 0.08};
  c.pools[0].replicas = 1;
  c.pools[1].replicas = 1;
  const SizingResult s = SizeFleet(c, {.max_replicas = 64}, {}).value();
  ASSERT_EQ(s.replicas.size(), 2u);
  for (size_t p = 0; p < 2; ++p) {
    auto run_at = [&](int32_t n) {
      SimConfig x = c;
      x.pools[0].replicas = s.replicas[0];
      x.pools[1].replicas = s.replicas[1];
      x.pools[p].replicas = n;
      return PoolMeetsSlo(RunSimulation(x, {}).value().pools[p], c.slo);
    };
    EXPECT_TRUE(run_at(s.replicas[p])) << p;
    EXPECT_TRUE(run_at(s.replicas[p] + 1)) << p;
    if (s.replicas[p] > 1) {
      EXPECT_FALSE(run_at(s.replicas[p] - 1)) << p;
    }
  }
  EXPECT_EQ(s.gpus, (s.replicas[0] + s.replicas[1]) * c.pools[0].profile.tensor_parallel);
}

TEST(SizingTest, FewRequestsPassWhenAllComplete) {
  // A pool with under kMinRequestsForP99 requests is judged on serving them all, not on a P99
  // that is its slowest request (one long prefill can exceed any TTFT target).
  PoolStats p;
  p.stats.arrivals = 3;
  p.stats.completed = 3;
  p.stats.ttft_p99_all_s = 4.0;
  const SloSpec slo{.ttft_p99_s = 2, .tpot_p99_s = 0.08};
  EXPECT_TRUE(PoolMeetsSlo(p, slo));
  p.stats.completed = 2;
  EXPECT_FALSE(PoolMeetsSlo(p, slo));
  p.stats.arrivals = p.stats.completed = kMinRequestsForP99;
  EXPECT_FALSE(PoolMeetsSlo(p, slo));
  p.stats.ttft_p99_all_s = 1.5;
  p.stats.tpot.p99_s = 0.05;
  EXPECT_TRUE(PoolMeetsSlo(p, slo));
  p.stats.ttft_p99_all_s = -1;  // the P99 request never got a first token
  EXPECT_FALSE(PoolMeetsSlo(p, slo));
}

TEST(SimulatorTest, AutoscalerStartsReplicasAfterTheDelay) {
  SimConfig c = TwoPools(10, 120);
  c.pools[0].replicas = 1;
  c.pools[0].max_replicas = 8;
  c.pools[1].max_replicas = 4;
  c.autoscale.enabled = true;
  c.autoscale.interval_s = 5;
  c.autoscale.startup_delay_s = 20;
  const SimResult r = RunSimulation(c, {}).value();
  EXPECT_GT(r.pools[0].replicas_peak, 1);
  EXPECT_EQ(EndsTotal(r), r.requests);
  EXPECT_EQ(r.open_reservations_at_end, 0);
  // No serving replica before the first tick plus the start-up delay.
  for (const TimeSample& s : r.samples) {
    if (s.t_s < 25) {
      EXPECT_EQ(s.pool_replicas[0], 1) << s.t_s;
    }
  }
}

TEST(SimulatorTest, ValidateNamesTheField) {
  SimConfig c = TwoPools();
  c.pools[0].replicas = 0;
  EXPECT_EQ(RunSimulation(c, {}).status().message(), "pools[0].replicas: must be >= 1");
  c = TwoPools();
  c.workload->lengths = std::make_shared<std::vector<TraceRequest>>();
  EXPECT_NE(RunSimulation(c, {}).status().message().find("workload.lengths"), std::string::npos);
}

TEST(SimulatorTest, ArrivalProcessesKeepTheirMeanRate) {
  // Trace replay compressed to 40 req/s (the rows are 5 req/s), replayed after its last row.
  SimConfig c = TwoPools(40, 100);
  c.warmup_s = 0;
  c.workload->process = ArrivalProcess::kTrace;
  const SimResult trace = RunSimulation(c, {}).value();
  EXPECT_NEAR(static_cast<double>(trace.requests), 4000, 40);  // 2,000 rows, one replay more
  // Bursty on-off arrivals: the same mean rate, in bursts.
  c.workload->process = ArrivalProcess::kOnOff;
  c.workload->rate_rps = 10;
  c.workload->on_mean_s = 5;
  c.workload->off_mean_s = 5;
  c.duration_s = 400;
  const SimResult onoff = RunSimulation(c, {}).value();
  EXPECT_NEAR(static_cast<double>(onoff.requests), 4000, 600);
  // Poisson within a window of the run.
  c.workload->process = ArrivalProcess::kPoisson;
  c.workload->start_s = 100;
  c.workload->end_s = 200;
  const SimResult window = RunSimulation(c, {}).value();
  EXPECT_NEAR(static_cast<double>(window.requests), 1000, 120);
}

TEST(RngTest, SameSeedSameSequence) {
  Rng a(1), b(1);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(a.Next(), b.Next());
  Rng c(3);
  double sum = 0;
  for (int i = 0; i < 100000; ++i) sum += c.Exponential(2.0);
  EXPECT_NEAR(sum / 100000, 2.0, 0.05);
  for (int i = 0; i < 1000; ++i) ASSERT_LT(c.Below(7), 7u);
}

}  // namespace
}  // namespace tokenpool::sim
