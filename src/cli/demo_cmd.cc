// `tokenpool demo`: the core on a built-in scenario, in virtual time, printing what happened.
//
// Two pools of Llama-3-8B on H100 (short: 8K context, long: 32K) sized by the capacity model;
// four tenants (guaranteed, two elastic of weights 2:1, spot) send OpenAI chat bodies that are
// parsed, estimated without a tokenizer, routed short/long, admitted/queued/refused by the token
// pools, served for a time from the iteration model, and settled with their true token counts
// (which teach the estimator). At t = 40 s the short pool loses a replica; at t = 80 s it gets
// it back. The gateway issue replaces this with `tokenpool serve --demo`.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <queue>
#include <string>
#include <vector>

#include "commands.h"
#include "parse/request_parser.h"
#include "sim/rng.h"
#include "tokenpool/autoscale.h"
#include "tokenpool/capacity.h"
#include "tokenpool/clock.h"
#include "tokenpool/estimator.h"
#include "tokenpool/profile.h"
#include "tokenpool/router.h"
#include "tokenpool/token_pool.h"

namespace tokenpool::cli {
namespace {

struct Tenant {
  std::string name;
  EntitlementClass cls;
  double weight;
  double rate_per_s;  // Poisson arrivals
  double long_share;  // share of requests with long prompts
  EntitlementRef ent[2];
  // results
  std::map<std::string, int> outcomes;
  std::vector<double> waits_s;
  int64_t served_tokens = 0;
  int64_t phase_tokens[3] = {0, 0, 0};  // short pool: before, during and after the failure
};

struct Inflight {
  Time done;
  uint64_t id;
  bool operator<(const Inflight& o) const { return done > o.done || (done == o.done && id > o.id); }
};

double Pct(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(p * static_cast<double>(v.size() - 1))];
}

// A chat body with `tokens` words of one-token English words: the "true" prompt count is
// known without a tokenizer (words + Llama-3 chat framing of 5 + 5 per message).
std::string MakeBody(int64_t words, int64_t max_tokens, sim::Rng& rng) {
  static const char* kWords[] = {"pool",      "token",   "the",    "request",  "model",
                                 "serve",     "queue",   "fair",   "share",    "burst",
                                 "guarantee", "latency", "batch",  "cache",    "route",
                                 "short",     "long",    "tenant", "capacity", "load"};
  std::string text;
  text.reserve(static_cast<size_t>(words) * 7);
  for (int64_t i = 0; i < words; ++i) {
    text += kWords[static_cast<int>(rng.Uniform() * 20)];
    text += ' ';
  }
  return R"({"model":"llama-3-8b","messages":[{"role":"user","content":")" + text +
         R"("}],"max_tokens":)" + std::to_string(max_tokens) + "}";
}

