#pragma once
// The capacity planner: how many instances (and GPUs, and dollars) a fleet needs for a request
// mix at a target rate and a P99 TTFT SLO, as one homogeneous long-context pool and as a
// short/long pair split at a token boundary (papers.md §2). Analytic: the capacity model
// (tokenpool/capacity.h) gives each pool's service, an Erlang-C queue with a Kimura M/G/c
// correction sizes it. Method and its limits: docs/planner.md.
//
//   PlanOptions o{.boundary_tokens = 8192, .rate_rps = 1000, .slo_ttft_p99_s = 2};
//   Result<Plan> plan = PlanFleet(trace.requests, *FindProfile("llama-3-70b-a100"), o);
//
// Thread-safety: pure functions of their arguments.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenpool/capacity.h"
#include "tokenpool/profile.h"
#include "tokenpool/status.h"
#include "tokenpool/trace.h"

namespace tokenpool {

// Which prefill time enters the P99 TTFT: TTFT = P99 wait + prefill.
enum class TtftPrefill {
  kP99,   // the 99th percentile of the pool's prefill times (its longest prompts); default
  kMean,  // the pool's mean prefill time, as fleet-sim (optimistic for a P99 SLO)
};

// "p99", "mean".
std::string_view TtftPrefillName(TtftPrefill t);

struct PlanOptions {
  int64_t boundary_tokens = 8192;  // a request is short if input + output <= boundary
  double rate_rps = 0;             // target arrival rate of the whole mix
  double slo_ttft_p99_s = 0;
  // Context of the long pool and of the homogeneous fleet; none = the profile's.
  std::optional<int64_t> long_max_model_len;
  std::optional<double> usd_per_gpu_hour;  // none = the profile's
  // Highest planned utilization of a pool, fleet-sim's rho_max: the Kimura approximation
  // loses accuracy as utilization nears 1, and real arrivals are burstier than Poisson.
  double max_utilization = 0.85;
  TtftPrefill ttft_prefill = TtftPrefill::kP99;

  // InvalidArgument naming the field: boundary > 0, rate > 0, SLO > 0, utilization in (0, 1),
  // long_max_model_len > 0, boundary <= long_max_model_len, price >= 0.
  Status Validate() const;
};

// One pool, sized.
struct PoolPlan {
  std::string role;  // "homogeneous", "short", "long"
  int64_t max_model_len = 0;
  int64_t requests = 0;  // trace requests routed here
  double share = 0;      // of the servable requests
  double rate_rps = 0;
  WorkloadShape shape;     // from the requests routed here
  double service_cv2 = 0;  // squared coefficient of variation of the slot holding time
  ReplicaPerformance replica;
  int64_t instances = 0;
  int64_t gpus = 0;
  double utilization = 0;    // rate / (instances × replica.requests_per_s)
  double p99_wait_s = 0;     // Erlang-C/Kimura, slots as servers
  double prefill_p99_s = 0;  // 99th percentile of prefill chunks × replica.step_s
  double p99_ttft_s = 0;     // p99 wait + prefill (p99 or mean, PlanOptions::ttft_prefill)
  bool slo_met = true;       // false when prefill alone exceeds the SLO
  double usd_per_year = 0;
};

struct Plan {
  int64_t boundary_tokens = 0;
  double rate_rps = 0;
  double slo_ttft_p99_s = 0;
  double usd_per_gpu_hour = 0;
  int64_t trace_requests = 0;
  int64_t unservable_requests = 0;  // input + output > long max_model_len: left out
  double alpha = 0;                 // share of short requests among the servable
  // Throughput gain for the short traffic: short-pool req/s per instance over the
  // homogeneous-configuration req/s per instance, both on the short requests. This is the ρ
  // for which α(1 − 1/ρ) is the saving.
  double rho = 0;
  // Short-pool req/s per instance (short requests) over long-pool req/s per instance (long
  // requests): each pool on the traffic it gets.
  double rho_pools = 0;
  double predicted_saving = 0;  // α(1 − 1/ρ)
  PoolPlan homogeneous;
  PoolPlan short_pool;
  PoolPlan long_pool;
  int64_t two_pool_gpus = 0;
  double actual_saving = 0;  // 1 − two-pool GPUs / homogeneous GPUs
  double usd_per_year_homogeneous = 0;
  double usd_per_year_two_pool = 0;
};

// Requires a non-empty request list; the profile is validated here (as are the two derived
// context lengths). An empty trace or no servable request is InvalidArgument.
Result<Plan> PlanFleet(std::span<const TraceRequest> requests, const InstanceProfile& profile,
                       const PlanOptions& options);

// PlanFleet at each boundary (options.boundary_tokens ignored), boundaries above the long
// context skipped.
Result<std::vector<Plan>> PlanSweep(std::span<const TraceRequest> requests,
                                    const InstanceProfile& profile, const PlanOptions& options,
                                    std::span<const int64_t> boundaries);

// 2K, 3K, 4K, 6K, 8K, 12K, 16K, 24K, 32K (K = 1,024 tokens).
std::vector<int64_t> DefaultSweepBoundaries();

// The workload shape of some requests on a profile: mean prompt and output, and the mean of
// ceil(prompt / chunk). Requires a non-empty list.
WorkloadShape ShapeOf(std::span<const TraceRequest> requests, int64_t prefill_chunk_tokens);

// Erlang-C: P(an arrival waits) in M/M/c with c servers and offered load a = λ/μ (erlangs).
// 1 when a >= c. Computed through the Erlang-B recursion, stable for large c.
double ErlangC(int64_t servers, double offered_load);

// P99 wait in M/G/c by Kimura's approximation: 0 when ErlangC <= 1%, else
// ln(C / 0.01) / (2 (cμ − λ) / (1 + cv²)); +inf when λ >= cμ.
double P99WaitSeconds(int64_t servers, double arrival_rps, double per_server_rps,
                      double service_cv2);

}  // namespace tokenpool
