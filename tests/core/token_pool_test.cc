#include "tokenpool/token_pool.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <vector>

namespace tokenpool {
namespace {

using ::testing::HasSubstr;

PoolConfig SmallPool() {
  PoolConfig c;
  c.name = "test";
  c.replica_capacity = {.token_rate = 1000, .kv_tokens = 10000, .concurrency = 10};
  c.min_replicas = 1;
  c.max_replicas = 2;
  c.initial_replicas = 1;
  c.rate_window = Seconds(10);
  return c;
}

EntitlementSpec Spec(std::string name, EntitlementClass cls, ResourceVector g, ResourceVector b) {
  EntitlementSpec s;
  s.name = name;
  s.tenant = name;
  s.cls = cls;
  s.guarantee = g;
  s.burst = b;
  return s;
}

RequestCost Cost(int64_t prompt, int64_t output) { return {Tokens(prompt), Tokens(output)}; }

class TokenPoolTest : public ::testing::Test {
 protected:
  void SetUp() override { pool_ = TokenPool::Create(SmallPool(), clock_).value(); }
  ManualClock clock_;
  std::unique_ptr<TokenPool> pool_;
};

TEST_F(TokenPoolTest, PoolConfigValidationNamesFieldAndRule) {
  PoolConfig c = SmallPool();
  c.replica_capacity.concurrency = 0;
  Status s = c.Validate();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("pools[test].replica_capacity.concurrency: must be > 0"));
  c = SmallPool();
  c.max_replicas = 0;
  c.min_replicas = 1;
  EXPECT_THAT(c.Validate().message(), HasSubstr("max_replicas"));
  EXPECT_FALSE(TokenPool::Create(c, clock_).ok());
}

TEST_F(TokenPoolTest, InvalidEntitlementsAreRefusedAndNothingChanges) {
  struct Case {
    EntitlementSpec spec;
    const char* want;
  };
  std::vector<Case> cases;
  auto base = Spec("a", EntitlementClass::kElastic, {100, 1000, 2}, {200, 2000, 4});
  {
    auto s = base;
    s.guarantee.kv_tokens = -1;
    cases.push_back({s, "entitlements[a].guarantee.kv_tokens: must be >= 0"});
  }
  {
    auto s = base;
    s.burst.concurrency = 1;
    cases.push_back({s, "entitlements[a].burst.concurrency: must be >= guarantee.concurrency"});
  }
  {
    auto s = base;
    s.cls = EntitlementClass::kSpot;
    cases.push_back({s, "must be 0 for class spot"});
  }
  {
    auto s = base;
    s.weight = 0;
    cases.push_back({s, "entitlements[a].weight: must be in [0.001, 1000], got 0"});
  }
  {
    auto s = base;
    s.weight = 5e-324;  // fair share divides by it: debts went infinite, then NaN
    cases.push_back({s, "entitlements[a].weight: must be in [0.001, 1000]"});
  }
  {
    auto s = base;
    s.weight = 1e6;
    cases.push_back({s, "entitlements[a].weight: must be in [0.001, 1000], got 1e+06"});
  }
  {
    auto s = base;
    s.burst = {};
    s.guarantee = {};
    cases.push_back({s, "entitlements[a].burst: every dimension must be > 0"});
  }
  {
    auto s = base;
    s.quotas.limit[1] = -5;
    cases.push_back({s, "entitlements[a].quotas.hour: must be >= 0"});
  }
  for (const Case& c : cases) {
    auto r = pool_->AddEntitlement(c.spec);
    ASSERT_FALSE(r.ok()) << c.want;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr(c.want));
  }
  EXPECT_TRUE(pool_->Entitlements().empty());
  EXPECT_EQ(ParseEntitlementClass("gold").status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(ParseEntitlementClass("gold").status().message(),
              HasSubstr("must be one of guaranteed, elastic, spot"));
}

TEST_F(TokenPoolTest, EntitlementAdmissionChecksGuaranteesAtMaxReplicas) {
  // Max capacity is 2 replicas: concurrency 20.
  auto a = pool_->AddEntitlement(
      Spec("a", EntitlementClass::kGuaranteed, {500, 5000, 12}, {500, 5000, 12}));
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  auto b = pool_->AddEntitlement(
      Spec("b", EntitlementClass::kElastic, {500, 5000, 9}, {1000, 10000, 20}));
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(b.status().message(),
              HasSubstr("at max_replicas=2 on concurrency by 1 (sum 21 > capacity 20)"));
  // Spot guarantees nothing, so it always fits.
  EXPECT_TRUE(pool_->AddEntitlement(Spec("s", EntitlementClass::kSpot, {}, {100, 100, 1})).ok());
  // A change is checked the same way, excluding its own old guarantee.
  auto spec = Spec("a", EntitlementClass::kGuaranteed, {500, 5000, 20}, {500, 5000, 20});
  EXPECT_TRUE(pool_->UpdateEntitlement(*a, spec).ok());
  spec.guarantee.concurrency = spec.burst.concurrency = 21;
  EXPECT_EQ(pool_->UpdateEntitlement(*a, spec).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(pool_->AddEntitlement(spec).status().code(), StatusCode::kAlreadyExists);
}

TEST_F(TokenPoolTest, WithinGuaranteeThenBurstThenRefused) {
  auto spec = Spec("e", EntitlementClass::kElastic, {1000, 2000, 2}, {1000, 6000, 4});
  spec.slo.max_queue_wait = Duration::zero();  // refuse rather than wait
  auto e = pool_->AddEntitlement(spec).value();
  Decision d1 = pool_->Admit(e, Cost(500, 500), 1);
  EXPECT_EQ(d1.outcome, AdmissionOutcome::kAdmittedGuaranteed);
  Decision d2 = pool_->Admit(e, Cost(500, 500), 2);
  EXPECT_EQ(d2.outcome, AdmissionOutcome::kAdmittedGuaranteed);
  Decision d3 = pool_->Admit(e, Cost(500, 500), 3);
  EXPECT_EQ(d3.outcome, AdmissionOutcome::kAdmittedBurst);
  Decision d4 = pool_->Admit(e, Cost(500, 500), 4);
  EXPECT_EQ(d4.outcome, AdmissionOutcome::kAdmittedBurst);
  Decision d5 = pool_->Admit(e, Cost(500, 500), 5);
  EXPECT_EQ(d5.outcome, AdmissionOutcome::kRejectedOverEntitlement);
  EXPECT_EQ(d5.limiting_dim, Dim::kConcurrency);
  EXPECT_GT(d5.retry_after, Duration::zero());
  EXPECT_EQ(AdmissionOutcomeName(d5.outcome), "rejected_over_entitlement");
  EXPECT_EQ(pool_->InUse().concurrency, 4);
  EXPECT_EQ(pool_->InUse().kv_tokens, 4000);
  EXPECT_NEAR(pool_->InUse().token_rate, 400, 1e-6);  // 4000 tokens / 10 s window
}

TEST_F(TokenPoolTest, ReservationReleasesExactlyOnceWhateverHappens) {
  auto e = pool_
               ->AddEntitlement(
                   Spec("e", EntitlementClass::kElastic, {1000, 5000, 5}, {1000, 10000, 10}))
               .value();
  {
    Decision d = pool_->Admit(e, Cost(100, 100), 1);
    ASSERT_TRUE(d.reservation.active());
    EXPECT_EQ(pool_->InUse().concurrency, 1);
    Reservation moved = std::move(d.reservation);
    EXPECT_FALSE(d.reservation.active());
    moved.Release();
    moved.Release();                       // no-op
    moved.Settle({Tokens(1), Tokens(1)});  // no-op
    EXPECT_EQ(pool_->InUse().concurrency, 0);
  }
  {
    Decision d = pool_->Admit(e, Cost(100, 100), 2);
    EXPECT_EQ(pool_->InUse().kv_tokens, 200);
  }  // destroyed while open: released
  EXPECT_EQ(pool_->InUse().kv_tokens, 0);
  EXPECT_NEAR(pool_->InUse().token_rate, 0, 1e-9);  // refunded
  auto snap = pool_->Snapshot();
  EXPECT_EQ(snap.counters.released, 2u);
  EXPECT_EQ(snap.open_reservations, 0u);
  // Settle swaps the estimate for actual usage on the rate meter.
  Decision d = pool_->Admit(e, Cost(100, 900), 3);
  d.reservation.Settle({Tokens(100), Tokens(50)});
  EXPECT_NEAR(pool_->InUse().token_rate, 15, 1e-9);  // 150 tokens / 10 s
  EXPECT_EQ(pool_->Snapshot().counters.completion_tokens, 50);
  // The meter decays with the window's time constant.
  clock_.Advance(Seconds(10));
  EXPECT_NEAR(pool_->InUse().token_rate, 15 * std::exp(-1.0), 1e-9);
}

TEST_F(TokenPoolTest, QueuedRequestIsDispatchedWhenCapacityFreesAndExpiresOtherwise) {
  auto spec = Spec("e", EntitlementClass::kElastic, {0, 0, 0}, {1000, 10000, 10});
  spec.slo.max_queue_wait = Seconds(1);
  auto e = pool_->AddEntitlement(spec).value();
  std::vector<Reservation> held;
  for (int i = 0; i < 10; ++i) {
    Decision d = pool_->Admit(e, Cost(10, 10), 100 + i);
    ASSERT_EQ(d.outcome, AdmissionOutcome::kAdmittedBurst);
    held.push_back(std::move(d.reservation));
  }
  EXPECT_FALSE(pool_->HasQueueWork());  // full, but nothing waits: Dispatch may be skipped
  Decision q1 = pool_->Admit(e, Cost(10, 10), 1);
  ASSERT_EQ(q1.outcome, AdmissionOutcome::kQueued);
  EXPECT_EQ(q1.deadline, clock_.Now() + Seconds(1));
  EXPECT_EQ(pool_->QueueLength(), 1u);
  EXPECT_TRUE(pool_->HasQueueWork());
  std::vector<QueueEvent> ev;
  EXPECT_EQ(pool_->Dispatch(&ev), 0u);  // still full
  clock_.Advance(Milliseconds(300));
  held.pop_back();  // a completion frees one slot
  EXPECT_EQ(pool_->Dispatch(&ev), 1u);
  EXPECT_EQ(ev[0].cookie, 1u);
  EXPECT_EQ(ev[0].outcome, AdmissionOutcome::kAdmittedBurst);
  EXPECT_EQ(ev[0].waited, Milliseconds(300));
  EXPECT_TRUE(ev[0].reservation.active());
  EXPECT_FALSE(pool_->HasQueueWork());
  held.push_back(std::move(ev[0].reservation));
  ev.clear();
  // The next one waits past its deadline and expires.
  Decision q2 = pool_->Admit(e, Cost(10, 10), 2);
  ASSERT_EQ(q2.outcome, AdmissionOutcome::kQueued);
  EXPECT_EQ(pool_->NextWakeup(), q2.deadline);
  clock_.Set(q2.deadline);
  EXPECT_EQ(pool_->Dispatch(&ev), 1u);
  EXPECT_EQ(ev[0].outcome, AdmissionOutcome::kExpired);
  EXPECT_EQ(pool_->QueueLength(), 0u);
  // Cancel removes a queued request; a second cancel is a no-op.
  Decision q3 = pool_->Admit(e, Cost(10, 10), 3);
  EXPECT_TRUE(pool_->Cancel(q3.ticket));
  EXPECT_FALSE(pool_->Cancel(q3.ticket));
  EXPECT_EQ(pool_->QueueLength(), 0u);
  EXPECT_EQ(pool_->Snapshot().counters.count(AdmissionOutcome::kCancelled), 1u);
  EXPECT_FALSE(pool_->HasQueueWork());
  // A removed entitlement's queued requests are reported by the next Dispatch: work to do.
  Decision q4 = pool_->Admit(e, Cost(10, 10), 4);
  ASSERT_EQ(q4.outcome, AdmissionOutcome::kQueued);
  held.clear();
  ASSERT_TRUE(pool_->RemoveEntitlement(e).ok());
  EXPECT_TRUE(pool_->HasQueueWork());
  ev.clear();
  EXPECT_EQ(pool_->Dispatch(&ev), 1u);
  EXPECT_EQ(ev[0].outcome, AdmissionOutcome::kCancelled);
  EXPECT_FALSE(pool_->HasQueueWork());
}

TEST_F(TokenPoolTest, GuaranteedWorkIsNeverRefusedAndShrinksLending) {
  // Capacity 10 slots. Guaranteed G = 6 slots; spot may backfill.
  auto g =
      pool_
          ->AddEntitlement(Spec("g", EntitlementClass::kGuaranteed, {500, 6000, 6}, {500, 6000, 6}))
          .value();
  auto spot_spec = Spec("s", EntitlementClass::kSpot, {}, {1000, 10000, 10});
  spot_spec.slo.max_queue_wait = Duration::zero();
  auto s = pool_->AddEntitlement(spot_spec).value();
  // With lambda = 0.9, spot may use 4 free + 0.9 x 6 lent = 9.4 -> 9 slots.
  std::vector<Reservation> spot_held;
  for (;;) {
    Decision d = pool_->Admit(s, Cost(10, 10), 0);
    if (!IsAdmitted(d.outcome)) break;
    spot_held.push_back(std::move(d.reservation));
  }
  EXPECT_EQ(spot_held.size(), 9u);
  // The guaranteed tenant returns: one slot is free (held back), then it must wait, not fail.
  Decision g1 = pool_->Admit(g, Cost(10, 10), 1);
  EXPECT_EQ(g1.outcome, AdmissionOutcome::kAdmittedGuaranteed);
  Decision g2 = pool_->Admit(g, Cost(10, 10), 2);
  ASSERT_EQ(g2.outcome, AdmissionOutcome::kQueued);
  EXPECT_EQ(g2.deadline, Time::Max());  // within guarantee: never expires
  // While it waits, spot is shed and lending shrinks.
  clock_.Advance(Milliseconds(100));
  Decision s2 = pool_->Admit(s, Cost(10, 10), 3);
  EXPECT_EQ(s2.outcome, AdmissionOutcome::kRejectedSpotShed);
  EXPECT_LT(pool_->LendingFactor(), 0.9);
  // Spot completes one request; the guaranteed one is dispatched.
  spot_held.pop_back();
  std::vector<QueueEvent> ev;
  ASSERT_EQ(pool_->Dispatch(&ev), 1u);
  EXPECT_EQ(ev[0].cookie, 2u);
  EXPECT_EQ(ev[0].outcome, AdmissionOutcome::kAdmittedGuaranteed);
  // Lending recovers when nothing guaranteed waits.
  clock_.Advance(Seconds(10));
  pool_->Snapshot();
  EXPECT_DOUBLE_EQ(pool_->LendingFactor(), 0.9);
}

// Work queued only on its own entitlement's cap holds no one back: another tenant that cannot
// wait is admitted on the idle pool (it was refused "pool saturated"), and spot is not shed.
TEST_F(TokenPoolTest, WorkQueuedOnItsOwnCapHoldsNoOneBack) {
  auto capped_spec = Spec("capped", EntitlementClass::kElastic, {}, {1000, 10000, 1});
  capped_spec.slo.max_queue_wait = Seconds(30);
  auto capped = pool_->AddEntitlement(capped_spec).value();
  auto nowait_spec = Spec("nowait", EntitlementClass::kElastic, {}, {1000, 10000, 10});
  nowait_spec.slo.max_queue_wait = Duration::zero();
  auto nowait = pool_->AddEntitlement(nowait_spec).value();
  auto spot_spec = Spec("spot", EntitlementClass::kSpot, {}, {1000, 10000, 10});
  spot_spec.slo.max_queue_wait = Duration::zero();
  auto spot = pool_->AddEntitlement(spot_spec).value();
  Decision first = pool_->Admit(capped, Cost(10, 10), 1);
  ASSERT_TRUE(IsAdmitted(first.outcome));
  ASSERT_EQ(pool_->Admit(capped, Cost(10, 10), 2).outcome, AdmissionOutcome::kQueued);
  std::vector<QueueEvent> ev;
  EXPECT_EQ(pool_->Dispatch(&ev), 0u);  // still at its cap of 1
  Decision n = pool_->Admit(nowait, Cost(10, 10), 3);
  EXPECT_EQ(n.outcome, AdmissionOutcome::kAdmittedBurst);
  Decision s = pool_->Admit(spot, Cost(10, 10), 4);
  EXPECT_EQ(s.outcome, AdmissionOutcome::kAdmittedBurst);
  // Its own next request still queues behind its queued one (FIFO per entitlement).
  EXPECT_EQ(pool_->Admit(capped, Cost(1, 1), 5).outcome, AdmissionOutcome::kQueued);
}

// A request within its guarantee is not held behind another tenant's queued burst request
// that the pool blocks: the guarantee is capacity kept for it. Before, it waited (guaranteed:
// for ever) behind the burst head, which the shrinking lending kept blocked.
TEST_F(TokenPoolTest, AGuaranteeIsNotHeldBehindAnotherTenantsQueuedBurst) {
  auto a_spec = Spec("a", EntitlementClass::kGuaranteed, {100, 1000, 2}, {1000, 10000, 10});
  a_spec.slo.max_queue_wait = Seconds(30);
  auto a = pool_->AddEntitlement(a_spec).value();
  auto b_spec = Spec("b", EntitlementClass::kGuaranteed, {400, 4000, 4}, {400, 4000, 4});
  b_spec.slo.max_queue_wait = Seconds(30);
  auto b = pool_->AddEntitlement(b_spec).value();
  std::vector<Reservation> held;
  for (;;) {  // a bursts into what b does not use (b's 4 slots are partly lent)
    Decision d = pool_->Admit(a, Cost(10, 10), 0);
    if (!IsAdmitted(d.outcome)) {
      ASSERT_EQ(d.outcome, AdmissionOutcome::kQueued);  // a burst request waits
      break;
    }
    held.push_back(std::move(d.reservation));
  }
  ASSERT_LT(held.size(), 10u);
  // b's request, within its guarantee, with free slots: admitted at once.
  Decision d = pool_->Admit(b, Cost(10, 10), 7);
  EXPECT_EQ(d.outcome, AdmissionOutcome::kAdmittedGuaranteed);
  // And through Dispatch: b's queued within-guarantee request passes a's blocked burst head.
  std::vector<Reservation> b_held;
  b_held.push_back(std::move(d.reservation));
  while (b_held.size() < 4) {
    Decision x = pool_->Admit(b, Cost(10, 10), 8);
    if (x.outcome != AdmissionOutcome::kAdmittedGuaranteed) {
      ASSERT_EQ(x.outcome, AdmissionOutcome::kQueued);  // the pool is full now
      held.pop_back();                                  // one of a's ends
      std::vector<QueueEvent> ev;
      pool_->Dispatch(&ev);
      ASSERT_FALSE(ev.empty());
      EXPECT_EQ(ev[0].cookie, 8u);  // b's, not a's older burst request
      EXPECT_EQ(ev[0].outcome, AdmissionOutcome::kAdmittedGuaranteed);
      b_held.push_back(std::move(ev[0].reservation));
      continue;
    }
    b_held.push_back(std::move(x.reservation));
  }
  EXPECT_EQ(b_held.size(), 4u);
}

TEST_F(TokenPoolTest, SpotIsPreemptedNewestFirstToMakeRoomForGuaranteedWork) {
  PoolConfig cfg = SmallPool();
  cfg.lending_max = 1.0;  // lend every idle guarantee, so spot can fill the whole pool
  auto pool = TokenPool::Create(cfg, clock_).value();
  auto g =
      pool->AddEntitlement(Spec("g", EntitlementClass::kGuaranteed, {500, 6000, 6}, {500, 6000, 6}))
          .value();
  auto s = pool->AddEntitlement(Spec("s", EntitlementClass::kSpot, {}, {1000, 10000, 10})).value();
  std::vector<Reservation> spot;
  for (int i = 0; i < 10; ++i) {
    clock_.Advance(Milliseconds(1));
    Decision d = pool->Admit(s, Cost(10, 10), 0);
    ASSERT_TRUE(IsAdmitted(d.outcome)) << i;
    spot.push_back(std::move(d.reservation));
  }
  std::vector<uint64_t> ids;
  EXPECT_EQ(pool->SpotPreemptionCandidates(&ids), 0u);  // nothing guaranteed waits
  Decision dg = pool->Admit(g, Cost(10, 10), 7);
  ASSERT_EQ(dg.outcome, AdmissionOutcome::kQueued);
  ASSERT_EQ(pool->SpotPreemptionCandidates(&ids), 1u);
  EXPECT_EQ(ids[0], spot.back().id());  // the newest spot request
  spot.back().Release();                // the caller aborts it
  std::vector<QueueEvent> ev;
  ASSERT_EQ(pool->Dispatch(&ev), 1u);
  EXPECT_EQ(ev[0].cookie, 7u);
  EXPECT_EQ(ev[0].outcome, AdmissionOutcome::kAdmittedGuaranteed);
}

TEST_F(TokenPoolTest, BurstCeilingIsSharedByWeightAmongBursting) {
  auto a_spec = Spec("a", EntitlementClass::kElastic, {}, {1000, 10000, 10});
  auto b_spec = Spec("b", EntitlementClass::kElastic, {}, {1000, 10000, 10});
  b_spec.weight = 3;
  auto a = pool_->AddEntitlement(a_spec).value();
  auto b = pool_->AddEntitlement(b_spec).value();
  // Alone, a may take everything.
  EXPECT_DOUBLE_EQ(pool_->SnapshotEntitlement(a)->burst_ceiling.concurrency, 10);
  Decision db = pool_->Admit(b, Cost(10, 10), 1);
  ASSERT_TRUE(IsAdmitted(db.outcome));
  // b is bursting now: a's ceiling is its weight share 1/4 of the burst pool, b's 3/4.
  EXPECT_DOUBLE_EQ(pool_->SnapshotEntitlement(a)->burst_ceiling.concurrency, 2.5);
  EXPECT_DOUBLE_EQ(pool_->SnapshotEntitlement(b)->burst_ceiling.concurrency, 10);
  Decision da = pool_->Admit(a, Cost(10, 10), 2);
  ASSERT_TRUE(IsAdmitted(da.outcome));
  EXPECT_DOUBLE_EQ(pool_->SnapshotEntitlement(b)->burst_ceiling.concurrency, 7.5);
}

TEST_F(TokenPoolTest, QuotaRefusesUntilTheWindowResets) {
  auto spec = Spec("q", EntitlementClass::kElastic, {}, {1000, 10000, 10});
  spec.quotas.limit[static_cast<int>(QuotaWindow::kMinute)] = 1000;
  auto q = pool_->AddEntitlement(spec).value();
  clock_.Set(Time::FromNanos(Seconds(20).count()));
  Decision d1 = pool_->Admit(q, Cost(400, 400), 1);
  ASSERT_TRUE(IsAdmitted(d1.outcome));
  Decision d2 = pool_->Admit(q, Cost(100, 200), 2);
  EXPECT_EQ(d2.outcome, AdmissionOutcome::kRejectedQuota);
  EXPECT_EQ(d2.retry_after, Seconds(40));  // the minute window ends at t = 60 s
  // Settling with less than estimated gives the difference back.
  d1.reservation.Settle({Tokens(400), Tokens(100)});
  EXPECT_EQ(pool_->SnapshotEntitlement(q)->quota_remaining[0], 500);
  EXPECT_TRUE(IsAdmitted(pool_->Admit(q, Cost(100, 200), 3).outcome));
}

TEST_F(TokenPoolTest, RequestThatCanNeverFitIsTooLarge) {
  auto e =
      pool_->AddEntitlement(Spec("e", EntitlementClass::kElastic, {}, {1000, 5000, 10})).value();
  Decision d = pool_->Admit(e, Cost(4000, 2000), 1);
  EXPECT_EQ(d.outcome, AdmissionOutcome::kRejectedTooLarge);
  EXPECT_EQ(d.limiting_dim, Dim::kKvTokens);
  EXPECT_EQ(pool_->Admit(EntitlementRef{}, Cost(1, 1), 2).outcome,
            AdmissionOutcome::kRejectedUnknownEntitlement);
}

TEST_F(TokenPoolTest, RemovingAnEntitlementCancelsItsQueueAndDrainsItsReservations) {
  auto e = pool_->AddEntitlement(Spec("e", EntitlementClass::kElastic, {0, 0, 0}, {1000, 10000, 1}))
               .value();
  Decision d1 = pool_->Admit(e, Cost(10, 10), 1);
  ASSERT_TRUE(IsAdmitted(d1.outcome));
  Decision d2 = pool_->Admit(e, Cost(10, 10), 2);
  ASSERT_EQ(d2.outcome, AdmissionOutcome::kQueued);
  ASSERT_TRUE(pool_->RemoveEntitlement(e).ok());
  EXPECT_EQ(pool_->Admit(e, Cost(1, 1), 3).outcome, AdmissionOutcome::kRejectedUnknownEntitlement);
  std::vector<QueueEvent> ev;
  ASSERT_EQ(pool_->Dispatch(&ev), 1u);
  EXPECT_EQ(ev[0].cookie, 2u);
  EXPECT_EQ(ev[0].outcome, AdmissionOutcome::kCancelled);
  EXPECT_EQ(pool_->InUse().concurrency, 1);
  d1.reservation.Settle({Tokens(10), Tokens(10)});
  EXPECT_EQ(pool_->InUse().concurrency, 0);
  EXPECT_FALSE(pool_->Find("e").ok());
  // The name can be reused.
  EXPECT_TRUE(
      pool_->AddEntitlement(Spec("e", EntitlementClass::kElastic, {0, 0, 0}, {1000, 10000, 1}))
          .ok());
}

// A tenant's counters over remove and re-add (what its metrics export): a queued request that
// the removal refuses counts as cancelled (before, it was in no outcome), the draining
// entitlement's settle counts, and the one added again continues the tenant's counts rather
// than starting them at 0.
TEST_F(TokenPoolTest, TenantCountersSurviveRemovalAndReAdding) {
  const auto spec = Spec("e", EntitlementClass::kElastic, {0, 0, 0}, {1000, 10000, 1});
  auto e = pool_->AddEntitlement(spec).value();
  Decision d1 = pool_->Admit(e, Cost(10, 10), 1);
  ASSERT_TRUE(IsAdmitted(d1.outcome));
  ASSERT_EQ(pool_->Admit(e, Cost(10, 10), 2).outcome, AdmissionOutcome::kQueued);
  ASSERT_TRUE(pool_->RemoveEntitlement(e).ok());
  EXPECT_EQ(pool_->Snapshot().counters.count(AdmissionOutcome::kCancelled), 1u);
  std::vector<TenantSnapshot> t = pool_->SnapshotTenants();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].tenant, spec.tenant);
  EXPECT_EQ(t[0].counters.count(AdmissionOutcome::kCancelled), 1u);
  EXPECT_EQ(t[0].in_use.concurrency, 1) << "the draining entitlement's reservation";
  EXPECT_EQ(t[0].queued, 0u);
  auto again = pool_->AddEntitlement(spec).value();  // while the old one drains
  d1.reservation.Settle({Tokens(10), Tokens(7)});    // the old one's last settle; it is freed
  Decision d3 = pool_->Admit(again, Cost(10, 10), 3);
  ASSERT_TRUE(IsAdmitted(d3.outcome));
  t = pool_->SnapshotTenants();
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].counters.completion_tokens, 7);
  EXPECT_EQ(t[0].counters.settled, 1u);
  EXPECT_EQ(t[0].counters.count(AdmissionOutcome::kQueued), 1u);
  EXPECT_EQ(t[0].counters.count(AdmissionOutcome::kCancelled), 1u);
  uint64_t admitted = 0;
  for (AdmissionOutcome o :
       {AdmissionOutcome::kAdmittedGuaranteed, AdmissionOutcome::kAdmittedBurst}) {
    admitted += t[0].counters.count(o);
  }
  EXPECT_EQ(admitted, 2u) << "one admitted before the removal, one after the re-add";
  EXPECT_EQ(t[0].in_use.concurrency, 1) << "the new entitlement's";
}

