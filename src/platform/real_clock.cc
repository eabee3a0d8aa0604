#include "tokenpool/real_clock.h"

#include <chrono>
#include <cmath>

namespace tokenpool {
namespace {

int64_t SteadyNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// The origin of every scaled clock: the first read (thread-safe static initialisation).
int64_t Origin() {
  static const int64_t origin = SteadyNanos();
  return origin;
}

// ns × k, saturated at ±2^62 ns (146 years): beyond it a scaled clock stands still rather than
// overflow (at K = 1000 that is 53 days after the origin).
int64_t Scaled(int64_t ns, double k) {
  constexpr double kLimit = 4.611686018427388e18;  // 2^62
  const double v = static_cast<double>(ns) * k;
  if (v >= kLimit) return static_cast<int64_t>(kLimit);
  if (v <= -kLimit) return -static_cast<int64_t>(kLimit);
  return static_cast<int64_t>(std::llround(v));
}

}  // namespace

RealClock::RealClock(double scale) : scale_(scale > 0 ? scale : 1.0) {
  if (scale_ != 1.0) Origin();
}

Time RealClock::Now() const {
  const int64_t ns = SteadyNanos();
  if (scale_ == 1.0) return Time::FromNanos(ns);
  const int64_t origin = Origin();
  return Time::FromNanos(origin + Scaled(ns - origin, scale_));
}

Duration RealClock::ToWall(Duration d) const {
  if (scale_ == 1.0) return d;
  return Duration(Scaled(d.count(), 1.0 / scale_));
}

Duration RealClock::FromWall(Duration d) const {
  if (scale_ == 1.0) return d;
  return Duration(Scaled(d.count(), scale_));
}

}  // namespace tokenpool
