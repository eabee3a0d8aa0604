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

// The origin of every scaled clock: taken when the first one is constructed (thread-safe
// static initialisation).
int64_t Origin() {
  static const int64_t origin = SteadyNanos();
  return origin;
}

}  // namespace

Duration ScaleDuration(Duration d, double k) {
  constexpr double kLimit = 4.611686018427388e18;  // 2^62
  const double v = static_cast<double>(d.count()) * k;
  if (v >= kLimit) return Duration(static_cast<int64_t>(kLimit));
  if (v <= -kLimit) return Duration(-static_cast<int64_t>(kLimit));
  return Duration(std::llround(v));
}

RealClock::RealClock(double scale) : scale_(scale > 0 ? scale : 1.0) {
  if (scale_ != 1.0) Origin();
}

Time RealClock::Now() const {
  const int64_t ns = SteadyNanos();
  if (scale_ == 1.0) return Time::FromNanos(ns);
  const int64_t origin = Origin();
  return Time::FromNanos(origin + ScaleDuration(Duration(ns - origin), scale_).count());
}

Duration RealClock::ToWall(Duration d) const {
  if (scale_ == 1.0) return d;
  return ScaleDuration(d, 1.0 / scale_);
}

Duration RealClock::FromWall(Duration d) const {
  if (scale_ == 1.0) return d;
  return ScaleDuration(d, scale_);
}

}  // namespace tokenpool
