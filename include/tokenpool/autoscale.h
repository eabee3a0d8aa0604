#pragma once
// Autoscaler: how many replicas a pool should have, from the same capacity model that admits
// requests, so that what is promised is what is provisioned.
//
//   desired = clamp(max(guarantee_floor, ceil(max_d demand_d / (replica_d x target))), min, max)
//   guarantee_floor = ceil(max_d sum_guarantees_d / replica_d)        (never below promises)
//   demand_d = max(in_use_d, smoothed in_use_d) + queued_d            (queued = waiting cost)
// Scale-up is immediate; scale-down waits: the output is the largest recommendation of the last
// `scale_down_stabilization` (the Kubernetes HPA rule), so a dip does not drop replicas that a
// returning burst needs. Formulas and reasons: docs/token-pools.md.
//
//   Autoscaler a(AutoscaleConfig{});
//   AutoscaleDecision d = a.Recommend(now, pool.Snapshot(), pool.config());
//   // export d.desired as tokenpool_pool_desired_replicas; the simulator starts replicas.
//
// Thread-safety: not synchronized; one owner per pool.

#include <cstdint>
#include <deque>

#include "tokenpool/resources.h"
#include "tokenpool/status.h"
#include "tokenpool/token_pool.h"
#include "tokenpool/units.h"

namespace tokenpool {

struct AutoscaleConfig {
  // 0.8: the headroom that keeps the queue short at Poisson-like arrivals without paying for
  // idle replicas; the planner's Erlang bound gives a per-workload figure when one is wanted.
  double target_utilization = 0.8;
  // 300 s: Kubernetes HPA's default scale-down stabilization window.
  Duration scale_down_stabilization = Seconds(300);
  // Time constant of the smoothed in-use (held dimensions), so that demand reflects recent load
  // and not only this instant. 30 s: a few request lifetimes of a chat workload.
  Duration load_time_constant = Seconds(30);
  Status Validate() const;
};

struct AutoscaleDecision {
  int32_t desired = 0;          // what to provision now
  int32_t guarantee_floor = 0;  // replicas the guarantees alone need
  int32_t demand = 0;           // replicas the demand needs (before stabilization and clamp)
  Dim limiting_dim = Dim::kConcurrency;
  ResourceVector demand_vector;
};

class Autoscaler {
 public:
  explicit Autoscaler(const AutoscaleConfig& config) : config_(config) {}

  // Requires pool.replica_capacity > 0 on every dimension (PoolConfig::Validate ensures it).
  AutoscaleDecision Recommend(Time now, const PoolSnapshot& snapshot, const PoolConfig& pool);

 private:
  struct Sample {
    Time at;
    int32_t desired;
  };
  AutoscaleConfig config_;
  bool primed_ = false;
  Time last_;
  ResourceVector smoothed_;
  std::deque<Sample> history_;  // recommendations inside the stabilization window
};

}  // namespace tokenpool
