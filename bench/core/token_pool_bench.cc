// TokenPool hot paths with 10,000 entitlements (and 1 for scale comparison):
//   BM_AdmitSettle          admit a request and settle it (the common, uncontended path)
//   BM_QueuedAdmitDispatch  a completion frees a slot, a new request joins a queue of 1,000,
//                           and Dispatch admits the head in fair-share order
//   BM_StatePerEntitlement  heap bytes per entitlement (counter bytes_per_entitlement)
// Goals (issue 2): median < 300 ns per admit+settle, < 1 us per queued dispatch, < 1 KiB per
// entitlement. bench/run_core_bench.sh prints the medians against these goals.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "tokenpool/token_pool.h"

namespace tokenpool {
namespace {

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return x;
}

struct Fixture {
  ManualClock clock{Time::FromNanos(1'000'000'000)};
  std::unique_ptr<TokenPool> pool;
  std::vector<EntitlementRef> ents;

  Fixture(int n_ents, double concurrency) {
    PoolConfig cfg;
    cfg.name = "bench";
    cfg.replica_capacity = {.token_rate = 1e12, .kv_tokens = 1e12, .concurrency = concurrency};
    cfg.max_queued = 1'000'000;
    pool = TokenPool::Create(cfg, clock).value();
    for (int i = 0; i < n_ents; ++i) {
      EntitlementSpec s;
      s.name = "tenant-" + std::to_string(i);
      s.tenant = s.name;
      // 1% guaranteed (one slot each), the rest elastic without guarantee.
      const bool guaranteed = i % 100 == 0;
      s.cls = guaranteed ? EntitlementClass::kGuaranteed : EntitlementClass::kElastic;
      s.guarantee = guaranteed ? ResourceVector{10, 1000, 1} : ResourceVector{};
      s.burst = {1e12, 1e12, 1e6};
      s.weight = 1 + i % 3;
      s.slo.max_queue_wait = Seconds(3600);
      ents.push_back(pool->AddEntitlement(s).value());
    }
  }
};

void BM_AdmitSettle(benchmark::State& state) {
  Fixture f(static_cast<int>(state.range(0)), 1e6);
  uint64_t i = 0;
  for (auto _ : state) {
    f.clock.Advance(Microseconds(1));
    const EntitlementRef e = f.ents[Mix(i) % f.ents.size()];
    Decision d = f.pool->Admit(e, {Tokens(900), Tokens(256)}, i);
    d.reservation.Settle({Tokens(880), Tokens(130)});
    ++i;
  }
  if (f.pool->Snapshot().counters.settled != i) state.SkipWithError("not all settled");
}
BENCHMARK(BM_AdmitSettle)->Arg(1)->Arg(10000);

void BM_QueuedAdmitDispatch(benchmark::State& state) {
  const size_t kSlots = 256;
  Fixture f(static_cast<int>(state.range(0)), kSlots);
  std::deque<Reservation> held;
  std::vector<QueueEvent> events;
  uint64_t i = 0;
  auto take_events = [&]() {
    for (QueueEvent& ev : events) {
      if (ev.reservation.active()) held.push_back(std::move(ev.reservation));
    }
    events.clear();
  };
  // Fill the pool (elastic work gets what the held-back guarantees leave), then keep admitting
  // until 1,000 requests wait behind it.
  while (f.pool->QueueLength() < 1000) {
    Decision d = f.pool->Admit(f.ents[Mix(i) % f.ents.size()], {Tokens(500), Tokens(100)}, i);
    if (d.reservation.active()) held.push_back(std::move(d.reservation));
    f.pool->Dispatch(&events);
    take_events();
    ++i;
  }
  uint64_t dispatched = 0;
  for (auto _ : state) {
    f.clock.Advance(Microseconds(1));
    held.front().Settle({Tokens(500), Tokens(90)});  // a completion frees one slot
    held.pop_front();
    do {  // a new request joins the queue (a guaranteed one within its guarantee may run)
      Decision d = f.pool->Admit(f.ents[Mix(i) % f.ents.size()], {Tokens(500), Tokens(100)}, i);
      if (d.reservation.active()) held.push_back(std::move(d.reservation));
      ++i;
    } while (f.pool->QueueLength() < 1000);
    dispatched += f.pool->Dispatch(&events);  // the queue's head in fair-share order runs
    take_events();
  }
  state.counters["queue_len"] = f.pool->QueueLength();
  state.counters["dispatched_per_iter"] =
      static_cast<double>(dispatched) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_QueuedAdmitDispatch)->Arg(10000);

void BM_StatePerEntitlement(benchmark::State& state) {
  for (auto _ : state) {
    state.PauseTiming();
    const size_t before = mallinfo2().uordblks;
    state.ResumeTiming();
    auto f = std::make_unique<Fixture>(10000, 1e6);
    state.PauseTiming();
    const size_t after = mallinfo2().uordblks;
    state.counters["bytes_per_entitlement"] =
        static_cast<double>(after - before) / static_cast<double>(f->ents.size());
    f.reset();
    state.ResumeTiming();
  }
}
BENCHMARK(BM_StatePerEntitlement)->Iterations(3)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace tokenpool

BENCHMARK_MAIN();
