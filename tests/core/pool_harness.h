#pragma once
// A tiny discrete-event driver for TokenPool tests: requests hold their reservation for a given
// service time on a ManualClock, completions settle, and the pool is dispatched after every
// event, as the gateway and the simulator do.

#include <cstdint>
#include <map>
#include <memory>
#include <queue>
#include <vector>

#include "tokenpool/clock.h"
#include "tokenpool/token_pool.h"

namespace tokenpool::testing {

// splitmix64: a small deterministic generator, identical on every platform.
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed) {}
  uint64_t Next() {
    uint64_t z = (s_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  double Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }
  int64_t Range(int64_t lo, int64_t hi) {  // [lo, hi]
    return lo + static_cast<int64_t>(Next() % static_cast<uint64_t>(hi - lo + 1));
  }

 private:
  uint64_t s_;
};

struct Served {
  int64_t tokens = 0;
  int64_t requests = 0;
  std::vector<double> waits_s;  // queue wait of each admitted request
  int64_t refused = 0;
};

class PoolHarness {
 public:
  explicit PoolHarness(const PoolConfig& cfg) : pool_(TokenPool::Create(cfg, clock_).value()) {}

  ManualClock& clock() { return clock_; }
  TokenPool& pool() { return *pool_; }
  Served& served(EntitlementRef e) { return served_[e.index]; }

  // Submits a request now; on admission it holds its reservation for `service`, then settles
  // with `actual`. Returns the immediate outcome.
  AdmissionOutcome Submit(EntitlementRef e, RequestCost cost, Usage actual, Duration service) {
    const uint64_t cookie = next_cookie_++;
    Decision d = pool_->Admit(e, cost, cookie);
    if (IsAdmitted(d.outcome)) {
      Start(e, std::move(d.reservation), actual, service, 0.0);
    } else if (d.outcome == AdmissionOutcome::kQueued) {
      pending_[cookie] = {e, actual, service};
      DispatchNow();
    } else {
      ++served_[e.index].refused;
    }
    return d.outcome;
  }

  // Processes completions and expiries up to `t` in time order.
  void RunUntil(Time t) {
    for (;;) {
      Time next = pool_->NextWakeup();
      if (!running_.empty() && running_.top().at < next) next = running_.top().at;
      if (next > t) break;
      clock_.Set(next);
      while (!running_.empty() && running_.top().at <= clock_.Now()) {
        Running r = running_.top();
        running_.pop();
        auto it = reservations_.find(r.id);
        it->second.res.Settle(it->second.actual);
        served_[it->second.ent.index].tokens += it->second.actual.Total().v;
        ++served_[it->second.ent.index].requests;
        reservations_.erase(it);
      }
      DispatchNow();
    }
    clock_.Set(t);
    DispatchNow();
  }

  size_t pending_for(EntitlementRef e) const {
    size_t n = 0;
    for (const auto& [cookie, p] : pending_) n += p.ent == e ? 1 : 0;
    return n;
  }
  size_t running() const { return reservations_.size(); }
  size_t pending() const { return pending_.size(); }
  uint64_t expired() const { return expired_; }

 private:
  struct Pending {
    EntitlementRef ent;
    Usage actual;
    Duration service;
  };
  struct Held {
    EntitlementRef ent;
    Reservation res;
    Usage actual;
  };
  struct Running {
    Time at;
    uint64_t id;
    bool operator<(const Running& o) const { return at > o.at || (at == o.at && id > o.id); }
  };

  void Start(EntitlementRef e, Reservation r, Usage actual, Duration service, double waited_s) {
    const uint64_t id = next_id_++;
    served_[e.index].waits_s.push_back(waited_s);
    reservations_.emplace(id, Held{e, std::move(r), actual});
    running_.push({clock_.Now() + service, id});
  }

  void DispatchNow() {
    events_.clear();
    pool_->Dispatch(&events_);
    for (QueueEvent& ev : events_) {
      auto it = pending_.find(ev.cookie);
      if (it == pending_.end()) continue;
      Pending p = it->second;
      pending_.erase(it);
      if (IsAdmitted(ev.outcome)) {
        Start(p.ent, std::move(ev.reservation), p.actual, p.service, ToSeconds(ev.waited));
      } else {
        ++served_[p.ent.index].refused;
        if (ev.outcome == AdmissionOutcome::kExpired) ++expired_;
      }
    }
  }

  ManualClock clock_;
  std::unique_ptr<TokenPool> pool_;
  std::map<uint64_t, Pending> pending_;
  std::map<uint64_t, Held> reservations_;
  std::priority_queue<Running> running_;
  std::map<uint32_t, Served> served_;
  std::vector<QueueEvent> events_;
  uint64_t next_cookie_ = 1;
  uint64_t next_id_ = 1;
  uint64_t expired_ = 0;
};

}  // namespace tokenpool::testing
