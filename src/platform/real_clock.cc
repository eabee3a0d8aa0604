#include "tokenpool/real_clock.h"

#include <chrono>

namespace tokenpool {

Time RealClock::Now() const {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch());
  return Time::FromNanos(ns.count());
}

}  // namespace tokenpool
