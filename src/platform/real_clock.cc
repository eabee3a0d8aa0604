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

// The pinned time of this thread (RealClock::Pin), for `clock` only.
// The time is read at the first Now() under the pin (a section that never asks reads nothing).
struct Pinned {
  const RealClock* clock = nullptr;
  bool read = false;
  Time time;
};
thread_local Pinned pinned;

}  // namespace

RealClock::Pin::Pin(const RealClock& clock) {
  if (pinned.clock != nullptr) return;
  pinned.clock = &clock;
  pinned.read = false;
  owner_ = true;
}

RealClock::Pin::~Pin() {
  if (owner_) pinned.clock = nullptr;
}

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
  if (pinned.clock == this) {
    if (!pinned.read) {
      pinned.read = true;
      pinned.time = Read();
    }
    return pinned.time;
  }
  return Read();
}

Time RealClock::Read() const {
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
