// The capacity planner: pool sizing by Erlang-C with Kimura's M/G/c correction over slots.
// Method: docs/planner.md.

#include "tokenpool/planner.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace tokenpool {
namespace {

constexpr double kHoursPerYear = 8760;  // 365 × 24, as the paper's $/year figures
// Kimura's tail: the 99th percentile, so P(wait > t) = 1%.
constexpr double kTailProbability = 0.01;
// Far beyond any real fleet; stops the doubling search on a profile that cannot serve at all.
constexpr int64_t kMaxInstances = int64_t{1} << 24;

double Div(double a, double b) { return b > 0 ? a / b : 0; }

// Slot-holding iterations of one request: prefill chunks + output tokens, at least one.
double Iterations(const TraceRequest& r, int64_t chunk) {
  const double chunks = static_cast<double>((r.input_tokens + chunk - 1) / chunk);
  return std::max(1.0, chunks + static_cast<double>(r.output_tokens));
}

double IterationsCv2(std::span<const TraceRequest> requests, int64_t chunk) {
  if (requests.empty()) return 0;
  double sum = 0, sum2 = 0;
  for (const TraceRequest& r : requests) {
    const double it = Iterations(r, chunk);
    sum += it;
    sum2 += it * it;
  }
  const double n = static_cast<double>(requests.size());
  const double mean = sum / n;
  return std::max(0.0, sum2 / n / (mean * mean) - 1);
}

// The 99th percentile (nearest rank) of the requests' prefill chunk counts.
double P99Chunks(std::span<const TraceRequest> requests, int64_t chunk) {
  std::vector<int64_t> chunks;
  chunks.reserve(requests.size());
  for (const TraceRequest& r : requests) chunks.push_back((r.input_tokens + chunk - 1) / chunk);
  const size_t rank = static_cast<size_t>(std::ceil(0.99 * static_cast<double>(chunks.size())));
  const size_t k = std::max<size_t>(rank, 1) - 1;
  std::nth_element(chunks.begin(), chunks.begin() + static_cast<std::ptrdiff_t>(k), chunks.end());
  return static_cast<double>(chunks[k]);
}

struct Sizing {
  int64_t instances = 0;
  double p99_wait_s = 0;
};

// Smallest instance count whose utilization is <= max_utilization and whose P99 wait fits the
// budget (a budget <= 0 asks that almost no arrival waits: Erlang-C <= 1%).
Result<Sizing> MinInstances(double rate, const ReplicaPerformance& replica, double cv2,
                            double wait_budget_s, double max_utilization) {
  const double per_server = Div(1.0, replica.service_s);
  const auto servers = [&](int64_t n) {
    return std::max<int64_t>(
        1, static_cast<int64_t>(std::floor(static_cast<double>(n) * replica.active_seqs)));
  };
  const auto wait = [&](int64_t n) { return P99WaitSeconds(servers(n), rate, per_server, cv2); };
  const auto ok = [&](int64_t n) { return wait(n) <= std::max(0.0, wait_budget_s); };

  if (replica.requests_per_s <= 0 || per_server <= 0) {
    return FailedPrecondition("the profile serves no requests for this workload");
  }
  const double least = std::ceil(rate / (replica.requests_per_s * max_utilization));
  // Checked before any wait is computed: Erlang-C costs time in the number of servers, and a
  // rate of 1e12 would ask for more than int64 instances.
  if (!(least <= static_cast<double>(kMaxInstances))) {
    return FailedPrecondition("no fleet under " + std::to_string(kMaxInstances) +
                              " instances meets the SLO (the rate alone needs more)");
  }
  int64_t lo = std::max<int64_t>(1, static_cast<int64_t>(least));
  if (ok(lo)) return Sizing{lo, wait(lo)};
  int64_t hi = lo;
  while (!ok(hi)) {
    lo = hi;
    hi *= 2;
    if (hi > kMaxInstances) {
      return FailedPrecondition("no fleet under " + std::to_string(kMaxInstances) +
                                " instances meets the SLO");
    }
  }
  while (hi - lo > 1) {  // invariant: !ok(lo), ok(hi)
    const int64_t mid = lo + (hi - lo) / 2;
    (ok(mid) ? hi : lo) = mid;
  }
  return Sizing{hi, wait(hi)};
}

Result<PoolPlan> SizePool(std::string role, std::span<const TraceRequest> requests,
                          int64_t servable, const InstanceProfile& profile, double rate,
                          const PlanOptions& o, double usd_per_gpu_hour) {
  PoolPlan p;
  p.role = std::move(role);
  p.max_model_len = profile.max_model_len;
  p.requests = static_cast<int64_t>(requests.size());
  p.share = Div(static_cast<double>(requests.size()), static_cast<double>(servable));
  p.rate_rps = rate * p.share;
  p.shape =
      WorkloadShape{.mean_prompt_tokens = 0, .mean_output_tokens = 0, .mean_prefill_chunks = 0};
  if (requests.empty()) return p;
  const int64_t chunk = profile.iteration.prefill_chunk_tokens;
  p.shape = ShapeOf(requests, chunk);
  p.service_cv2 = IterationsCv2(requests, chunk);
  p.replica = AnalyzeReplica(profile, p.shape);
  p.prefill_p99_s = P99Chunks(requests, chunk) * p.replica.step_s;
  const double prefill =
      o.ttft_prefill == TtftPrefill::kP99 ? p.prefill_p99_s : p.replica.prefill_s;
  const double wait_budget = o.slo_ttft_p99_s - prefill;
  Result<Sizing> s =
      MinInstances(p.rate_rps, p.replica, p.service_cv2, wait_budget, o.max_utilization);
  if (!s.ok()) {
    return Status(s.status().code(), p.role + " pool (max_model_len " +
                                         std::to_string(p.max_model_len) +
                                         "): " + s.status().message());
  }
  p.instances = s->instances;
  p.gpus = p.instances * profile.tensor_parallel;
  p.utilization = Div(p.rate_rps, static_cast<double>(p.instances) * p.replica.requests_per_s);
  p.p99_wait_s = s->p99_wait_s;
  p.p99_ttft_s = p.p99_wait_s + prefill;
  p.slo_met = p.p99_ttft_s <= o.slo_ttft_p99_s;
  p.usd_per_year = static_cast<double>(p.gpus) * usd_per_gpu_hour * kHoursPerYear;
  return p;
}

Result<InstanceProfile> DerivedProfile(const InstanceProfile& base, int64_t max_model_len,
                                       std::string_view field) {
  InstanceProfile p = WithMaxModelLen(base, max_model_len);
  if (Status s = p.Validate(); !s.ok()) {
    return InvalidArgument(std::string(field) + " " + std::to_string(max_model_len) +
                           " does not fit profile " + base.name + ": " + s.message());
  }
  return p;
}

}  // namespace

