// Estimate + route after parsing: the per-request work between the parser and admission.
//   BM_EstimateRoute/<mode>  categorize, estimate with a warmed-up estimator, route (spillover)
//   BM_RouteOnly             the router alone
// Goal (issue 3): estimate + route under 200 ns after parsing.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "parse/request_parser.h"
#include "tokenpool/estimator.h"
#include "tokenpool/router.h"

namespace tokenpool {
namespace {

std::string Body(int i) {
  std::string text;
  const char* words[] = {"the",     "pool", "routes",    "requests", "by",      "token",
                         "budget,", "and",  "admission", "keeps",    "latency", "bounded."};
  for (int k = 0; text.size() < 900; ++k) {
    text += words[(k * 7 + i) % 12];
    text += ' ';
  }
  return R"({"model":"llama-3-70b","messages":[{"role":"system","content":"You are helpful."},)"
         R"({"role":"user","content":")" +
         text + R"("}],"max_tokens":256})";
}

void BM_EstimateRoute(benchmark::State& state, std::string_view mode) {
  parse::RequestParser parser;
  std::vector<RequestFeatures> reqs(64);
  for (int i = 0; i < 64; ++i) {
    if (!parser.Parse(Body(i), &reqs[static_cast<size_t>(i)]).ok()) {
      state.SkipWithError("parse failed");
      return;
    }
  }
  auto est = MakeEstimator(mode, EstimatorConfig{}).value();
  for (int i = 0; i < 200; ++i) {  // past warm-up: the learned path is measured
    const RequestFeatures& f = reqs[static_cast<size_t>(i % 64)];
    est->Observe(f, Categorize(f), 240 + i % 7);
  }
  auto router = MakeRouter("spillover", RouterConfig{}).value();
  const RoutePool pools[] = {{"short", 8192, 0.5, 0}, {"long", 65536, 0.3, 0}};
  size_t i = 0;
  for (auto _ : state) {
    const RequestFeatures& f = reqs[i++ & 63];
    const TokenEstimate e = est->Estimate(f, Categorize(f));
    RouteDecision r = router->Route(e.routing_budget, pools);
    benchmark::DoNotOptimize(r);
  }
}
BENCHMARK_CAPTURE(BM_EstimateRoute, linear, "linear");
BENCHMARK_CAPTURE(BM_EstimateRoute, ema, "ema");
BENCHMARK_CAPTURE(BM_EstimateRoute, static, "static");

void BM_RouteOnly(benchmark::State& state) {
  auto router = MakeRouter("spillover", RouterConfig{}).value();
  const RoutePool pools[] = {{"short", 8192, 0.9, 0}, {"long", 65536, 0.3, 0}};
  int64_t budget = 1000;
  for (auto _ : state) {
    RouteDecision r = router->Route(budget, pools);
    benchmark::DoNotOptimize(r);
    budget = (budget * 31 + 7) & 0xFFFF;
  }
}
BENCHMARK(BM_RouteOnly);

}  // namespace
}  // namespace tokenpool

BENCHMARK_MAIN();