int RunDemo(uint64_t seed, double seconds) {
  ManualClock clock;
  auto profile = FindProfile("llama-3-8b-h100");
  if (!profile.ok()) {
    std::fprintf(stderr, "demo: %s\n", profile.status().ToString().c_str());
    return 1;
  }
  const InstanceProfile short_profile = WithMaxModelLen(*profile, 8192);
  const InstanceProfile long_profile = WithMaxModelLen(*profile, 32768);
  const WorkloadShape short_shape{.mean_prompt_tokens = 900, .mean_output_tokens = 200};
  const WorkloadShape long_shape{.mean_prompt_tokens = 14000, .mean_output_tokens = 200};
  const ReplicaPerformance short_perf = AnalyzeReplica(short_profile, short_shape);
  const ReplicaPerformance long_perf = AnalyzeReplica(long_profile, long_shape);

  PoolConfig pc[2];
  pc[0].name = "llama-3-8b/short";
  pc[0].replica_capacity = ReplicaCapacity(short_profile, short_shape);
  pc[0].min_replicas = 1;
  pc[0].max_replicas = 4;
  pc[0].initial_replicas = 2;
  pc[1].name = "llama-3-8b/long";
  pc[1].replica_capacity = ReplicaCapacity(long_profile, long_shape);
  pc[1].min_replicas = 1;
  pc[1].max_replicas = 2;
  pc[1].initial_replicas = 1;
  std::unique_ptr<TokenPool> pools[2];
  for (int p = 0; p < 2; ++p) pools[p] = TokenPool::Create(pc[p], clock).value();

  std::vector<Tenant> tenants = {
      {"acme-chat", EntitlementClass::kGuaranteed, 1, 3.0, 0.05, {}, {}, {}, 0},
      {"beta-copilot", EntitlementClass::kElastic, 2, 14.0, 0.05, {}, {}, {}, 0},
      {"gamma-agents", EntitlementClass::kElastic, 1, 14.0, 0.05, {}, {}, {}, 0},
      {"batch-evals", EntitlementClass::kSpot, 1, 8.0, 0.20, {}, {}, {}, 0},
  };
  for (Tenant& t : tenants) {
    for (int p = 0; p < 2; ++p) {
      const ResourceVector cap = pc[p].replica_capacity * pc[p].initial_replicas;
      EntitlementSpec s;
      s.name = t.name;
      s.tenant = t.name;
      s.cls = t.cls;
      s.weight = t.weight;
      if (t.cls == EntitlementClass::kGuaranteed) {
        s.guarantee = cap * 0.25;
      } else if (t.cls == EntitlementClass::kElastic) {
        s.guarantee = cap * 0.1;
      }
      s.guarantee.kv_tokens = std::floor(s.guarantee.kv_tokens);
      s.guarantee.concurrency = std::floor(s.guarantee.concurrency);
      if (t.cls == EntitlementClass::kGuaranteed && s.guarantee.concurrency < 1) {
        s.guarantee.concurrency = 1;
      }
      s.burst = ResourceVector::Max(cap, s.guarantee);
      s.slo.ttft_target = t.cls == EntitlementClass::kSpot ? Seconds(60) : Seconds(5);
      s.slo.max_queue_wait = t.cls == EntitlementClass::kSpot ? Seconds(0) : Seconds(5);
      auto ref = pools[p]->AddEntitlement(s);
      if (!ref.ok()) {
        std::fprintf(stderr, "demo: %s\n", ref.status().ToString().c_str());
        return 1;
      }
      t.ent[p] = *ref;
    }
  }

  parse::RequestParser parser;
  auto estimator = MakeEstimator(kDefaultEstimatorMode, EstimatorConfig{}).value();
  auto router = MakeRouter("spillover", RouterConfig{}).value();
  Autoscaler autoscalers[2] = {Autoscaler(AutoscaleConfig{}), Autoscaler(AutoscaleConfig{})};
  sim::Rng rng(seed);  // the simulator's generator: same seed, same output everywhere

  struct Req {
    size_t tenant;
    int pool;
    Reservation res;
    Usage actual;
    Duration service;
  };
  std::map<uint64_t, Req> reqs;  // queued or running
  std::priority_queue<Inflight> running;
  std::map<std::string, int> routes;
  RequestFeatures f;
  std::vector<QueueEvent> events;
  double est_abs_err = 0, est_n = 0;
  int desired[2] = {0, 0};
  uint64_t next_id = 1;

  auto start = [&](uint64_t id, Reservation r) {
    Req& q = reqs.at(id);
    q.res = std::move(r);
    running.push({clock.Now() + q.service, id});
  };
  auto dispatch = [&](int p) {
    events.clear();
    pools[p]->Dispatch(&events);
    for (QueueEvent& ev : events) {
      Req& q = reqs.at(ev.cookie);
      Tenant& t = tenants[q.tenant];
      if (IsAdmitted(ev.outcome)) {
        t.waits_s.push_back(ToSeconds(ev.waited));
        start(ev.cookie, std::move(ev.reservation));
      } else {
        ++t.outcomes[std::string(AdmissionOutcomeName(ev.outcome))];
        reqs.erase(ev.cookie);
      }
    }
  };

  // Next arrival per tenant.
  std::vector<Time> next_arrival(tenants.size());
  for (size_t i = 0; i < tenants.size(); ++i) {
    next_arrival[i] = Time::Zero() + Seconds(rng.Exponential(1 / tenants[i].rate_per_s));
  }
  const Time end = Time::Zero() + Seconds(seconds);
  Time next_tick = Time::Zero() + Seconds(1);
  bool failed = false, recovered = false;
  for (;;) {
    Time t = end;
    for (Time a : next_arrival) t = std::min(t, a);
    if (!running.empty()) t = std::min(t, running.top().done);
    for (auto& p : pools) t = std::min(t, p->NextWakeup());
    t = std::min(t, next_tick);
    if (t >= end) break;
    clock.Set(t);
    if (!failed && t >= Time::Zero() + Seconds(seconds / 3)) {
      (void)pools[0]->SetReplicas(1);  // a short-pool node fails
      failed = true;
    }
    if (!recovered && t >= Time::Zero() + Seconds(2 * seconds / 3)) {
      (void)pools[0]->SetReplicas(2);
      recovered = true;
      dispatch(0);
    }
    while (!running.empty() && running.top().done <= t) {
      const uint64_t id = running.top().id;
      running.pop();
      Req& q = reqs.at(id);
      tenants[q.tenant].served_tokens += q.actual.Total().v;
      if (q.pool == 0) {
        tenants[q.tenant].phase_tokens[recovered ? 2 : failed ? 1 : 0] += q.actual.Total().v;
      }
      ++tenants[q.tenant].outcomes["completed"];
      q.res.Settle(q.actual);
      const int p = q.pool;
      reqs.erase(id);
      dispatch(p);
    }
    for (size_t i = 0; i < tenants.size(); ++i) {
      if (next_arrival[i] > t) continue;
      Tenant& tn = tenants[i];
      next_arrival[i] = t + Seconds(rng.Exponential(1 / tn.rate_per_s));
      const bool is_long = rng.Uniform() < tn.long_share;
      const int64_t words = is_long ? static_cast<int64_t>(8000 + rng.Uniform() * 16000)
                                    : static_cast<int64_t>(50 + rng.Exponential(700));
      const int64_t max_tokens = 64 + static_cast<int64_t>(rng.Uniform() * 448);
      const std::string body = MakeBody(words, max_tokens, rng);
      if (!parser.Parse(body, &f).ok()) continue;
      const Category cat = Categorize(f);
      const TokenEstimate e = estimator->Estimate(f, cat);
      const int64_t true_prompt = words + 10;  // one token per word + framing (5 + 5 x 1)
      est_abs_err += std::abs(static_cast<double>(e.prompt_tokens - true_prompt)) /
                     static_cast<double>(true_prompt);
      est_n += 1;
      estimator->Observe(f, cat, true_prompt);  // the backend's usage.prompt_tokens
      const RoutePool rp[2] = {
          {"short", short_profile.max_model_len, pools[0]->Utilization(), pools[0]->QueueLength()},
          {"long", long_profile.max_model_len, pools[1]->Utilization(), pools[1]->QueueLength()}};
      const RouteDecision r = router->Route(e.routing_budget, rp);
      ++routes[std::string(RouteReasonName(r.reason))];
      if (!r.ok()) {
        ++tn.outcomes["refused_400_too_long"];
        continue;
      }
      const int64_t output = std::max<int64_t>(
          1, static_cast<int64_t>(static_cast<double>(max_tokens) * (0.3 + 0.7 * rng.Uniform())));
      const ReplicaPerformance& perf = r.pool == 0 ? short_perf : long_perf;
      const double prefill_s =
          static_cast<double>(true_prompt) / profile->iteration.prefill_tokens_per_s;
      const Duration service = Seconds(prefill_s + static_cast<double>(output) * perf.step_s);
      const uint64_t id = next_id++;
      reqs.emplace(id,
                   Req{i, r.pool, Reservation(), {Tokens(true_prompt), Tokens(output)}, service});
      Decision d = pools[r.pool]->Admit(tn.ent[r.pool],
                                        {Tokens(e.prompt_tokens), Tokens(e.output_reserve)}, id);
      if (IsAdmitted(d.outcome)) {
        tn.waits_s.push_back(0);
        start(id, std::move(d.reservation));
      } else if (d.outcome == AdmissionOutcome::kQueued) {
        ++tn.outcomes["queued"];
        dispatch(r.pool);
      } else {
        ++tn.outcomes[std::string(AdmissionOutcomeName(d.outcome))];
        reqs.erase(id);
      }
    }
    for (int p = 0; p < 2; ++p) dispatch(p);
    if (t >= next_tick) {
      for (int p = 0; p < 2; ++p) {
        desired[p] = autoscalers[p].Recommend(t, pools[p]->Snapshot(), pc[p]).desired;
      }
      next_tick = t + Seconds(1);
    }
  }

  std::printf("tokenpool demo: %.0f s of virtual time, seed %llu\n", seconds,
              static_cast<unsigned long long>(seed));
  std::printf("profile %s: short pool %s per replica, long pool %s per replica\n",
              profile->name.c_str(), pc[0].replica_capacity.ToString().c_str(),
              pc[1].replica_capacity.ToString().c_str());
  std::printf("at t=%.0f s the short pool loses 1 of 2 replicas; at t=%.0f s it is back\n\n",
              seconds / 3, 2 * seconds / 3);
  std::printf("%-14s %-10s %9s %9s %9s %9s %11s %9s %9s\n", "tenant", "class", "completed",
              "queued", "refused", "expired", "tokens", "wait_p50", "wait_p99");
  int64_t total = 0;
  for (const Tenant& t : tenants) total += t.served_tokens;
  for (Tenant& t : tenants) {
    int refused = 0;
    for (const auto& [k, v] : t.outcomes) {
      if (k.rfind("rejected", 0) == 0 || k.rfind("refused", 0) == 0) refused += v;
    }
    auto get = [&](const char* k) { return t.outcomes.count(k) ? t.outcomes.at(k) : 0; };
    std::printf("%-14s %-10s %9d %9d %9d %9d %11lld %8.3fs %8.3fs\n", t.name.c_str(),
                std::string(EntitlementClassName(t.cls)).c_str(), get("completed"), get("queued"),
                refused, get("expired"), static_cast<long long>(t.served_tokens),
                Pct(t.waits_s, 0.5), Pct(t.waits_s, 0.99));
  }
  std::printf("\nrouting:");
  for (const auto& [k, v] : routes) std::printf(" %s=%d", k.c_str(), v);
  std::printf("\nestimator (%s): mean absolute error %.1f%% over %.0f requests, learning online\n",
              std::string(estimator->Name()).c_str(), 100 * est_abs_err / std::max(1.0, est_n),
              est_n);
  for (int p = 0; p < 2; ++p) {
    PoolSnapshot s = pools[p]->Snapshot();
    std::printf(
        "%s: replicas %d, desired %d, lending factor %.2f, admitted %llu (burst %llu), "
        "refused %llu\n",
        s.name.c_str(), s.replicas, desired[p], s.lending_factor,
        static_cast<unsigned long long>(s.counters.count(AdmissionOutcome::kAdmittedGuaranteed) +
                                        s.counters.count(AdmissionOutcome::kAdmittedBurst)),
        static_cast<unsigned long long>(s.counters.count(AdmissionOutcome::kAdmittedBurst)),
        static_cast<unsigned long long>(
            s.counters.count(AdmissionOutcome::kRejectedPoolSaturated) +
            s.counters.count(AdmissionOutcome::kRejectedSpotShed) +
            s.counters.count(AdmissionOutcome::kRejectedOverEntitlement) +
            s.counters.count(AdmissionOutcome::kExpired)));
  }
  const char* phases[3] = {"before the failure", "during the failure", "after recovery"};
  for (int ph = 0; ph < 3; ++ph) {
    int64_t sum = 0;
    for (const Tenant& t : tenants) sum += t.phase_tokens[ph];
    std::printf("%sshort pool, served token shares", ph == 0 ? "\n" : "");
    std::printf(" %-19s", phases[ph]);
    for (const Tenant& t : tenants) {
      std::printf("  %s %5.1f%%", t.name.c_str(),
                  100.0 * static_cast<double>(t.phase_tokens[ph]) /
                      static_cast<double>(std::max<int64_t>(1, sum)));
    }
    std::printf("\n");
  }
  (void)total;
  return 0;
}

}  // namespace

void RegisterDemo(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "demo", "Run the token-pool core on a built-in scenario in virtual time and print it");
  static uint64_t seed = 1;
  static double seconds = 120;
  cmd->add_option("--seed", seed, "random seed (same seed, same output)");
  cmd->add_option("--seconds", seconds, "virtual seconds to run")->check(CLI::Range(1.0, 1e6));
  cmd->callback([] {
    const int rc = RunDemo(seed, seconds);
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace tokenpool::cli
