#pragma once
// SimConfig: everything one simulation run needs, as plain values. The scenario library
// (src/scenario/) fills it from a YAML file; tests build it in code. Traces are parsed before
// they get here (the simulator does no I/O) and shared between runs of a sizing search.
//
//   SimConfig c;
//   c.pools.push_back({.name = "short", .profile = WithMaxModelLen(*FindProfile("..."), 8192),
//                      .replicas = 4});
//   c.tenants.push_back({.name = "acme", .share = 1.0});
//   c.workload = ArrivalSpec{.process = ArrivalProcess::kPoisson, .rate_rps = 20,
//                            .lengths = lengths};
//   if (Status s = c.Validate(); !s.ok()) ...   // "pools[0].replicas: must be >= 1"
//
// Thread-safety: plain values (the shared traces are immutable).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenpool/autoscale.h"
#include "tokenpool/capacity.h"
#include "tokenpool/entitlement.h"
#include "tokenpool/estimator.h"
#include "tokenpool/profile.h"
#include "tokenpool/router.h"
#include "tokenpool/status.h"
#include "tokenpool/token_pool.h"
#include "tokenpool/trace.h"

namespace tokenpool::sim {

using TraceRows = std::shared_ptr<const std::vector<TraceRequest>>;

enum class ArrivalProcess : uint8_t {
  kTrace,    // the trace's own arrival times, compressed (or stretched) to rate_rps
  kPoisson,  // exponential gaps at rate_rps; lengths sampled uniformly from `lengths`
  kOnOff,    // Poisson at a high rate during "on" periods, none during "off" ones (bursty)
};

// A point of a piecewise-linear rate schedule: the rate is `rps` at `at_s` (seconds of the run)
// and changes linearly to the next point; before the first point it is the first's, after the
// last the last's.
struct RatePoint {
  double at_s = 0;
  double rps = 0;
};

struct ArrivalSpec {
  ArrivalProcess process = ArrivalProcess::kPoisson;
  // Mean arrival rate over the stream. For kTrace, 0 keeps the recorded times; otherwise the
  // times are scaled by (recorded mean rate / rate_rps) (time compression), and the trace is
  // replayed again after its last row for as long as the run lasts.
  double rate_rps = 1;
  double start_s = 0;      // first arrival not before this
  double end_s = 0;        // no arrival at or after this; 0 = the run's duration
  double on_mean_s = 10;   // kOnOff: mean on period (exponential)
  double off_mean_s = 30;  // kOnOff: mean off period; rate while on = rate_rps·(on+off)/on
  // kPoisson only: a time-varying rate instead of rate_rps (a non-homogeneous Poisson process,
  // sampled by thinning). Empty: the constant rate_rps.
  std::vector<RatePoint> rate_schedule;
  // A random stream of its own for this process's arrival times and request draws, seeded
  // with this (none: the scenario's generator, shared with everything else). Gives a tenant
  // the same arrivals whatever else is in the scenario (E4 compares fleets on equal demand).
  std::optional<uint64_t> seed;
  TraceRows lengths;   // kTrace: rows with arrival_s; else length samples
  std::string source;  // where the rows came from, for reports
};

// Synthetic request bodies: a content category has its own bytes per token, so the estimator
// sees bytes that follow the true token count and has something to learn.
struct ContentCategory {
  std::string name = "prose";
  double share = 1;            // relative weight among the categories
  double bytes_per_token = 4;  // Llama-3 on English prose is ~4.5, code ~3.5, CJK ~2 (papers.md)
  double noise = 0.1;          // relative standard deviation of a request's bytes/token
};

struct TenantSpec {
  std::string name;
  EntitlementClass cls = EntitlementClass::kElastic;
  int32_t priority = 0;
  double weight = 1;
  // Guarantee and burst ceiling as shares of each pool's capacity at its initial replicas
  // (guarantee) and at max replicas (burst). Replaced by the absolute vectors when set.
  double guarantee_share = 0;
  double burst_share = 1;
  std::optional<ResourceVector> guarantee;
  std::optional<ResourceVector> burst;
  Slo slo;                                  // TTFT target and the longest queue wait
  double tpot_target_s = 0;                 // for goodput; 0 = none
  double share = 0;                         // of the scenario's shared workload stream
  std::optional<ArrivalSpec> arrivals;      // a stream of its own (in addition to `share`)
  std::vector<ContentCategory> categories;  // empty: the scenario's
  // Baselines (SimConfig::admission): the tenant's limits in the sliding window (0 = unset),
  // and its share of every pool's replicas under dedicated endpoints (< 0: guarantee_share,
  // 0 for spot).
  double rate_limit_rps = 0;
  double rate_limit_tokens_per_s = 0;
  double dedicated_share = -1;
};

struct PoolSpec {
  std::string name;
  InstanceProfile profile;  // with the pool's max_model_len
  int32_t replicas = 1;
  int32_t min_replicas = 1;
  int32_t max_replicas = 0;  // 0 = replicas
  // Workload shape for the pool's token_rate capacity; none = the shape of the length rows
  // that the oracle would route to this pool.
  std::optional<WorkloadShape> shape;
};

struct AutoscaleSpec {
  bool enabled = false;
  double interval_s = 15;        // how often the recommendation is read (HPA's default)
  double startup_delay_s = 120;  // a new replica serves only after this (model load)
  AutoscaleConfig config;
};

// At `at_s`, pool `pool` has `replicas` live replicas: fewer fail (newest first; their requests
// fail), more start at once.
struct CapacityEvent {
  double at_s = 0;
  int32_t pool = 0;
  int32_t replicas = 0;
};

struct SloSpec {
  double ttft_p99_s = 2;  // paper 2's SLO
  double tpot_p99_s = 0.08;
};

// The share of a pool's replicas a tenant gets under dedicated endpoints.
inline double DedicatedShareOf(const TenantSpec& t) {
  if (t.dedicated_share >= 0) return t.dedicated_share;
  return t.cls == EntitlementClass::kSpot ? 0.0 : t.guarantee_share;
}

enum class EstimatorKind : uint8_t { kCore, kOracle };

// How requests are admitted, and whether tenants share replicas. kTokenPools is the product;
// the others are the baselines it is compared with (sim/admission_policy.h).
enum class AdmissionMode : uint8_t {
  kTokenPools,   // the core's token pools: admit, queue with a deadline, or refuse
  kNone,         // every request goes to a replica at once
  kRequestRate,  // per-tenant request-rate limit (TenantSpec::rate_limit_rps), then as kNone
  kTokenRate,    // per-tenant token-rate limit (prompt estimate + max_tokens), then as kNone
  kDedicated,    // each tenant has its own replicas (TenantSpec::dedicated_share), no sharing
};
const char* AdmissionModeName(AdmissionMode mode);
// "token_pools", "none", "request_rate", "token_rate", "dedicated"; false when unknown.
bool ParseAdmissionMode(std::string_view name, AdmissionMode* mode);

// Bounds of a run that Validate enforces, so that a typo in a rate, a duration or a replica
// count is an error naming the field rather than the machine's memory: the run keeps a few
// figures per request (~64 bytes: 20 M requests ~1.3 GB), a sample per sample_interval_s, and
// an engine per replica.
inline constexpr int64_t kMaxPlannedRequests = 20'000'000;
inline constexpr int64_t kMaxSamples = 10'000'000;
inline constexpr int32_t kMaxReplicas = 10'000;
// The same for work that grows with duration / period rather than with requests: an on-off
// stream draws three exponentials per on/off cycle (arrivals.cc) and the autoscaler ticks every
// interval_s, so a valid but tiny period (1e-9 s) would mean ~1e10 steps over a 20 s run.
// 10 M of either is far above any real period (a day at HPA's 15 s interval is 5,760 ticks);
// how long 10 M steps take has not been measured.
inline constexpr int64_t kMaxOnOffCycles = 10'000'000;
inline constexpr int64_t kMaxAutoscaleTicks = 10'000'000;

struct SimConfig {
  std::string name = "scenario";
  uint64_t seed = 1;
  double duration_s = 60;  // arrivals stop here
  double warmup_s = 0;     // requests arriving before this are not in the latency statistics
  double drain_s = 600;    // after duration, in-flight requests get this long to finish
  double sample_interval_s = 10;
  std::vector<PoolSpec> pools;  // ascending max_model_len
  std::string router = "two-pool";
  RouterConfig router_config;
  EstimatorKind estimator = EstimatorKind::kCore;
  std::string estimator_mode = "ema";
  EstimatorConfig estimator_config;
  AdmissionMode admission = AdmissionMode::kTokenPools;
  double rate_limit_window_s = 10;  // the sliding window of kRequestRate and kTokenRate
  PoolConfig pool_defaults;         // rate window, lending... (name, capacity and replicas ignored)
  std::vector<TenantSpec> tenants;
  std::optional<ArrivalSpec> workload;  // shared stream, split by TenantSpec::share
  std::vector<ContentCategory> categories{ContentCategory{}};
  AutoscaleSpec autoscale;
  std::vector<CapacityEvent> capacity_events;
  SloSpec slo;

  // The first broken rule, naming the field: "pools[0].replicas: must be >= 1".
  Status Validate() const;
};

}  // namespace tokenpool::sim
