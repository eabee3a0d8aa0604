// Simulator properties: determinism, conservation, routing, sizing (tests/sim ↔ src/sim).
#include "sim/simulator.h"

#include <gtest/gtest.h>

#include <limits>
#include <memory>
#include <vector>

#include "sim/admission_policy.h"
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
                           .rate_schedule = {},
                           .seed = {},
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

// Each arrival passes admission once: admitted at once, queued, or refused there; the
// engine's refusal of a request admitted on a short estimate is its end, not a second pass.
// Before, without token pools `admitted` stayed 0 (the E2 baselines showed none).
TEST(SimulatorTest, EveryArrivalPassesAdmissionOnce) {
  for (const AdmissionMode mode : {AdmissionMode::kTokenPools, AdmissionMode::kNone}) {
    SimConfig c = TwoPools(8, 40);
    c.estimator = EstimatorKind::kCore;
    c.admission = mode;
    const SimResult r = RunSimulation(c, {}).value();
    for (const GroupStats& g : r.tenants) {
      const auto engine = g.refused.find("engine_context_exceeded");
      const int64_t by_engine = engine == g.refused.end() ? 0 : engine->second;
      EXPECT_EQ(g.arrivals, g.admitted + g.queued + g.refused_total - by_engine)
          << AdmissionModeName(mode) << " " << g.name;
      EXPECT_GT(g.admitted, 0) << AdmissionModeName(mode) << " " << g.name;
    }
  }
}

// Sizing where no request reaches a pool is an error, not "sized to 1": a pool without
// traffic meets any SLO.
TEST(SizingTest, NothingToSizeWhenNoRequestFitsAPool) {
  SimConfig c = TwoPools(6, 30);
  c.pools.pop_back();
  c.router = "single";
  c.estimator = EstimatorKind::kOracle;
  auto rows = std::make_shared<std::vector<TraceRequest>>();
  for (int i = 0; i < 50; ++i)
    rows->push_back({.arrival_s = 0.1 * i, .input_tokens = 9000, .output_tokens = 10});
  c.workload->lengths = rows;
  const Result<SizingResult> s = SizeFleet(c, {.max_replicas = 8}, {});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("no request reached a pool"), std::string::npos)
      << s.status().message();
  EXPECT_NE(s.status().message().find("no_pool_fits"), std::string::npos);
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
  EXPECT_EQ(RunSimulation(c, {}).status().message(), "pools[0].replicas: must be in [1, 10000]");
  c = TwoPools();
  c.workload->lengths = std::make_shared<std::vector<TraceRequest>>();
  EXPECT_NE(RunSimulation(c, {}).status().message().find("workload.lengths"), std::string::npos);
  // Durations past 1e9 s or not finite would overflow virtual time (1e300 s cast to
  // nanoseconds was undefined behaviour).
  c = TwoPools();
  c.duration_s = 1e300;
  EXPECT_EQ(RunSimulation(c, {}).status().message(), "duration_s: must be in (0, 1e9] seconds");
  c = TwoPools();
  c.sample_interval_s = std::numeric_limits<double>::infinity();
  EXPECT_EQ(RunSimulation(c, {}).status().message(),
            "sample_interval_s: must be in [1e-9, 1e9] seconds");
  c = TwoPools();
  c.drain_s = std::numeric_limits<double>::quiet_NaN();
  EXPECT_EQ(RunSimulation(c, {}).status().message(), "drain_s: must be in [0, 1e9] seconds");
  c = TwoPools();
  c.autoscale.enabled = true;
  c.autoscale.startup_delay_s = 1e12;
  EXPECT_EQ(RunSimulation(c, {}).status().message(),
            "autoscale.startup_delay_s: must be in [0, 1e9] seconds");
  // Runs whose requests, samples or replicas would not fit in memory are refused up front
  // (they ended in std::bad_alloc).
  c = TwoPools();
  c.workload->rate_rps = 1e300;
  EXPECT_EQ(RunSimulation(c, {}).status().message().rfind(
                "duration_s: the arrival rates over duration_s plan about ", 0),
            0u)
      << RunSimulation(c, {}).status().message();
  c = TwoPools();
  c.duration_s = 1e9;
  c.sample_interval_s = 1e9;
  EXPECT_NE(RunSimulation(c, {}).status().message().find("at most 20000000"), std::string::npos);
  c = TwoPools();
  c.duration_s = 1e9;
  c.workload->rate_rps = 1e-3;
  EXPECT_EQ(RunSimulation(c, {}).status().message(),
            "sample_interval_s: (duration_s + drain_s) / sample_interval_s must be at most "
            "10000000 samples, got 200000024");
  // The drain is sampled too while requests are live: a long one counts.
  c = TwoPools();
  c.duration_s = 10;
  c.drain_s = 1e9;
  EXPECT_EQ(RunSimulation(c, {}).status().message().rfind(
                "sample_interval_s: (duration_s + drain_s) / sample_interval_s must be at most", 0),
            0u)
      << RunSimulation(c, {}).status().message();
  c = TwoPools();
  c.pools[0].replicas = 100'000'000;
  EXPECT_EQ(RunSimulation(c, {}).status().message(), "pools[0].replicas: must be in [1, 10000]");
}

