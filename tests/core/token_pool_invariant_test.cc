// Randomized invariant tests: long random sequences of admissions, completions, failures,
// cancellations, capacity changes and time steps on a manual clock, checking after every step
// that the pool's accounting is exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <vector>

#include "pool_harness.h"
#include "tokenpool/token_pool.h"

namespace tokenpool {
namespace {

using testing::Rng;

struct Open {
  uint32_t ent;
  int64_t cost;
  Reservation res;
};

struct Pending {
  uint32_t ent;
  int64_t cost;
  QueueTicket ticket;
  bool never_expires;
};

class InvariantTest : public ::testing::TestWithParam<uint64_t> {};

TEST_P(InvariantTest, AccountingHoldsOverLongRandomSequences) {
  ManualClock clock(Time::FromNanos(Seconds(1000).count()));
  PoolConfig cfg;
  cfg.name = "rand";
  cfg.replica_capacity = {.token_rate = 4000, .kv_tokens = 40000, .concurrency = 24};
  cfg.min_replicas = 1;
  cfg.max_replicas = 3;
  cfg.initial_replicas = 2;
  cfg.rate_window = Seconds(5);
  cfg.max_queued = 200;
  auto pool = TokenPool::Create(cfg, clock).value();

  Rng rng(GetParam());
  std::vector<EntitlementRef> ents;
  std::vector<EntitlementSpec> specs;
  auto add = [&](std::string name, EntitlementClass cls, ResourceVector g, ResourceVector b,
                 double weight, Duration wait) {
    EntitlementSpec s;
    s.name = name;
    s.tenant = name;
    s.cls = cls;
    s.guarantee = g;
    s.burst = b;
    s.weight = weight;
    s.slo.max_queue_wait = wait;
    ents.push_back(pool->AddEntitlement(s).value());
    specs.push_back(s);
  };
  add("g1", EntitlementClass::kGuaranteed, {800, 8000, 6}, {800, 8000, 6}, 1, Seconds(1));
  add("g2", EntitlementClass::kGuaranteed, {600, 6000, 4}, {1500, 16000, 10}, 1, Seconds(1));
  add("e1", EntitlementClass::kElastic, {200, 2000, 2}, {4000, 40000, 24}, 1, Seconds(2));
  add("e2", EntitlementClass::kElastic, {0, 0, 0}, {4000, 40000, 24}, 2, Milliseconds(500));
  add("e3", EntitlementClass::kElastic, {200, 2000, 2}, {4000, 40000, 24}, 3, Seconds(0));
  add("s1", EntitlementClass::kSpot, {}, {4000, 40000, 24}, 1, Seconds(1));
  add("s2", EntitlementClass::kSpot, {}, {2000, 20000, 12}, 1, Seconds(0));

  std::map<uint64_t, Open> open;
  std::map<uint64_t, Pending> pending;
  uint64_t next_cookie = 1;
  uint64_t admitted_total = 0, closed_total = 0, guaranteed_refusals = 0, preempted = 0;
  std::vector<QueueEvent> events;

  auto check = [&](const char* where, bool after_admission) {
    double kv = 0, conc = 0;
    for (const auto& [id, o] : open) {
      kv += static_cast<double>(o.cost);
      conc += 1;
    }
    const ResourceVector in_use = pool->InUse();
    ASSERT_EQ(in_use.kv_tokens, kv) << where;
    ASSERT_EQ(in_use.concurrency, conc) << where;
    ASSERT_EQ(pool->Snapshot().open_reservations, open.size()) << where;
    ASSERT_EQ(pool->QueueLength(), pending.size()) << where;
    if (after_admission) {
      const ResourceVector cap = pool->Capacity();
      for (Dim d : kAllDims) {
        ASSERT_LE(in_use[d], cap[d] * (1 + 1e-9) + 1e-9)
            << where << ": " << DimName(d) << " over capacity";
      }
    }
  };

  auto process_events = [&]() {
    events.clear();
    pool->Dispatch(&events);
    bool admitted = false;
    for (QueueEvent& ev : events) {
      auto it = pending.find(ev.cookie);
      ASSERT_NE(it, pending.end()) << "event for an unknown cookie";
      if (IsAdmitted(ev.outcome)) {
        open.emplace(ev.cookie, Open{it->second.ent, it->second.cost, std::move(ev.reservation)});
        ++admitted_total;
        admitted = true;
      } else {
        ASSERT_FALSE(it->second.never_expires)
            << "a guaranteed request within its guarantee left the queue unserved: "
            << AdmissionOutcomeName(ev.outcome);
      }
      pending.erase(it);
    }
    check("dispatch", admitted);
  };

  for (int step = 0; step < 200000; ++step) {
    const double r = rng.Uniform();
    if (r < 0.40) {
      const uint32_t i = static_cast<uint32_t>(rng.Range(0, static_cast<int64_t>(ents.size()) - 1));
      const int64_t prompt = rng.Range(10, 2000), output = rng.Range(10, 1000);
      const int64_t cost = prompt + output;
      // Is it within the guarantee? (kv and concurrency from our own books, rate from the pool.)
      double kv = 0, conc = 0;
      for (const auto& [id, o] : open) {
        if (o.ent == i) {
          kv += static_cast<double>(o.cost);
          conc += 1;
        }
      }
      const double rate = pool->SnapshotEntitlement(ents[i])->in_use.token_rate;
      const ResourceVector c{static_cast<double>(cost) / 5.0, static_cast<double>(cost), 1};
      const ResourceVector g = specs[i].guarantee;
      const bool within = specs[i].cls == EntitlementClass::kGuaranteed &&
                          rate + c.token_rate <= g.token_rate && kv + c.kv_tokens <= g.kv_tokens &&
                          conc + 1 <= g.concurrency;
      const uint64_t cookie = next_cookie++;
      Decision d = pool->Admit(ents[i], {Tokens(prompt), Tokens(output)}, cookie);
      if (IsAdmitted(d.outcome)) {
        open.emplace(cookie, Open{i, cost, std::move(d.reservation)});
        ++admitted_total;
        check("admit", true);
      } else if (d.outcome == AdmissionOutcome::kQueued) {
        pending.emplace(cookie, Pending{i, cost, d.ticket, d.deadline == Time::Max()});
        if (within) {
          ASSERT_EQ(d.deadline, Time::Max());
        }
        process_events();
      } else {
        if (within) ++guaranteed_refusals;
        ASSERT_FALSE(within) << "guaranteed request within its guarantee refused: "
                             << AdmissionOutcomeName(d.outcome);
        check("refuse", false);
      }
    } else if (r < 0.62) {
      if (open.empty()) continue;
      auto it = std::next(open.begin(), rng.Range(0, static_cast<int64_t>(open.size()) - 1));
      const int64_t actual = rng.Range(1, it->second.cost * 3 / 2);
      it->second.res.Settle({Tokens(actual / 2), Tokens(actual - actual / 2)});
      open.erase(it);
      ++closed_total;
      process_events();
    } else if (r < 0.67) {
      if (open.empty()) continue;
      auto it = std::next(open.begin(), rng.Range(0, static_cast<int64_t>(open.size()) - 1));
      if (rng.Uniform() < 0.5) it->second.res.Release();  // else: the handle's destructor
      open.erase(it);
      ++closed_total;
      process_events();
    } else if (r < 0.70) {
      if (pending.empty()) continue;
      auto it = std::next(pending.begin(), rng.Range(0, static_cast<int64_t>(pending.size()) - 1));
      ASSERT_TRUE(pool->Cancel(it->second.ticket));
      pending.erase(it);
      check("cancel", false);
    } else if (r < 0.72) {
      ASSERT_TRUE(pool->SetReplicas(static_cast<int32_t>(rng.Range(1, 3))).ok());
      process_events();
    } else if (r < 0.74) {
      // Preempt spot for waiting guaranteed work, as a gateway would.
      std::vector<uint64_t> ids;
      pool->SpotPreemptionCandidates(&ids);
      for (uint64_t id : ids) {
        auto it = std::find_if(open.begin(), open.end(),
                               [&](const auto& kv) { return kv.second.res.id() == id; });
        ASSERT_NE(it, open.end()) << "candidate is not an open reservation";
        ASSERT_EQ(specs[it->second.ent].cls, EntitlementClass::kSpot);
        ++preempted;
        open.erase(it);  // the destructor releases it
        ++closed_total;
      }
      process_events();
    } else if (r < 0.90) {
      clock.Advance(Milliseconds(static_cast<double>(rng.Range(0, 200))));
      process_events();
    } else {
      process_events();
    }
    if (step % 5000 == 0) {
      // The pool's rate meter equals the sum of the entitlements' meters.
      double sum = 0;
      for (EntitlementRef e : ents) sum += pool->SnapshotEntitlement(e)->in_use.token_rate;
      ASSERT_NEAR(pool->InUse().token_rate, sum, 1e-6 * (1 + sum));
    }
  }
  // Close everything: every reservation is returned exactly once and the pool is empty.
  closed_total += open.size();
  open.clear();
  for (auto& [cookie, p] : pending) ASSERT_TRUE(pool->Cancel(p.ticket));
  pending.clear();
  const PoolSnapshot s = pool->Snapshot();
  EXPECT_EQ(s.in_use.kv_tokens, 0);
  EXPECT_EQ(s.in_use.concurrency, 0);
  EXPECT_EQ(s.open_reservations, 0u);
  EXPECT_EQ(s.queued, 0u);
  EXPECT_EQ(s.counters.settled + s.counters.released, admitted_total);
  EXPECT_EQ(admitted_total, closed_total);
  EXPECT_EQ(guaranteed_refusals, 0u);
  EXPECT_GT(admitted_total, 20000u);  // the sequence really exercised admission
  EXPECT_GT(s.counters.count(AdmissionOutcome::kQueued), 100u);
  EXPECT_GT(s.counters.count(AdmissionOutcome::kExpired), 10u);
  EXPECT_GT(s.counters.count(AdmissionOutcome::kAdmittedBurst), 100u);
  EXPECT_GT(s.counters.count(AdmissionOutcome::kRejectedSpotShed), 10u);
  std::printf("spot preempted for guaranteed work: %llu\n",
              static_cast<unsigned long long>(preempted));
  for (int o = 0; o < kNumAdmissionOutcomes; ++o) {
    std::printf("%s=%llu ", AdmissionOutcomeName(static_cast<AdmissionOutcome>(o)).data(),
                static_cast<unsigned long long>(s.counters.outcomes[o]));
  }
  std::printf("\n");
}

INSTANTIATE_TEST_SUITE_P(Seeds, InvariantTest, ::testing::Values(1, 2, 3, 42, 2026));

}  // namespace
}  // namespace tokenpool