// Two entitlements that trade a dimension (a: more rate, less KV; b: the reverse) at full
// capacity: each Update alone would exceed the pool, in either order; as one set the change
// applies, running state kept (a's open reservation, b's ref). A set that does not fit, or
// names an entitlement twice, changes nothing.
TEST_F(TokenPoolTest, ReplaceEntitlementsChecksTheSetNotTheSteps) {
  // Capacity at max_replicas: 2,000 tokens/s, 20,000 KV tokens, 20 sequences.
  const auto a0 = Spec("a", EntitlementClass::kElastic, {1500, 5000, 2}, {2000, 20000, 10});
  const auto b0 = Spec("b", EntitlementClass::kElastic, {500, 15000, 2}, {2000, 20000, 10});
  const auto c0 = Spec("c", EntitlementClass::kSpot, {}, {100, 100, 1});
  auto a = pool_->AddEntitlement(a0).value();
  auto b = pool_->AddEntitlement(b0).value();
  ASSERT_TRUE(pool_->AddEntitlement(c0).ok());
  Decision held = pool_->Admit(a, Cost(10, 10), 1);
  ASSERT_TRUE(IsAdmitted(held.outcome));
  const auto a1 = Spec("a", EntitlementClass::kElastic, {500, 15000, 2}, {2000, 20000, 10});
  const auto b1 = Spec("b", EntitlementClass::kElastic, {1500, 5000, 2}, {2000, 20000, 10});
  EXPECT_FALSE(pool_->UpdateEntitlement(a, a1).ok());  // the steps alone: refused
  EXPECT_FALSE(pool_->UpdateEntitlement(b, b1).ok());
  // Too much, or a name twice: nothing changes (c stays, a and b as they were).
  const auto too_much = Spec("b", EntitlementClass::kElastic, {600, 15000, 2}, {2000, 20000, 10});
  Status s = pool_->ReplaceEntitlements(std::vector<EntitlementSpec>{a0, too_much});
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("on token_rate by 100"));
  s = pool_->ReplaceEntitlements(std::vector<EntitlementSpec>{a1, a1});
  EXPECT_EQ(s.code(), StatusCode::kAlreadyExists);
  EXPECT_TRUE(pool_->Find("c").ok());
  EXPECT_EQ(pool_->Snapshot().guarantees.token_rate, 2000);
  EXPECT_EQ(pool_->SnapshotEntitlement(a).value().guarantee.token_rate, 1500);
  // The trade, with c dropped, as one set.
  ASSERT_TRUE(pool_->ReplaceEntitlements(std::vector<EntitlementSpec>{b1, a1}).ok());
  EXPECT_EQ(pool_->SnapshotEntitlement(a).value().guarantee.token_rate, 500);  // same ref
  EXPECT_EQ(pool_->SnapshotEntitlement(b).value().guarantee.kv_tokens, 5000);
  EXPECT_FALSE(pool_->Find("c").ok());
  EXPECT_EQ(pool_->InUse().concurrency, 1);  // a's reservation is still held, and settles
  held.reservation.Settle({Tokens(10), Tokens(10)});
  EXPECT_EQ(pool_->InUse().concurrency, 0);
}

