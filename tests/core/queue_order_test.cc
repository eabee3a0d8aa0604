// Conformance of every registered QueueOrder: found by name, deterministic, and, used in a pool
// whose queue is never empty, it starves no entitlement of its band.
#include "tokenpool/queue_order.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "pool_harness.h"
#include "tokenpool/token_pool.h"

namespace tokenpool {
namespace {

using ::testing::HasSubstr;

TEST(QueueOrderTest, UnknownNamesAreRefusedWithTheField) {
  auto o = FindQueueOrder("lottery");
  ASSERT_FALSE(o.ok());
  EXPECT_THAT(o.status().message(), HasSubstr("must be one of edf, fair-share, fifo"));
  PoolConfig c;
  c.name = "p";
  c.replica_capacity = {1, 1, 1};
  c.order[1] = "lottery";
  EXPECT_THAT(c.Validate().message(), HasSubstr("pools[p].order.elastic: order: must be one of"));
}

TEST(QueueOrderTest, KeysFollowTheirDefinition) {
  QueueHead a{.virtual_tokens = 10, .order_deadline = Time::FromNanos(5), .enqueued = {}, .seq = 2};
  QueueHead b{.virtual_tokens = 5, .order_deadline = Time::FromNanos(9), .enqueued = {}, .seq = 1};
  EXPECT_LT(EdfOrder().Key(a), EdfOrder().Key(b));
  EXPECT_LT(FairShareOrder().Key(b), FairShareOrder().Key(a));
  EXPECT_LT(FifoOrder().Key(b), FifoOrder().Key(a));
  EXPECT_TRUE(FairShareOrder().UsesVirtualTime());
  EXPECT_FALSE(EdfOrder().UsesVirtualTime());
}

class QueueOrderConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(QueueOrderConformance, DeterministicAndNoStarvationInEveryBand) {
  const QueueOrder& order = *FindQueueOrder(GetParam()).value();
  QueueHead h{.virtual_tokens = 3, .order_deadline = Time::FromNanos(7), .enqueued = {}, .seq = 4};
  EXPECT_EQ(order.Key(h), order.Key(h));
  for (EntitlementClass cls :
       {EntitlementClass::kGuaranteed, EntitlementClass::kElastic, EntitlementClass::kSpot}) {
    PoolConfig cfg;
    cfg.name = "conf";
    cfg.replica_capacity = {1e7, 1e7, 4};
    cfg.order = {GetParam(), GetParam(), GetParam()};
    testing::PoolHarness harness(cfg);
    EntitlementRef ents[2];
    for (int i = 0; i < 2; ++i) {
      EntitlementSpec s;
      s.name = std::string(1, static_cast<char>('a' + i));
      s.tenant = s.name;
      s.cls = cls;
      if (cls != EntitlementClass::kSpot) s.guarantee = {0, 0, 1};
      s.burst = {1e7, 1e7, 4};
      s.weight = i == 0 ? 1 : 5;  // a light and a heavy tenant
      s.slo.max_queue_wait = Seconds(1e6);
      ents[i] = harness.pool().AddEntitlement(s).value();
    }
    for (int t = 1; t <= 200; ++t) {
      for (EntitlementRef e : ents) {
        while (harness.pending_for(e) < 6) {
          harness.Submit(e, {Tokens(100), Tokens(100)}, {Tokens(100), Tokens(100)},
                         Milliseconds(300));
        }
      }
      harness.RunUntil(Time::FromNanos(Seconds(t).count()));
    }
    for (EntitlementRef e : ents) {
      EXPECT_GT(harness.served(e).requests, 50)
          << GetParam() << " starves an entitlement of class " << EntitlementClassName(cls);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllOrders, QueueOrderConformance,
                         ::testing::Values("edf", "fair-share", "fifo"));

}  // namespace
}  // namespace tokenpool