std::string_view TtftPrefillName(TtftPrefill t) {
  switch (t) {
    case TtftPrefill::kP99:
      return "p99";
    case TtftPrefill::kMean:
      return "mean";
  }
  return "unknown";
}

Status PlanOptions::Validate() const {
  if (boundary_tokens <= 0) return InvalidArgument("boundary_tokens: must be > 0");
  if (!std::isfinite(rate_rps) || rate_rps <= 0) {
    return InvalidArgument("rate_rps: must be > 0 and finite");
  }
  if (!std::isfinite(slo_ttft_p99_s) || slo_ttft_p99_s <= 0) {
    return InvalidArgument("slo_ttft_p99_s: must be > 0 and finite");
  }
  if (!(max_utilization > 0 && max_utilization < 1)) {
    return InvalidArgument("max_utilization: must be in (0, 1)");
  }
  if (long_max_model_len && *long_max_model_len <= 0) {
    return InvalidArgument("long_max_model_len: must be > 0");
  }
  if (long_max_model_len && boundary_tokens > *long_max_model_len) {
    return InvalidArgument("boundary_tokens: must be <= long_max_model_len (" +
                           std::to_string(*long_max_model_len) + "), got " +
                           std::to_string(boundary_tokens));
  }
  if (usd_per_gpu_hour && (!std::isfinite(*usd_per_gpu_hour) || *usd_per_gpu_hour < 0)) {
    return InvalidArgument("usd_per_gpu_hour: must be >= 0 and finite");
  }
  return Status::Ok();
}