TEST_F(TokenPoolTest, LeasedShareChangesDecisionsNotCode) {
  auto spec = Spec("e", EntitlementClass::kGuaranteed, {1000, 10000, 10}, {1000, 10000, 10});
  auto e = pool_->AddEntitlement(spec).value();
  // This gateway replica holds half of the pool and half of the entitlement.
  pool_->SetCapacity(SmallPool().replica_capacity * 0.5);
  ASSERT_TRUE(pool_->SetLease(e, {500, 5000, 5}, {500, 5000, 5}).ok());
  std::vector<Reservation> held;
  for (int i = 0; i < 5; ++i) {
    Decision d = pool_->Admit(e, Cost(10, 10), i);
    ASSERT_EQ(d.outcome, AdmissionOutcome::kAdmittedGuaranteed);
    held.push_back(std::move(d.reservation));
  }
  EXPECT_EQ(pool_->Admit(e, Cost(10, 10), 9).outcome, AdmissionOutcome::kQueued);
  EXPECT_EQ(pool_->SetLease(e, {600, 0, 0}, {500, 0, 0}).code(), StatusCode::kInvalidArgument);
}

TEST_F(TokenPoolTest, SetReplicasIsBoundedByConfig) {
  EXPECT_TRUE(pool_->SetReplicas(2).ok());
  EXPECT_EQ(pool_->Capacity().concurrency, 20);
  Status s = pool_->SetReplicas(3);
  EXPECT_EQ(s.code(), StatusCode::kOutOfRange);
  EXPECT_THAT(s.message(), HasSubstr("pools[test].replicas: must be within [1, 2], got 3"));
}

