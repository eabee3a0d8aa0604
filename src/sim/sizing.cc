// The sizing search: galloping, then binary search per pool (see sizing.h).

#include "sim/sizing.h"

#include <algorithm>
#include <map>
#include <string>
#include <utility>

namespace tokenpool::sim {

bool PoolMeetsSlo(const PoolStats& pool, const SloSpec& slo) {
  return GroupMeetsSlo(pool.stats, slo);
}

bool GroupMeetsSlo(const GroupStats& s, const SloSpec& slo) {
  if (s.arrivals == 0) return true;  // no traffic: any count meets it
  // The P99 of fewer than 100 requests is their maximum: one long prompt whose prefill alone
  // exceeds the TTFT target would make the pool unsizable at any count. Such a pool (the long
  // pool of a mostly-short mix) meets the SLO when it serves every request it gets.
  if (s.arrivals < kMinRequestsForP99) {
    return s.completed == s.arrivals;
  }
  return s.ttft_p99_all_s >= 0 && s.ttft_p99_all_s <= slo.ttft_p99_s &&
         s.tpot.p99_s <= slo.tpot_p99_s;
}

namespace {

class Searcher {
 public:
  Searcher(const SimConfig& base, const SizingOptions& options, const RunOptions& run_options)
      : base_(base), options_(options), run_options_(run_options) {}

  // Pool p of run r meets the SLO (and, with per_tenant_slo, so does every tenant).
  bool Met(const SimResult& r, size_t p) const {
    if (!PoolMeetsSlo(r.pools[p], base_.slo)) return false;
    if (!options_.per_tenant_slo) return true;
    for (const GroupStats& t : r.tenants) {
      if (!GroupMeetsSlo(t, base_.slo)) return false;
    }
    return true;
  }

  // Runs (or recalls) the config at `replicas`.
  Result<const SimResult*> Probe(const std::vector<int32_t>& replicas,
                                 std::vector<SizingProbe>* log) {
    auto it = memo_.find(replicas);
    if (it != memo_.end()) return &it->second;
    SimConfig c = base_;
    c.autoscale.enabled = false;
    for (size_t p = 0; p < replicas.size(); ++p) {
      c.pools[p].replicas = replicas[p];
      c.pools[p].max_replicas = std::max(c.pools[p].max_replicas, replicas[p]);
      c.pools[p].min_replicas = std::min(c.pools[p].min_replicas, replicas[p]);
      // Capacity events scale with the probe: a drop to k of n keeps its meaning only roughly,
      // so they are kept as given.
    }
    Result<SimResult> r = RunSimulation(c, run_options_);
    if (!r.ok()) return r.status();
    SizingProbe probe;
    probe.replicas = replicas;
    for (size_t p = 0; p < r->pools.size(); ++p) {
      const PoolStats& ps = r->pools[p];
      probe.pool_met.push_back(Met(*r, p));
      probe.ttft_p99_all_s.push_back(ps.stats.ttft_p99_all_s);
      probe.tpot_p99_s.push_back(ps.stats.tpot.p99_s);
    }
    log->push_back(std::move(probe));
    auto [pos, inserted] = memo_.emplace(replicas, std::move(r.value()));
    return &pos->second;
  }

 private:
  const SimConfig& base_;
  const SizingOptions& options_;
  const RunOptions& run_options_;
  std::map<std::vector<int32_t>, SimResult> memo_;
};

}  // namespace

Status SizingOptions::Validate() const {
  if (max_replicas < 1 || max_replicas > kMaxReplicas) {
    return InvalidArgument("sizing.max_replicas: must be in [1, " + std::to_string(kMaxReplicas) +
                           "], got " + std::to_string(max_replicas));
  }
  return Status::Ok();
}

Result<SizingResult> SizeFleet(const SimConfig& config, const SizingOptions& options,
                               const RunOptions& run_options) {
  if (Status s = config.Validate(); !s.ok()) return s;
  if (Status s = options.Validate(); !s.ok()) return s;
  SizingResult out;
  Searcher searcher(config, options, run_options);
  const size_t n = config.pools.size();
  std::vector<int32_t> counts(n);
  for (size_t p = 0; p < n; ++p)
    counts[p] = std::min(config.pools[p].replicas, options.max_replicas);

  // 1. Galloping up until every pool passes.
  for (;;) {
    Result<const SimResult*> r = searcher.Probe(counts, &out.probes);
    if (!r.ok()) return r.status();
    bool all = true, grew = false;
    for (size_t p = 0; p < n; ++p) {
      if (searcher.Met(**r, p)) continue;
      all = false;
      if (counts[p] < options.max_replicas) {
        counts[p] = std::min(options.max_replicas, counts[p] * 2);
        grew = true;
      }
    }
    if (all) break;
    if (!grew) {
      return FailedPrecondition("sizing: the SLO is not met even at max_replicas (" +
                                std::to_string(options.max_replicas) + ") per pool");
    }
  }
  // 2. Per pool, binary search for the smallest passing count, the others fixed.
  for (size_t p = 0; p < n; ++p) {
    int32_t lo = 0, hi = counts[p];  // lo fails (0 replicas serve nothing), hi passes
    while (hi - lo > 1) {
      const int32_t mid = lo + (hi - lo) / 2;
      std::vector<int32_t> c = counts;
      c[p] = mid;
      Result<const SimResult*> r = searcher.Probe(c, &out.probes);
      if (!r.ok()) return r.status();
      if (searcher.Met(**r, p)) {
        hi = mid;
      } else {
        lo = mid;
      }
    }
    counts[p] = hi;
  }
  // 3. Verify the combination.
  for (int round = 0;; ++round) {
    Result<const SimResult*> r = searcher.Probe(counts, &out.probes);
    if (!r.ok()) return r.status();
    bool all = true;
    for (size_t p = 0; p < n; ++p) {
      if (!searcher.Met(**r, p)) {
        all = false;
        counts[p] = std::min(options.max_replicas, counts[p] + 1);
      }
    }
    if (all) {
      // A pool without traffic meets any SLO: where no request reached one (each fit no
      // pool's context, or a policy refused it), "sized" would be a statement about nothing.
      int64_t routed = 0;
      for (const PoolStats& ps : (*r)->pools) routed += ps.stats.arrivals;
      if (routed == 0 && (*r)->overall.arrivals > 0) {
        std::string why;
        for (const auto& [reason, count] : (*r)->overall.refused) {
          why += (why.empty() ? "" : ", ") + reason + " " + std::to_string(count);
        }
        return FailedPrecondition("sizing: no request reached a pool (" +
                                  std::to_string((*r)->overall.arrivals) +
                                  " arrivals, refused: " + why + "); there is nothing to size");
      }
      out.final_run = **r;
      break;
    }
    if (round > 64) return Internal("sizing: the final check did not settle in 64 rounds");
  }
  out.replicas = counts;
  for (size_t p = 0; p < n; ++p) {
    out.gpus += static_cast<int64_t>(counts[p]) * config.pools[p].profile.tensor_parallel;
  }
  return out;
}

}  // namespace tokenpool::sim
