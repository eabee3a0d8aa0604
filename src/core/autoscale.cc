#include "tokenpool/autoscale.h"

#include <algorithm>
#include <cmath>

namespace tokenpool {

Status AutoscaleConfig::Validate() const {
  if (!(target_utilization > 0 && target_utilization <= 1)) {
    return InvalidArgument("autoscale.target_utilization: must be in (0, 1]");
  }
  if (scale_down_stabilization < Duration::zero()) {
    return InvalidArgument("autoscale.scale_down_stabilization: must be >= 0");
  }
  if (load_time_constant <= Duration::zero()) {
    return InvalidArgument("autoscale.load_time_constant: must be > 0");
  }
  return Status::Ok();
}

AutoscaleDecision Autoscaler::Recommend(Time now, const PoolSnapshot& s, const PoolConfig& pool) {
  // Smooth in-use with an exponential moving average in continuous time.
  if (!primed_) {
    smoothed_ = s.in_use;
    primed_ = true;
  } else if (now > last_) {
    const double a = 1 - std::exp(-ToSeconds(now - last_) / ToSeconds(config_.load_time_constant));
    smoothed_ = smoothed_ + (s.in_use - smoothed_) * a;
  }
  last_ = now;

  AutoscaleDecision d;
  const ResourceVector& per = pool.replica_capacity;
  double floor_r = 0, demand_r = 0;
  for (Dim dim : kAllDims) {
    floor_r = std::max(floor_r, s.guarantees[dim] / per[dim]);
    const double demand = std::max(s.in_use[dim], smoothed_[dim]) + s.queued_demand[dim];
    d.demand_vector[dim] = demand;
    const double need = demand / (per[dim] * config_.target_utilization);
    if (need > demand_r) {
      demand_r = need;
      d.limiting_dim = dim;
    }
  }
  // 1e-9: a sum of guarantees that is exactly k replicas must not round up to k + 1.
  d.guarantee_floor = static_cast<int32_t>(std::ceil(floor_r - 1e-9));
  d.demand = static_cast<int32_t>(std::ceil(demand_r - 1e-9));
  const int32_t now_desired =
      std::clamp(std::max(d.guarantee_floor, d.demand), pool.min_replicas, pool.max_replicas);

  // Scale-down stabilization: the largest recommendation within the window.
  while (!history_.empty() && now - history_.front().at > config_.scale_down_stabilization) {
    history_.pop_front();
  }
  while (!history_.empty() && history_.back().desired <= now_desired) history_.pop_back();
  history_.push_back({now, now_desired});  // history_ is decreasing: front is the max
  d.desired = history_.front().desired;
  return d;
}

}  // namespace tokenpool