TEST_F(TokenPoolTest, SetReplicaRangeMovesThePromise) {
  // 1,500 tokens/s guaranteed: needs max_replicas >= 2 (1,000 each).
  auto a = pool_->AddEntitlement(
      Spec("a", EntitlementClass::kGuaranteed, {1500, 1000, 2}, {1500, 1000, 2}));
  ASSERT_TRUE(a.ok()) << a.status().message();
  // Shrinking the range below what is promised is refused, and nothing changes.
  Status s = pool_->SetReplicaRange(1, 1, 1);
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("pools[test].max_replicas: 1 cannot hold the guarantees in "
                                     "force on token_rate: short by 500"));
  EXPECT_EQ(pool_->config().max_replicas, 2);
  EXPECT_EQ(pool_->Snapshot().max_capacity.token_rate, 2000);
  // A range that breaks the config's rules, or leaves out the replicas now.
  EXPECT_THAT(pool_->SetReplicaRange(3, 2, 2).message(), HasSubstr("max_replicas: must be >= min"));
  EXPECT_THAT(pool_->SetReplicaRange(1, 3, 4).message(), HasSubstr("initial_replicas"));
  // Growing it: a larger promise fits, and the capacity follows the replicas.
  ASSERT_TRUE(pool_->SetReplicaRange(2, 4, 3).ok());
  EXPECT_EQ(pool_->Capacity().token_rate, 3000);
  EXPECT_EQ(pool_->Snapshot().max_capacity.token_rate, 4000);
  EXPECT_EQ(pool_->Snapshot().replicas, 3);
  EXPECT_TRUE(pool_->AddEntitlement(
                       Spec("b", EntitlementClass::kGuaranteed, {2500, 1000, 2}, {2500, 1000, 2}))
                  .ok());
  EXPECT_EQ(pool_->SetReplicas(1).code(), StatusCode::kOutOfRange);  // below the new min
  // A removed entitlement still draining (a request of it in flight) no longer counts: its
  // 1,500 and b's 2,500 would not fit 3 replicas, b's alone do.
  Decision d = pool_->Admit(*a, Cost(10, 10), 1);
  ASSERT_TRUE(IsAdmitted(d.outcome));
  ASSERT_TRUE(pool_->RemoveEntitlement(*a).ok());
  EXPECT_EQ(pool_->SetReplicaRange(1, 3, 3).code(), StatusCode::kOk);
  EXPECT_EQ(pool_->Snapshot().open_reservations, 1u);
  d.reservation.Release();
}

}  // namespace
}  // namespace tokenpool
