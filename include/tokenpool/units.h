#pragma once
// Units in types: Tokens (strong int64), TokensPerSec, Duration and Time (a time point of our
// own, so it cannot be mixed with std::chrono clocks by accident).
//
//   Tokens t = TokensPerSec{240.0} * Seconds(2.5);   // 600 tokens, rounded down
//   Time deadline = now + Milliseconds(500);
//
// Thread-safety: plain values.

#include <chrono>
#include <compare>
#include <cstdint>
#include <limits>

namespace tokenpool {

// A count of tokens (prompt, output, KV-cache slots). Signed so that differences are natural.
struct Tokens {
  int64_t v = 0;
  constexpr Tokens() = default;
  constexpr explicit Tokens(int64_t n) : v(n) {}
  constexpr auto operator<=>(const Tokens&) const = default;
  constexpr Tokens operator+(Tokens o) const { return Tokens(v + o.v); }
  constexpr Tokens operator-(Tokens o) const { return Tokens(v - o.v); }
  constexpr Tokens& operator+=(Tokens o) {
    v += o.v;
    return *this;
  }
  constexpr Tokens& operator-=(Tokens o) {
    v -= o.v;
    return *this;
  }
};

using Duration = std::chrono::nanoseconds;

// The longest duration a config file, scenario or command line may give, in seconds (about
// 31.7 years): a time point plus it stays far inside Time's range (±292 years of nanoseconds).
// Every parser refuses a duration past it, or one that is not finite, naming the field.
inline constexpr double kMaxDurationSeconds = 1e9;

// The parsers' rule for a duration in seconds: finite, at most kMaxDurationSeconds, and > 0
// (or >= 0 when `zero_ok`). Their messages say it as "must be in (0, 1e9] seconds" ("[0, ...").
constexpr bool IsDurationSeconds(double s, bool zero_ok) {
  return (zero_ok ? s >= 0 : s > 0) && s <= kMaxDurationSeconds;
}

// A double as an int64, rounded toward zero and saturating: NaN gives 0 and a value past
// int64's range gives its end, where a plain cast would be undefined behaviour. The parsers'
// bounds keep such values out of durations and counts; this is the floor under them.
constexpr int64_t SaturatingInt64(double x) {
  if (!(x == x)) return 0;
  if (x >= 9.2e18) return std::numeric_limits<int64_t>::max();
  if (x <= -9.2e18) return std::numeric_limits<int64_t>::min();
  return static_cast<int64_t>(x);
}

constexpr Duration Seconds(double s) { return Duration(SaturatingInt64(s * 1e9)); }
constexpr Duration Milliseconds(double ms) { return Duration(SaturatingInt64(ms * 1e6)); }
constexpr Duration Microseconds(double us) { return Duration(SaturatingInt64(us * 1e3)); }
constexpr double ToSeconds(Duration d) { return static_cast<double>(d.count()) * 1e-9; }
constexpr double ToMilliseconds(Duration d) { return static_cast<double>(d.count()) * 1e-6; }

// Token throughput.
struct TokensPerSec {
  double v = 0;
  constexpr auto operator<=>(const TokensPerSec&) const = default;
};

// TokensPerSec × Duration → Tokens, rounded down: a rate never grants a token it has not
// fully accrued. Defined once, here.
constexpr Tokens operator*(TokensPerSec r, Duration d) {
  return Tokens(SaturatingInt64(r.v * ToSeconds(d)));
}

// A point on a Clock's timeline: nanoseconds since that clock's epoch (arbitrary per clock).
class Time {
 public:
  constexpr Time() = default;
  static constexpr Time FromNanos(int64_t ns) { return Time(ns); }
  static constexpr Time Zero() { return Time(0); }
  static constexpr Time Max() { return Time(std::numeric_limits<int64_t>::max()); }

  constexpr int64_t nanos() const { return ns_; }
  constexpr double seconds() const { return static_cast<double>(ns_) * 1e-9; }

  constexpr auto operator<=>(const Time&) const = default;
  constexpr Time operator+(Duration d) const { return Time(ns_ + d.count()); }
  constexpr Time operator-(Duration d) const { return Time(ns_ - d.count()); }
  constexpr Duration operator-(Time o) const { return Duration(ns_ - o.ns_); }
  constexpr Time& operator+=(Duration d) {
    ns_ += d.count();
    return *this;
  }

 private:
  constexpr explicit Time(int64_t ns) : ns_(ns) {}
  int64_t ns_ = 0;
};

}  // namespace tokenpool
