#include "tokenpool/real_clock.h"

#include <gtest/gtest.h>

#include <chrono>
#include <limits>
#include <thread>

namespace tokenpool {
namespace {

TEST(RealClockTest, IsMonotonic) {
  RealClock clock;
  Time prev = clock.Now();
  for (int i = 0; i < 1000; ++i) {
    Time t = clock.Now();
    EXPECT_GE(t, prev);
    prev = t;
  }
}

// A pin holds Now() of its clock on its thread; nested pins, other clocks and other threads
// are unaffected, and the clock moves again once the pin is gone.
TEST(RealClockTest, PinHoldsNowOnItsThread) {
  RealClock clock;
  RealClock other(2.0);
  const auto sleep = [] { std::this_thread::sleep_for(std::chrono::milliseconds(2)); };
  Time pinned;
  {
    const RealClock::Pin pin(clock);
    pinned = clock.Now();
    sleep();
    EXPECT_EQ(clock.Now(), pinned);
    {
      const RealClock::Pin inner(clock);  // does nothing: the outer one holds
      sleep();
      EXPECT_EQ(clock.Now(), pinned);
    }
    EXPECT_EQ(clock.Now(), pinned);  // still held after the inner one ended
    const Time o = other.Now();
    sleep();
    EXPECT_GT(other.Now(), o);  // another clock is not pinned
    Time seen;
    std::thread([&] { seen = clock.Now(); }).join();
    EXPECT_GT(seen, pinned);  // nor is another thread
  }
  sleep();
  EXPECT_GT(clock.Now(), pinned);
}

// A scaled clock moves K times as far as the wall clock between two reads (bounded on both
// sides by unscaled reads around them), and two scaled clocks share their origin.
TEST(RealClockTest, ScaledClockRunsKTimesFaster) {
  RealClock wall;
  RealClock fast(50);
  EXPECT_EQ(fast.scale(), 50);
  const Time w0 = wall.Now();
  const Time f0 = fast.Now();
  const Time w1 = wall.Now();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const Time w2 = wall.Now();
  const Time f1 = fast.Now();
  const Time w3 = wall.Now();
  const RealClock also_fast(50);  // constructed later: the same origin all the same
  const Time g1 = also_fast.Now();
  EXPECT_GE((f1 - f0).count(), 50 * (w2 - w1).count() - 1);
  EXPECT_LE((f1 - f0).count(), 50 * (w3 - w0).count() + 1);
  EXPECT_GE(g1, f1);  // the same origin: later reads of either are never behind
  EXPECT_LE((g1 - f1).count(), 50 * (wall.Now() - w2).count() + 1);
  EXPECT_EQ(fast.ToWall(Seconds(5)), Milliseconds(100));
  EXPECT_EQ(fast.FromWall(Milliseconds(100)), Seconds(5));
  EXPECT_EQ(wall.ToWall(Seconds(5)), Seconds(5));
  EXPECT_EQ(ScaleDuration(Seconds(5), 0.02), Milliseconds(100));
  EXPECT_EQ(ScaleDuration(Seconds(1e9), 1e9).count(), int64_t{1} << 62);  // saturated
  RealClock bad(0);  // not a scale: real time
  EXPECT_EQ(bad.scale(), 1);
}

TEST(ManualClockTest, MovesOnlyWhenTold) {
  ManualClock clock;
  EXPECT_EQ(clock.Now(), Time::Zero());
  clock.Advance(Milliseconds(5));
  EXPECT_EQ(clock.Now(), Time::FromNanos(5'000'000));
  clock.Set(Time::FromNanos(1));  // never goes back
  EXPECT_EQ(clock.Now(), Time::FromNanos(5'000'000));
}

TEST(UnitsTest, RateTimesDurationRoundsDown) {
  EXPECT_EQ(TokensPerSec{240.0} * Seconds(2.5), Tokens(600));
  EXPECT_EQ(TokensPerSec{1.0} * Milliseconds(999), Tokens(0));
}

// A conversion out of int64's range saturates (a plain cast is undefined behaviour, and on
// x86 gives INT64_MIN: a timeout of 1e300 s would have been a deadline in the past).
TEST(UnitsTest, ConversionsSaturateInsteadOfOverflowing) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(Seconds(1e300).count(), kMax);
  EXPECT_EQ(Seconds(std::numeric_limits<double>::infinity()).count(), kMax);
  EXPECT_EQ(Seconds(-1e300).count(), kMin);
  EXPECT_EQ(Seconds(std::numeric_limits<double>::quiet_NaN()).count(), 0);
  EXPECT_EQ(Milliseconds(1e20).count(), kMax);
  EXPECT_EQ(Microseconds(-1e20).count(), kMin);
  EXPECT_EQ((TokensPerSec{1e300} * Seconds(1)), Tokens(kMax));
  // Inside the range nothing changes, up to the longest duration a parser accepts.
  EXPECT_EQ(Seconds(kMaxDurationSeconds).count(), 1'000'000'000'000'000'000);
  EXPECT_EQ(Seconds(-2.5).count(), -2'500'000'000);
  EXPECT_GT(Time::FromNanos(0) + Seconds(kMaxDurationSeconds) + Seconds(kMaxDurationSeconds),
            Time::FromNanos(0));
}

}  // namespace
}  // namespace tokenpool