// Work that grows with duration / period is bounded like requests and samples: a valid but
// tiny on/off period or autoscale interval planned ~1e10 steps (hours); a period under 1 ns
// rounds to 0 and repeated its event at the same instant for ever.
TEST(SimulatorTest, TinyPeriodsAreRefusedNamingTheField) {
  SimConfig c = TwoPools(4, 20);
  c.workload->process = ArrivalProcess::kOnOff;
  c.workload->on_mean_s = 1e-9;
  c.workload->off_mean_s = 1e-9;
  EXPECT_EQ(RunSimulation(c, {}).status().message(),
            "workload.on_mean_s: the stream's 20 s hold about 10000000000 on/off periods of "
            "on_mean_s + off_mean_s, at most 10000000 (lengthen on_mean_s or off_mean_s)");
  c.workload->process = ArrivalProcess::kPoisson;
  c.tenants[0].arrivals = *c.workload;
  c.tenants[0].arrivals->process = ArrivalProcess::kOnOff;
  c.tenants[0].arrivals->start_s = 10;
  EXPECT_EQ(RunSimulation(c, {}).status().message(),
            "tenants[0].arrivals.on_mean_s: the stream's 10 s hold about 5000000000 on/off "
            "periods of on_mean_s + off_mean_s, at most 10000000 (lengthen on_mean_s or "
            "off_mean_s)");
  // At the bound it runs (about a second of on/off draws).
  c.tenants[0].arrivals->on_mean_s = 1e-6;
  c.tenants[0].arrivals->off_mean_s = 1e-6;
  c.tenants[0].arrivals->start_s = 0;
  EXPECT_TRUE(RunSimulation(c, {}).ok());

  c = TwoPools(4, 20);
  c.autoscale.enabled = true;
  c.autoscale.interval_s = 1e-9;
  EXPECT_EQ(RunSimulation(c, {}).status().message(),
            "autoscale.interval_s: duration_s / interval_s must be at most 10000000 ticks, got "
            "20000000000");
  c.duration_s = 1e-8;
  c.warmup_s = 0;
  c.autoscale.interval_s = 1e-12;
  EXPECT_EQ(RunSimulation(c, {}).status().message(),
            "autoscale.interval_s: must be in [1e-9, 1e9] seconds");
  c.autoscale.enabled = false;
  c.sample_interval_s = 1e-12;
  EXPECT_EQ(RunSimulation(c, {}).status().message(),
            "sample_interval_s: must be in [1e-9, 1e9] seconds");
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

TEST(AdmissionPolicyTest, RequestRateLimitRefusesTheNPlusFirstInAWindow) {
  SimConfig c = TwoPools();
  c.admission = AdmissionMode::kRequestRate;
  c.rate_limit_window_s = 10;
  c.tenants[0].rate_limit_rps = 2.5;  // 25 requests in any 10 s
  c.tenants[1].rate_limit_rps = 1;
  auto p = MakeAdmissionPolicy(c);
  ASSERT_NE(p, nullptr);
  const Time t0 = Time::Zero() + Seconds(100);
  for (int i = 0; i < 25; ++i) {
    EXPECT_EQ(p->Admit(0, t0 + Milliseconds(i), 1000), "") << i;
  }
  EXPECT_EQ(p->Admit(0, t0 + Milliseconds(30), 1), "rate_limited_requests");
  EXPECT_EQ(p->Admit(1, t0 + Milliseconds(30), 1), "");  // another tenant's window
  // A refused request is not counted; once the first ones leave the window, room again.
  EXPECT_EQ(p->Admit(0, t0 + Seconds(9.999), 1), "rate_limited_requests");
  EXPECT_EQ(p->Admit(0, t0 + Seconds(10), 1), "");
  EXPECT_EQ(p->Admit(0, t0 + Seconds(10), 1), "rate_limited_requests");
}

TEST(AdmissionPolicyTest, TokenRateLimitCountsTokens) {
  SimConfig c = TwoPools();
  c.admission = AdmissionMode::kTokenRate;
  c.rate_limit_window_s = 1;
  c.tenants[0].rate_limit_tokens_per_s = 1000;
  c.tenants[1].rate_limit_tokens_per_s = 1000;
  auto p = MakeAdmissionPolicy(c);
  const Time t0 = Time::Zero() + Seconds(5);
  EXPECT_EQ(p->Admit(0, t0, 600), "");
  EXPECT_EQ(p->Admit(0, t0, 401), "rate_limited_tokens");
  EXPECT_EQ(p->Admit(0, t0, 400), "");
  EXPECT_EQ(p->Admit(0, t0 + Seconds(1), 1000), "");
  c.admission = AdmissionMode::kTokenPools;
  EXPECT_EQ(MakeAdmissionPolicy(c), nullptr);
}

TEST(SimulatorTest, RateLimitedRunRefusesAndCountsEveryRequest) {
  SimConfig c = TwoPools(20, 40);
  c.admission = AdmissionMode::kRequestRate;
  c.rate_limit_window_s = 5;
  c.tenants[0].rate_limit_rps = 4;  // tenant a sends ~13 req/s
  c.tenants[1].rate_limit_rps = 100;
  const SimResult r = RunSimulation(c, {}).value();
  EXPECT_EQ(EndsTotal(r), r.requests);
  EXPECT_GT(r.tenants[0].refused.at("rate_limited_requests"), 0);
  EXPECT_EQ(r.tenants[1].refused.count("rate_limited_requests"), 0u);
  // At most 20 per 5 s window started for tenant a: over the 40 s, at most 8 windows' worth.
  int64_t started_a = 0;
  for (const PoolStats& p : r.pools) {
    for (const auto& per_tenant : p.instance_started) started_a += per_tenant[0];
  }
  EXPECT_LE(started_a, 8 * 20);
  // A request-rate mode without a limit for every tenant does not run half-configured.
  c.tenants[1].rate_limit_rps = 0;
  EXPECT_EQ(RunSimulation(c, {}).status().message(),
            "tenants[1].rate_limit.requests_per_s: must be > 0 with admission request_rate");
}

TEST(SimulatorTest, DedicatedReplicasServeOnlyTheirTenant) {
  EXPECT_EQ(DedicatedReplicas(TwoPools().tenants, 5), (std::vector<int32_t>{3, 2}));
  SimConfig c = TwoPools(10, 40);
  c.admission = AdmissionMode::kDedicated;
  c.estimator = EstimatorKind::kOracle;
  c.pools[0].replicas = 3;
  TenantSpec spot;
  spot.name = "spot";
  spot.cls = EntitlementClass::kSpot;
  spot.share = 1;
  c.tenants.push_back(spot);  // no dedicated share: no endpoint
  const SimResult r = RunSimulation(c, {}).value();
  EXPECT_EQ(EndsTotal(r), r.requests);
  ASSERT_EQ(r.pools[0].instance_owner, (std::vector<int32_t>{0, 0, 1}));
  ASSERT_EQ(r.pools[1].instance_owner, (std::vector<int32_t>{0, 1}));
  for (const PoolStats& p : r.pools) {
    for (size_t i = 0; i < p.instance_owner.size(); ++i) {
      for (size_t t = 0; t < c.tenants.size(); ++t) {
        if (static_cast<int32_t>(t) != p.instance_owner[i]) {
          EXPECT_EQ(p.instance_started[i][t], 0) << "replica " << i << " tenant " << t;
        } else {
          EXPECT_GT(p.instance_started[i][t], 0) << "replica " << i << " tenant " << t;
        }
      }
    }
  }
  EXPECT_EQ(r.tenants[2].completed, 0);
  EXPECT_EQ(r.tenants[2].refused_total, r.tenants[2].arrivals);
  EXPECT_GT(r.tenants[2].refused.at("no_dedicated_replica"), 0);
}

TEST(SimulatorTest, RateScheduleFollowsItsPiecewiseLinearRate) {
  SimConfig c = TwoPools(1, 300);
  c.warmup_s = 0;
  c.workload->rate_schedule = {{.at_s = 0, .rps = 0},
                               {.at_s = 100, .rps = 4},
                               {.at_s = 200, .rps = 4},
                               {.at_s = 250, .rps = 0}};
  const SimResult r = RunSimulation(c, {}).value();
  // 0.5 x 100 x 4 + 100 x 4 + 0.5 x 50 x 4 = 700 expected arrivals, none after 250 s (so no
  // tokens once the last ones have finished).
  EXPECT_NEAR(static_cast<double>(r.requests), 700, 100);
  int64_t late = 0, early = 0;
  for (const TimeSample& s : r.samples) {
    int64_t tokens = 0;
    for (int64_t x : s.tenant_tokens) tokens += x;
    if (s.t_s > 270 && s.t_s <= 300) late += tokens;
    if (s.t_s <= 10) early += tokens;
  }
  EXPECT_EQ(late, 0);
  EXPECT_LT(early, 10000);  // the first 10 s carry ~0.2 requests, not 10 s x 4 req/s
  c.workload->rate_schedule[2].at_s = 100;
  EXPECT_EQ(RunSimulation(c, {}).status().message(),
            "workload.rate_schedule[2].at_s: must be > the previous point's (100)");
}

TEST(SimulatorTest, ArrivalsWithTheirOwnSeedDoNotDependOnTheOtherStreams) {
  SimConfig c = TwoPools(6, 60);
  c.tenants[1].share = 0;
  c.tenants[1].arrivals = ArrivalSpec{.process = ArrivalProcess::kOnOff,
                                      .rate_rps = 3,
                                      .on_mean_s = 5,
                                      .off_mean_s = 10,
                                      .rate_schedule = {},
                                      .seed = 77,
                                      .lengths = MixedRows(),
                                      .source = "mixed"};
  const SimResult both = RunSimulation(c, {}).value();
  SimConfig alone = c;
  alone.workload->rate_rps = 0.5;  // tenant a's shared stream draws differently
  const SimResult other = RunSimulation(alone, {}).value();
  EXPECT_NE(both.tenants[0].arrivals, other.tenants[0].arrivals);
  EXPECT_EQ(both.tenants[1].arrivals, other.tenants[1].arrivals);
  EXPECT_EQ(
      both.tenants[1].prompt_tokens + both.tenants[1].output_tokens + both.tenants[1].refused_total,
      other.tenants[1].prompt_tokens + other.tenants[1].output_tokens +
          other.tenants[1].refused_total);
}

TEST(SizingTest, PerTenantSloHoldsForEveryTenantAtTheSize) {
  SimConfig c = TwoPools(8, 40);
  c.pools.pop_back();  // one pool of 8K
  c.router = "single";
  c.estimator = EstimatorKind::kOracle;
  c.pools[0].replicas = 1;
  c.tenants[1].share = 0;
  c.tenants[1].arrivals = ArrivalSpec{.process = ArrivalProcess::kOnOff,
                                      .rate_rps = 4,
                                      .on_mean_s = 2,
                                      .off_mean_s = 18,
                                      .rate_schedule = {},
                                      .seed = 3,
                                      .lengths = MixedRows(),
                                      .source = "mixed"};
  const SloSpec slo{.ttft_p99_s = 1, .tpot_p99_s = 0.08};
  c.slo = slo;
  const SizingResult pool = SizeFleet(c, {.max_replicas = 64}, {}).value();
  const SizingResult tenant =
      SizeFleet(c, {.max_replicas = 64, .per_tenant_slo = true}, {}).value();
  EXPECT_GE(tenant.replicas[0], pool.replicas[0]);
  for (const GroupStats& t : tenant.final_run.tenants) EXPECT_TRUE(GroupMeetsSlo(t, slo)) << t.name;
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
