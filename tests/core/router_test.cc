#include "tokenpool/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace tokenpool {
namespace {

using ::testing::HasSubstr;

std::vector<RoutePool> Pools(double short_util = 0, uint32_t short_q = 0, double long_util = 0,
                             uint32_t long_q = 0) {
  return {{"short", 8192, short_util, short_q}, {"long", 65536, long_util, long_q}};
}

std::unique_ptr<Router> Make(std::string_view name) {
  return MakeRouter(name, RouterConfig{}).value();
}

TEST(RouterTest, UnknownModeListsTheKnownOnes) {
  auto r = MakeRouter("round-robin", RouterConfig{});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(),
              HasSubstr("router.mode: must be one of single, two-pool, spillover"));
  RouterConfig bad;
  bad.spill_utilization = 1.5;
  EXPECT_THAT(MakeRouter("spillover", bad).status().message(),
              HasSubstr("router.spill_utilization"));
}

TEST(RouterTest, SinglePoolRefusesWhatExceedsItsContext) {
  auto r = Make("single");
  std::vector<RoutePool> one = {{"all", 65536, 0, 0}};
  EXPECT_EQ(r->Route(100, one).pool, 0);
  EXPECT_EQ(r->Route(65536, one).reason, RouteReason::kOnlyPool);
  EXPECT_FALSE(r->Route(65537, one).ok());
}

TEST(RouterTest, TwoPoolSplitsAtTheShortContext) {
  auto r = Make("two-pool");
  auto pools = Pools();
  EXPECT_EQ(r->Route(8192, pools).pool, 0);
  EXPECT_EQ(r->Route(8192, pools).reason, RouteReason::kShort);
  EXPECT_EQ(r->Route(8193, pools).pool, 1);
  EXPECT_EQ(r->Route(8193, pools).reason, RouteReason::kLong);
  // Saturation does not move anything in two-pool mode.
  EXPECT_EQ(r->Route(100, Pools(1.0, 50)).pool, 0);
  const RouteDecision none = r->Route(70000, pools);
  EXPECT_FALSE(none.ok());
  EXPECT_EQ(none.reason, RouteReason::kNoPoolFits);
  EXPECT_EQ(NoPoolFitsMessage(70000, pools),
            "request needs 70000 tokens (estimated prompt + output reserve); the largest pool "
            "for this model, \"long\", accepts 65536 (reduce the prompt or max_tokens)");
}

TEST(RouterTest, SpilloverMovesShortRequestsOnlyWhileShortIsSaturated) {
  auto r = Make("spillover");
  EXPECT_EQ(r->Route(1000, Pools(0.5)).reason, RouteReason::kShort);
  EXPECT_EQ(r->Route(1000, Pools(0.85)).reason, RouteReason::kSpilled);
  EXPECT_EQ(r->Route(1000, Pools(0.2, 3)).pool, 1);  // queued work is saturation too
  // The long pool is saturated as well: stay and wait in the short pool.
  EXPECT_EQ(r->Route(1000, Pools(0.9, 0, 0.9, 0)).reason, RouteReason::kShort);
  // Long requests never go to the short pool, whatever the load.
  EXPECT_EQ(r->Route(9000, Pools(0, 0, 1.0, 100)).pool, 1);
  EXPECT_FALSE(r->Route(65537, Pools()).ok());
}

// Conformance over every registered router: no pick exceeds the chosen pool's context, and the
// same input gives the same answer.
TEST(RouterTest, EveryModeNeverPicksAPoolTooSmall) {
  for (const RouterMode& m : RouterModes()) {
    auto r = m.make(RouterConfig{});
    for (int64_t budget : {1, 100, 8191, 8192, 8193, 30000, 65536, 65537, 1 << 20}) {
      for (double u : {0.0, 0.5, 0.9, 1.0}) {
        auto pools = Pools(u, u > 0.8 ? 5u : 0u, 1.0 - u, 0);
        const RouteDecision d = r->Route(budget, pools);
        if (d.ok()) {
          EXPECT_LE(budget, pools[static_cast<size_t>(d.pool)].max_model_len) << m.name;
        } else {
          EXPECT_GT(budget, pools.back().max_model_len) << m.name;
        }
        EXPECT_EQ(d.pool, r->Route(budget, pools).pool) << m.name;
      }
    }
    EXPECT_FALSE(r->Route(1, {}).ok()) << m.name;
  }
}

}  // namespace
}  // namespace tokenpool
