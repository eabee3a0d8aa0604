#include "tokenpool/autoscale.h"

#include <gtest/gtest.h>

namespace tokenpool {
namespace {

PoolConfig Pool() {
  PoolConfig c;
  c.name = "p";
  c.replica_capacity = {.token_rate = 1000, .kv_tokens = 10000, .concurrency = 10};
  c.min_replicas = 1;
  c.max_replicas = 8;
  return c;
}

PoolSnapshot Snap(ResourceVector in_use, ResourceVector guarantees = {},
                  ResourceVector queued = {}) {
  PoolSnapshot s;
  s.in_use = in_use;
  s.guarantees = guarantees;
  s.queued_demand = queued;
  return s;
}

TEST(AutoscaleTest, NeverBelowWhatGuaranteesNeed) {
  Autoscaler a(AutoscaleConfig{});
  // Guarantees of 25 slots need 3 replicas of 10 even with no load.
  auto d = a.Recommend(Time::Zero(), Snap({}, {100, 1000, 25}), Pool());
  EXPECT_EQ(d.guarantee_floor, 3);
  EXPECT_EQ(d.desired, 3);
  // Exactly 2 replicas of guarantees is 2, not 3.
  Autoscaler b(AutoscaleConfig{});
  EXPECT_EQ(b.Recommend(Time::Zero(), Snap({}, {0, 0, 20}), Pool()).desired, 2);
}

TEST(AutoscaleTest, DemandIncludesQueueAndTargetUtilization) {
  Autoscaler a(AutoscaleConfig{});
  // 30 slots in use + 10 queued = 40 at 80% of 10 per replica -> 5 replicas.
  auto d = a.Recommend(Time::Zero(), Snap({0, 0, 30}, {}, {0, 0, 10}), Pool());
  EXPECT_EQ(d.demand, 5);
  EXPECT_EQ(d.desired, 5);
  EXPECT_EQ(d.limiting_dim, Dim::kConcurrency);
  // Token rate can be the limiting dimension too: 5,000 tok/s / (1,000 x 0.8) -> 7.
  Autoscaler b(AutoscaleConfig{});
  auto e = b.Recommend(Time::Zero(), Snap({5000, 0, 1}), Pool());
  EXPECT_EQ(e.desired, 7);
  EXPECT_EQ(e.limiting_dim, Dim::kTokenRate);
  // Clamped to max_replicas.
  Autoscaler c(AutoscaleConfig{});
  EXPECT_EQ(c.Recommend(Time::Zero(), Snap({0, 0, 500}), Pool()).desired, 8);
}

TEST(AutoscaleTest, ScaleUpAtOnceScaleDownAfterStabilization) {
  AutoscaleConfig cfg;
  cfg.scale_down_stabilization = Seconds(300);
  cfg.load_time_constant = Seconds(1);
  Autoscaler a(cfg);
  Time t = Time::Zero();
  EXPECT_EQ(a.Recommend(t, Snap({0, 0, 8}), Pool()).desired, 1);
  t += Seconds(1);
  EXPECT_EQ(a.Recommend(t, Snap({0, 0, 38}), Pool()).desired, 5);  // up at once
  // Load drops; the smoothed load decays within seconds, but replicas stay for 300 s.
  for (int i = 0; i < 299; ++i) {
    t += Seconds(1);
    ASSERT_EQ(a.Recommend(t, Snap({0, 0, 2}), Pool()).desired, 5) << i;
  }
  // The smoothed load took ~10 s to decay, so its last higher recommendations leave the
  // window ~10 s after the first one did.
  t += Seconds(15);
  EXPECT_EQ(a.Recommend(t, Snap({0, 0, 2}), Pool()).desired, 1);
}

TEST(AutoscaleTest, ConfigValidation) {
  AutoscaleConfig c;
  c.target_utilization = 0;
  EXPECT_EQ(c.Validate().code(), StatusCode::kInvalidArgument);
  c.target_utilization = 0.8;
  EXPECT_TRUE(c.Validate().ok());
}

}  // namespace
}  // namespace tokenpool
