// The planner: Erlang-C and Kimura against known values, α and ρ on a synthetic trace, the
// saving formula, monotonicity, and bad options.

#include "tokenpool/planner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

namespace tokenpool {
namespace {

using ::testing::HasSubstr;

InstanceProfile Get(const std::string& name) { return FindProfile(name).value(); }

TEST(ErlangCTest, KnownValues) {
  EXPECT_NEAR(ErlangC(1, 0.5), 0.5, 1e-12);  // M/M/1: P(wait) = ρ
  EXPECT_NEAR(ErlangC(2, 1.0), 1.0 / 3, 1e-12);
  EXPECT_NEAR(ErlangC(10, 8.0), 0.4091801507964435, 1e-12);
  EXPECT_NEAR(ErlangC(100, 90.0), 0.21694048090636636, 1e-10);
  EXPECT_EQ(ErlangC(4, 4.0), 1.0);  // saturated
  EXPECT_EQ(ErlangC(4, 0.0), 0.0);
  // Large server counts stay finite and in (0, 1) (factorials would overflow at c = 171).
  const double big = ErlangC(100000, 99000.0);
  EXPECT_GT(big, 0);
  EXPECT_LT(big, 1);
  // More servers, same load: less waiting.
  EXPECT_LT(ErlangC(11, 8.0), ErlangC(10, 8.0));
}

// Large loads skip the recursion's start and stop once B underflows: the same value as the
// full recursion, and a planner-sized fleet (4e9 servers) in O(√load) steps.
TEST(ErlangCTest, LargeLoadsMatchTheFullRecursion) {
  for (const auto& [servers, load] : {std::pair<int64_t, double>{100000, 99000.0},
                                      {2000000, 1990000.0},
                                      {50000, 30000.0},
                                      {1200, 1100.0}}) {
    double b = 1;
    for (int64_t k = 1; k <= servers; ++k) {
      b = load * b / (static_cast<double>(k) + load * b);
    }
    const double c = static_cast<double>(servers);
    const double full = c * b / (c - load * (1 - b));
    EXPECT_NEAR(ErlangC(servers, load), full, 1e-9 * full + 1e-300) << servers;
  }
  const double big = ErlangC(4'000'000'000, 3'999'000'000.0);
  EXPECT_GT(big, 0);
  EXPECT_LT(big, 1);
}

TEST(ErlangCTest, KimuraP99Wait) {
  // M/M/1 (cv² = 1) at ρ = 0.5: P(W > t) = ρ·exp(−(μ − λ)t) → t99 = ln(50) / 0.5.
  EXPECT_NEAR(P99WaitSeconds(1, 0.5, 1.0, 1.0), std::log(50.0) / 0.5, 1e-12);
  // Deterministic service (cv² = 0): Kimura doubles the decay rate, so half the wait.
  EXPECT_NEAR(P99WaitSeconds(1, 0.5, 1.0, 0.0), std::log(50.0) / 1.0, 1e-12);
  EXPECT_EQ(P99WaitSeconds(1, 1.0, 1.0, 1.0), std::numeric_limits<double>::infinity());
  EXPECT_EQ(P99WaitSeconds(100, 10.0, 1.0, 1.0), 0.0);  // C ≈ 0: nobody waits
  EXPECT_EQ(P99WaitSeconds(3, 0.0, 1.0, 1.0), 0.0);
}

std::vector<TraceRequest> Synthetic() {
  // 6 short (≤ 8K total) and 2 long requests.
  std::vector<TraceRequest> v;
  for (int i = 0; i < 6; ++i) v.push_back({std::nullopt, 1000 + 100 * i, 200});
  v.push_back({std::nullopt, 20000, 500});
  v.push_back({std::nullopt, 30000, 1000});
  return v;
}

PlanOptions Options(double rate = 100) {
  PlanOptions o;
  o.boundary_tokens = 8192;
  o.rate_rps = rate;
  o.slo_ttft_p99_s = 2.0;
  return o;
}

TEST(PlannerTest, AlphaRhoAndSavingOnASyntheticTrace) {
  const InstanceProfile p = Get("llama-3-70b-h100");
  const std::vector<TraceRequest> reqs = Synthetic();
  const Plan plan = PlanFleet(reqs, p, Options()).value();
  EXPECT_DOUBLE_EQ(plan.alpha, 0.75);
  EXPECT_EQ(plan.short_pool.requests, 6);
  EXPECT_EQ(plan.long_pool.requests, 2);
  EXPECT_EQ(plan.homogeneous.requests, 8);
  EXPECT_DOUBLE_EQ(plan.short_pool.rate_rps, 75);
  EXPECT_DOUBLE_EQ(plan.long_pool.rate_rps, 25);
  EXPECT_EQ(plan.short_pool.max_model_len, 8192);
  EXPECT_EQ(plan.long_pool.max_model_len, 65536);

  // ρ: the short requests on the short pool over the same requests on the long configuration.
  const std::vector<TraceRequest> shorts(reqs.begin(), reqs.begin() + 6);
  const WorkloadShape w = ShapeOf(shorts, p.iteration.prefill_chunk_tokens);
  EXPECT_DOUBLE_EQ(w.mean_prompt_tokens, 1250);
  EXPECT_DOUBLE_EQ(w.mean_output_tokens, 200);
  const double rho = AnalyzeReplica(WithMaxModelLen(p, 8192), w).requests_per_s /
                     AnalyzeReplica(WithMaxModelLen(p, 65536), w).requests_per_s;
  EXPECT_DOUBLE_EQ(plan.rho, rho);
  EXPECT_GT(plan.rho, 1);
  EXPECT_DOUBLE_EQ(plan.predicted_saving, 0.75 * (1 - 1 / rho));

  EXPECT_EQ(plan.two_pool_gpus, plan.short_pool.gpus + plan.long_pool.gpus);
  EXPECT_EQ(plan.homogeneous.gpus, plan.homogeneous.instances * 4);  // TP = 4
  EXPECT_DOUBLE_EQ(plan.actual_saving, 1 - static_cast<double>(plan.two_pool_gpus) /
                                               static_cast<double>(plan.homogeneous.gpus));
  EXPECT_DOUBLE_EQ(plan.usd_per_year_homogeneous,
                   static_cast<double>(plan.homogeneous.gpus) * 4.02 * 8760);
  for (const PoolPlan* pool : {&plan.homogeneous, &plan.short_pool, &plan.long_pool}) {
    EXPECT_LE(pool->utilization, 0.85 + 1e-12) << pool->role;
    EXPECT_LE(pool->p99_ttft_s, 2.0) << pool->role;
    EXPECT_TRUE(pool->slo_met) << pool->role;
  }
}

TEST(PlannerTest, SizingMeetsTheBoundsMinimally) {
  // One instance fewer must break the utilization cap or the wait budget.
  const InstanceProfile p = Get("fleetsim-a100");
  const Plan plan = PlanFleet(Synthetic(), p, Options(200)).value();
  const PoolPlan& s = plan.short_pool;
  const double per_server = 1 / s.replica.service_s;
  const auto servers = [&](int64_t n) {
    return static_cast<int64_t>(std::floor(static_cast<double>(n) * s.replica.active_seqs));
  };
  EXPECT_LE(P99WaitSeconds(servers(s.instances), s.rate_rps, per_server, s.service_cv2),
            2.0 - s.prefill_p99_s);
  const int64_t fewer = s.instances - 1;
  const bool over_util =
      s.rate_rps / (static_cast<double>(fewer) * s.replica.requests_per_s) > 0.85;
  const bool over_wait =
      P99WaitSeconds(servers(fewer), s.rate_rps, per_server, s.service_cv2) > 2.0 - s.prefill_p99_s;
  EXPECT_TRUE(over_util || over_wait);
}

TEST(PlannerTest, MoreRateNeedsMoreInstances) {
  const InstanceProfile p = Get("llama-3-70b-a100");
  int64_t last_h = 0, last_two = 0;
  for (double rate : {1.0, 10.0, 100.0, 1000.0}) {
    const Plan plan = PlanFleet(Synthetic(), p, Options(rate)).value();
    EXPECT_GE(plan.homogeneous.instances, last_h) << rate;
    EXPECT_GE(plan.two_pool_gpus, last_two) << rate;
    last_h = plan.homogeneous.instances;
    last_two = plan.two_pool_gpus;
  }
  EXPECT_GT(last_h, PlanFleet(Synthetic(), p, Options(1.0)).value().homogeneous.instances);
}

TEST(PlannerTest, TighterSloNeedsNoFewerInstances) {
  const InstanceProfile p = Get("fleetsim-a100");
  PlanOptions loose = Options(50);
  PlanOptions tight = loose;
  tight.slo_ttft_p99_s = 0.3;
  EXPECT_GE(PlanFleet(Synthetic(), p, tight)->homogeneous.instances,
            PlanFleet(Synthetic(), p, loose)->homogeneous.instances);
}

TEST(PlannerTest, UnservableRequestsAreCountedAndLeftOut) {
  std::vector<TraceRequest> reqs = Synthetic();
  reqs.push_back({std::nullopt, 70000, 10});  // over 65,536
  const Plan plan = PlanFleet(reqs, Get("fleetsim-h100"), Options()).value();
  EXPECT_EQ(plan.trace_requests, 9);
  EXPECT_EQ(plan.unservable_requests, 1);
  EXPECT_DOUBLE_EQ(plan.alpha, 0.75);
}

TEST(PlannerTest, AllShortLeavesTheLongPoolEmpty) {
  std::vector<TraceRequest> reqs(5, TraceRequest{std::nullopt, 500, 50});
  const Plan plan = PlanFleet(reqs, Get("fleetsim-a100"), Options()).value();
  EXPECT_DOUBLE_EQ(plan.alpha, 1.0);
  EXPECT_EQ(plan.long_pool.instances, 0);
  EXPECT_EQ(plan.long_pool.gpus, 0);
  EXPECT_EQ(plan.rho_pools, 0);
}

TEST(PlannerTest, SweepTriesTheDefaultBoundaries) {
  EXPECT_EQ(DefaultSweepBoundaries(),
            (std::vector<int64_t>{2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768}));
  const std::vector<int64_t> b = DefaultSweepBoundaries();
  const auto plans = PlanSweep(Synthetic(), Get("fleetsim-a100"), Options(), b).value();
  ASSERT_EQ(plans.size(), 9u);
  EXPECT_EQ(plans[3].boundary_tokens, 6144);
  EXPECT_DOUBLE_EQ(plans[0].alpha, 0.75);   // 2K: the six short ones total <= 1,700
  EXPECT_DOUBLE_EQ(plans[7].alpha, 0.875);  // 24K: the 20.5K request turns short
  EXPECT_DOUBLE_EQ(plans[8].alpha, 1.0);    // 32K: so does the 31K one
  PlanOptions o = Options();
  o.long_max_model_len = 16384;
  const auto fewer = PlanSweep(Synthetic(), Get("fleetsim-a100"), o, b).value();
  EXPECT_EQ(fewer.size(), 7u);  // 24K and 32K exceed the long context
}

TEST(PlannerTest, BadOptionsNameTheField) {
  const InstanceProfile p = Get("fleetsim-a100");
  const auto err = [&](PlanOptions o) {
    Result<Plan> r = PlanFleet(Synthetic(), p, o);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : r.status().message();
  };
  PlanOptions o = Options();
  o.rate_rps = 0;
  EXPECT_EQ(err(o), "rate_rps: must be > 0 and finite");
  o = Options();
  o.slo_ttft_p99_s = -1;
  EXPECT_EQ(err(o), "slo_ttft_p99_s: must be > 0 and finite");
  o = Options();
  o.boundary_tokens = 0;
  EXPECT_EQ(err(o), "boundary_tokens: must be > 0");
  o = Options();
  o.boundary_tokens = 100000;
  EXPECT_THAT(err(o), HasSubstr("boundary_tokens: must be <= the long pool's max_model_len"));
  o = Options();
  o.max_utilization = 1;
  EXPECT_EQ(err(o), "max_utilization: must be in (0, 1)");
  o = Options();
  o.long_max_model_len = 2000000;  // more than the KV cache holds
  EXPECT_THAT(err(o), HasSubstr("long_max_model_len 2000000 does not fit profile"));
  o = Options();
  o.usd_per_gpu_hour = -1;
  EXPECT_EQ(err(o), "usd_per_gpu_hour: must be >= 0 and finite");

  EXPECT_EQ(PlanFleet({}, p, Options()).status().message(), "requests: the trace is empty");
  InstanceProfile bad = p;
  bad.block_size = 0;
  EXPECT_THAT(PlanFleet(Synthetic(), bad, Options()).status().message(),
              HasSubstr("block_size: must be > 0"));
}

TEST(PlannerTest, P99PrefillIsNoLooserThanTheMean) {
  PlanOptions mean = Options(100);
  mean.ttft_prefill = TtftPrefill::kMean;
  const Plan m = PlanFleet(Synthetic(), Get("fleetsim-a100"), mean).value();
  const Plan p = PlanFleet(Synthetic(), Get("fleetsim-a100"), Options(100)).value();
  EXPECT_GE(p.homogeneous.prefill_p99_s, p.homogeneous.replica.prefill_s);
  EXPECT_GE(p.homogeneous.p99_ttft_s, m.homogeneous.p99_ttft_s);
  EXPECT_GE(p.homogeneous.instances, m.homogeneous.instances);
  // Nearest-rank p99 of 8 requests is the largest: the 30,000-token prompt, 59 chunks of 512.
  EXPECT_DOUBLE_EQ(p.homogeneous.prefill_p99_s, 59 * p.homogeneous.replica.step_s);
}

TEST(PlannerTest, PrefillOverTheSloIsFlagged) {
  PlanOptions o = Options(100);
  o.slo_ttft_p99_s = 0.2;  // the 30K prompt takes 59 × 18.4 ms of prefill in the long pool
  const Plan plan = PlanFleet(Synthetic(), Get("fleetsim-a100"), o).value();
  EXPECT_FALSE(plan.long_pool.slo_met);
  EXPECT_GT(plan.long_pool.p99_ttft_s, 0.2);
  EXPECT_EQ(plan.long_pool.p99_wait_s, 0.0);  // sized so that almost no arrival waits
}

TEST(PlannerTest, PriceOverride) {
  PlanOptions o = Options();
  o.usd_per_gpu_hour = 1.0;
  const Plan plan = PlanFleet(Synthetic(), Get("fleetsim-a100"), o).value();
  EXPECT_DOUBLE_EQ(plan.usd_per_year_two_pool, static_cast<double>(plan.two_pool_gpus) * 8760);
}

}  // namespace
}  // namespace tokenpool
