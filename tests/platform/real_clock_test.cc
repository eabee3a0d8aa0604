#include "tokenpool/real_clock.h"

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tokenpool
