#pragma once
// RealClock: monotonic time (std::chrono::steady_clock) as a tokenpool::Time. Lives in the
// platform library so that the pure core never reads the wall clock itself.
// Thread-safety: safe from any thread.

#include "tokenpool/clock.h"

namespace tokenpool {

class RealClock final : public Clock {
 public:
  Time Now() const override;
};

}  // namespace tokenpool