WorkloadShape ShapeOf(std::span<const TraceRequest> requests, int64_t prefill_chunk_tokens) {
  WorkloadShape w{.mean_prompt_tokens = 0, .mean_output_tokens = 0, .mean_prefill_chunks = 0};
  if (requests.empty() || prefill_chunk_tokens <= 0) return w;
  double in = 0, out = 0, chunks = 0;
  for (const TraceRequest& r : requests) {
    in += static_cast<double>(r.input_tokens);
    out += static_cast<double>(r.output_tokens);
    chunks +=
        static_cast<double>((r.input_tokens + prefill_chunk_tokens - 1) / prefill_chunk_tokens);
  }
  const double n = static_cast<double>(requests.size());
  w.mean_prompt_tokens = in / n;
  w.mean_output_tokens = out / n;
  w.mean_prefill_chunks = chunks / n;
  return w;
}

double ErlangC(int64_t servers, double offered_load) {
  if (servers <= 0) return 1;
  if (offered_load <= 0) return 0;
  const double c = static_cast<double>(servers);
  if (offered_load >= c) return 1;
  // Erlang B by its recursion B(k) = a·B(k−1) / (k + a·B(k−1)): no factorials, no overflow.
  // For a large load it starts 10·√a servers below a, from B(k) ≈ 1 − k/a: an error there
  // shrinks by k/a per step (1/B(k) = 1 + (k/a)/B(k−1)), by e^−50 on the way to a; and it
  // stops once B underflows to 0. Cost O(√a), not O(servers): the planner asks for millions.
  double b = 1;
  int64_t k = 1;
  const double skip = offered_load - 10 * std::sqrt(offered_load);
  if (skip > 1000) {
    k = static_cast<int64_t>(skip);
    b = 1 - static_cast<double>(k - 1) / offered_load;
  }
  for (; k <= servers && b > 0; ++k) {
    b = offered_load * b / (static_cast<double>(k) + offered_load * b);
  }
  return c * b / (c - offered_load * (1 - b));
}

double P99WaitSeconds(int64_t servers, double arrival_rps, double per_server_rps,
                      double service_cv2) {
  if (arrival_rps <= 0) return 0;
  const double capacity = static_cast<double>(servers) * per_server_rps;
  if (servers <= 0 || per_server_rps <= 0 || arrival_rps >= capacity) {
    return std::numeric_limits<double>::infinity();
  }
  const double c = ErlangC(servers, arrival_rps / per_server_rps);
  if (c <= kTailProbability) return 0;
  // M/M/c: P(W > t) = C·exp(−(cμ − λ)t). Kimura scales the decay rate by 2 / (1 + cv²).
  const double decay = 2 * (capacity - arrival_rps) / (1 + service_cv2);
  return std::log(c / kTailProbability) / decay;
}

std::vector<int64_t> DefaultSweepBoundaries() {
  return {2048, 3072, 4096, 6144, 8192, 12288, 16384, 24576, 32768};
}

