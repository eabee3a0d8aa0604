#pragma once
// Clock: the only way time enters the core. The gateway and the mock use RealClock
// (tokenpool/real_clock.h, in the platform library); the simulator and tests use ManualClock.
// Top-level components read Now() once per decision and pass `now` down.
//
// Thread-safety: Now() of RealClock is safe from any thread. ManualClock is not synchronized:
// one thread (the simulator loop or a test) owns it.

#include "tokenpool/units.h"

namespace tokenpool {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual Time Now() const = 0;
};

// Time moves only when told to. Starts at Time::Zero() unless given a start.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(Time start = Time::Zero()) : now_(start) {}
  Time Now() const override { return now_; }
  void Advance(Duration d) { now_ += d; }
  // Requires t >= Now(): a clock never goes back.
  void Set(Time t) {
    if (t > now_) now_ = t;
  }

 private:
  Time now_;
};

}  // namespace tokenpool
