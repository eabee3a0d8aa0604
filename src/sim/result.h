#pragma once
// SimResult: what a simulation run measured, as plain structs. The CLI writes them as
// summary.json and report.md (sim/report.h); tests assert on them directly.
//
// Thread-safety: plain values.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tokenpool::sim {

// How a request ended. Every request ends exactly once.
enum class RequestEnd : uint8_t { kCompleted = 0, kRefused, kExpired, kFailed, kCutOff };

struct LatencyStats {
  int64_t count = 0;
  double mean_s = 0;
  double p50_s = 0;
  double p90_s = 0;
  double p99_s = 0;
};

// Counters and latencies of one group of requests (a tenant, a class, a pool, or all).
// Each arrival ends once: arrivals = completed + refused_total + expired + failed + cut_off.
// Each arrival passes admission once: arrivals = admitted + queued + (refused_total −
// refused["engine_context_exceeded"]): that refusal is the engine's, of a request admitted
// (or queued and dispatched) on an estimate below its true length, as vLLM refuses one that
// the gateway let through.
struct GroupStats {
  std::string name;
  int64_t arrivals = 0;
  int64_t admitted = 0;    // admitted at once (guaranteed or burst)
  int64_t queued = 0;      // waited in a token pool's queue
  int64_t dispatched = 0;  // of those, later admitted
  int64_t completed = 0;
  int64_t expired = 0;                     // waited past the deadline
  int64_t failed = 0;                      // lost with a replica
  int64_t cut_off = 0;                     // still in flight when the run ended
  std::map<std::string, int64_t> refused;  // by reason: admission outcome or gateway reason
  int64_t refused_total = 0;
  int64_t preemptions = 0;    // engine preemptions of this group's requests
  int64_t prompt_tokens = 0;  // of completed requests
  int64_t output_tokens = 0;
  int64_t slo_met = 0;  // completed within the TTFT and TPOT targets
  LatencyStats ttft;    // completed requests
  LatencyStats tpot;
  LatencyStats e2e;
  LatencyStats queue_wait;  // admitted requests (0 when admitted at once)
  // P99 TTFT over every request that reached a pool, a request that never got a first token
  // counting as infinite (reported as -1 when the P99 is such a request): the sizing criterion.
  double ttft_p99_all_s = 0;
  double goodput_rps = 0;         // slo_met per second of the measured window
  double preemptions_per_1k = 0;  // per 1,000 completed requests
  double success_rate = 0;        // completed / arrivals
};

struct PoolStats {
  GroupStats stats;
  int32_t replicas_initial = 0;
  int32_t replicas_final = 0;
  int32_t replicas_peak = 0;
  int64_t gpus_per_replica = 0;
  double gpu_hours = 0;                   // replicas alive (starting, serving, draining) × time
  std::map<std::string, int64_t> routed;  // by router reason
  int64_t engine_iterations = 0;
  // Per replica (in the order they were started): its dedicated tenant (-1: shared) and the
  // requests it started per tenant. Not in the reports; for checks such as "a dedicated
  // replica serves only its tenant".
  std::vector<int32_t> instance_owner;
  std::vector<std::vector<int64_t>> instance_started;
};

// One row of the time series, every SimConfig::sample_interval_s.
struct TimeSample {
  double t_s = 0;
  std::vector<int64_t> tenant_tokens;  // tokens served in the interval (prompt + output)
  std::vector<double> tenant_debt;     // sum over pools of the elastic debt (tokens)
  std::vector<int32_t> pool_replicas;  // serving replicas
  std::vector<double> pool_utilization;
  std::vector<uint32_t> pool_queued;
};

struct EstimatorStats {
  int64_t estimates = 0;
  double mean_abs_rel_error = 0;  // |estimate - true| / true over prompt tokens
  int64_t misrouted_long = 0;     // short by true size, routed long (costs capacity)
  int64_t misrouted_short = 0;    // too long for the pool it was routed to (fails in vLLM)
};

struct SimResult {
  std::string name;
  uint64_t seed = 0;
  double duration_s = 0;
  double warmup_s = 0;
  double end_s = 0;                     // virtual time of the last event
  int64_t requests = 0;                 // arrivals, all of them (measured or not)
  std::map<std::string, int64_t> ends;  // every request's end: completed, refused, ...
  int64_t events = 0;
  uint64_t event_log_hash = 0;           // FNV-1a over every processed event
  int64_t open_reservations_at_end = 0;  // must be 0
  double in_use_at_end = 0;              // pools' kv + concurrency in use at the end; must be 0
  GroupStats overall;
  std::vector<GroupStats> tenants;
  std::vector<GroupStats> classes;  // guaranteed, elastic, spot (those present)
  std::vector<PoolStats> pools;
  std::vector<std::string> tenant_names;
  std::vector<std::string> pool_names;
  std::vector<TimeSample> samples;
  EstimatorStats estimator;
  int64_t gpus = 0;  // initial replicas × GPUs per replica, over pools
  double gpu_hours = 0;
};

}  // namespace tokenpool::sim