Result<Plan> PlanFleet(std::span<const TraceRequest> requests, const InstanceProfile& profile,
                       const PlanOptions& options) {
  if (Status s = options.Validate(); !s.ok()) return s;
  if (Status s = profile.Validate(); !s.ok()) return s;
  if (requests.empty()) return InvalidArgument("requests: the trace is empty");
  const int64_t long_len = options.long_max_model_len.value_or(profile.max_model_len);
  if (options.boundary_tokens > long_len) {
    return InvalidArgument("boundary_tokens: must be <= the long pool's max_model_len (" +
                           std::to_string(long_len) + "), got " +
                           std::to_string(options.boundary_tokens));
  }
  Result<InstanceProfile> long_profile = DerivedProfile(profile, long_len, "long_max_model_len");
  if (!long_profile.ok()) return long_profile.status();
  Result<InstanceProfile> short_profile =
      DerivedProfile(profile, options.boundary_tokens, "boundary_tokens");
  if (!short_profile.ok()) return short_profile.status();

  std::vector<TraceRequest> servable, short_reqs, long_reqs;
  for (const TraceRequest& r : requests) {
    if (r.total_tokens() > long_len) continue;
    servable.push_back(r);
    (r.total_tokens() <= options.boundary_tokens ? short_reqs : long_reqs).push_back(r);
  }
  Plan plan;
  plan.boundary_tokens = options.boundary_tokens;
  plan.rate_rps = options.rate_rps;
  plan.slo_ttft_p99_s = options.slo_ttft_p99_s;
  plan.usd_per_gpu_hour = options.usd_per_gpu_hour.value_or(profile.usd_per_gpu_hour);
  plan.trace_requests = static_cast<int64_t>(requests.size());
  plan.unservable_requests = plan.trace_requests - static_cast<int64_t>(servable.size());
  if (servable.empty()) {
    return InvalidArgument("requests: none fits the long pool's max_model_len " +
                           std::to_string(long_len));
  }
  const int64_t n = static_cast<int64_t>(servable.size());
  plan.alpha = Div(static_cast<double>(short_reqs.size()), static_cast<double>(n));

  // The target rate is the servable traffic's (unservable requests would be refused anyway).
  const double rate = options.rate_rps;
  Result<PoolPlan> homogeneous =
      SizePool("homogeneous", servable, n, *long_profile, rate, options, plan.usd_per_gpu_hour);
  if (!homogeneous.ok()) return homogeneous.status();
  Result<PoolPlan> short_pool =
      SizePool("short", short_reqs, n, *short_profile, rate, options, plan.usd_per_gpu_hour);
  if (!short_pool.ok()) return short_pool.status();
  Result<PoolPlan> long_pool =
      SizePool("long", long_reqs, n, *long_profile, rate, options, plan.usd_per_gpu_hour);
  if (!long_pool.ok()) return long_pool.status();
  plan.homogeneous = std::move(homogeneous).value();
  plan.short_pool = std::move(short_pool).value();
  plan.long_pool = std::move(long_pool).value();

  if (!short_reqs.empty()) {
    const double short_on_long =
        AnalyzeReplica(*long_profile, plan.short_pool.shape).requests_per_s;
    plan.rho = Div(plan.short_pool.replica.requests_per_s, short_on_long);
    plan.rho_pools =
        Div(plan.short_pool.replica.requests_per_s, plan.long_pool.replica.requests_per_s);
  }
  plan.predicted_saving = plan.rho > 0 ? plan.alpha * (1 - 1 / plan.rho) : 0;
  plan.two_pool_gpus = plan.short_pool.gpus + plan.long_pool.gpus;
  plan.actual_saving =
      1 - Div(static_cast<double>(plan.two_pool_gpus), static_cast<double>(plan.homogeneous.gpus));
  plan.usd_per_year_homogeneous = plan.homogeneous.usd_per_year;
  plan.usd_per_year_two_pool = plan.short_pool.usd_per_year + plan.long_pool.usd_per_year;
  return plan;
}

Result<std::vector<Plan>> PlanSweep(std::span<const TraceRequest> requests,
                                    const InstanceProfile& profile, const PlanOptions& options,
                                    std::span<const int64_t> boundaries) {
  const int64_t long_len = options.long_max_model_len.value_or(profile.max_model_len);
  std::vector<Plan> plans;
  for (int64_t b : boundaries) {
    if (b > long_len) continue;
    PlanOptions o = options;
    o.boundary_tokens = b;
    Result<Plan> p = PlanFleet(requests, profile, o);
    if (!p.ok()) return p.status();
    plans.push_back(std::move(p).value());
  }
  if (plans.empty()) {
    return InvalidArgument("boundaries: none is <= the long pool's max_model_len " +
                           std::to_string(long_len));
  }
  return plans;
}

}  // namespace tokenpool
