#pragma once
// Sizing: the fewest replicas per pool that meet an SLO, found by search over full
// deterministic runs. A pool meets the SLO when, over the requests routed to it, the P99 TTFT
// (a request that never got a first token counts as infinite) is <= slo.ttft_p99_s and the P99
// TPOT is <= slo.tpot_p99_s.
//
//   Result<SizingResult> s = SizeFleet(config, {}, {});
//   s->replicas   // per pool;  s->gpus;  s->probes (every run, in order)
//
// Search: galloping up (double every failing pool) until all pools pass, then per pool a binary
// search between the last failing and the first passing count with the other pools fixed, then
// a final run of the result (+1 on a pool that fails it, which can happen when pools interact
// through spillover). Each probe is a full run with the config's seed, so the search itself is
// deterministic. The autoscaler is off during sizing.
//
// Thread-safety: reentrant.

#include <cstdint>
#include <vector>

#include "sim/config.h"
#include "sim/result.h"
#include "sim/simulator.h"
#include "tokenpool/status.h"

namespace tokenpool::sim {

struct SizingOptions {
  // Upper bound of the galloping search per pool: 4,096 replicas is far above the paper's
  // 1,000 req/s fleets (~90 to 180 instances).
  int32_t max_replicas = 4096;
  // Also require every tenant's own P99s (over all its requests, GroupMeetsSlo) within the
  // SLO: a pooled fleet then gives each tenant the SLO a dedicated endpoint would. A probe
  // where a tenant misses counts as failing in every pool (meant for one-pool fleets).
  bool per_tenant_slo = false;

  // "sizing.max_replicas: must be in [1, 10000]" (kMaxReplicas: a probe is a full run).
  Status Validate() const;
};

struct SizingProbe {
  std::vector<int32_t> replicas;
  std::vector<bool> pool_met;
  std::vector<double> ttft_p99_all_s;  // -1: the P99 request got no first token
  std::vector<double> tpot_p99_s;
};

struct SizingResult {
  std::vector<int32_t> replicas;
  int64_t gpus = 0;
  std::vector<SizingProbe> probes;
  SimResult final_run;  // the run at `replicas`
};

// Below this many measured requests a pool's P99 is not judged (see PoolMeetsSlo).
inline constexpr int64_t kMinRequestsForP99 = 100;

// The pool's P99 TTFT (all requests) and P99 TPOT are within the SLO; a pool with fewer than
// kMinRequestsForP99 requests passes when it completes all of them.
bool PoolMeetsSlo(const PoolStats& pool, const SloSpec& slo);
// The same rule for any group of requests (a tenant's).
bool GroupMeetsSlo(const GroupStats& group, const SloSpec& slo);

Result<SizingResult> SizeFleet(const SimConfig& config, const SizingOptions& options,
                               const RunOptions& run_options);

}  // namespace tokenpool::sim
