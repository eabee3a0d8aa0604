// Token estimation after parsing: Categorize + Estimate (the per-request cost on the routing
// path; goal with routing < 200 ns) and Observe (the feedback) for each mode, on a trained
// estimator. The linear mode's Observe twice: learning from every report (sample_every 1), and
// in its default steady state, past sample_after reports, learning from one in sample_every.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <memory>
#include <string>

#include "tokenpool/estimator.h"

namespace tokenpool {
namespace {

RequestFeatures Sample(uint64_t i) {
  RequestFeatures f;
  f.model = "llama-3-70b";
  f.messages = 2 + static_cast<int64_t>(i % 3);
  f.has_max_tokens = true;
  f.max_output_tokens = 512;
  const int64_t words = 100 + static_cast<int64_t>((i * 7919) % 5000);
  f.text.bytes = words * 6;
  f.text.letters = words * 5;
  f.text.letter_runs = words;
  f.text.letters_ge4 = words * 2;
  f.text.spaces = words;
  f.text.space_runs = words;
  f.text.punct = words / 5;
  f.text.punct_runs = words / 6;
  f.text_bytes = f.text.bytes;
  return f;
}

std::unique_ptr<TokenEstimator> Trained(const char* mode, const EstimatorConfig& c = {},
                                        uint64_t reports = 500) {
  auto est = std::move(MakeEstimator(mode, c)).value();
  for (uint64_t i = 0; i < reports; ++i) {
    const RequestFeatures f = Sample(i);
    est->Observe(f, Categorize(f), f.text.letter_runs * 13 / 10 + 5 * f.messages + 5);
  }
  return est;
}

void BM_Estimate(benchmark::State& state, const char* mode) {
  auto est = Trained(mode);
  RequestFeatures samples[16];
  for (uint64_t i = 0; i < 16; ++i) samples[i] = Sample(i * 31);
  uint64_t i = 0;
  for (auto _ : state) {
    const RequestFeatures& f = samples[i++ & 15];
    const TokenEstimate e = est->Estimate(f, Categorize(f));
    benchmark::DoNotOptimize(e);
  }
}
BENCHMARK_CAPTURE(BM_Estimate, static, "static");
BENCHMARK_CAPTURE(BM_Estimate, ema, "ema");
BENCHMARK_CAPTURE(BM_Estimate, linear, "linear");

void BM_Observe(benchmark::State& state, const char* mode, int64_t sample_every) {
  EstimatorConfig c;
  c.linear.sample_every = sample_every;
  // Past sample_after: the steady state (a no-op for the ema mode and for sample_every 1).
  auto est = Trained(mode, c, static_cast<uint64_t>(c.linear.sample_after) + 500);
  RequestFeatures samples[16];
  for (uint64_t i = 0; i < 16; ++i) samples[i] = Sample(i * 17);
  uint64_t i = 0;
  for (auto _ : state) {
    const RequestFeatures& f = samples[i++ & 15];
    est->Observe(f, Categorize(f), f.text.letter_runs * 13 / 10 + 12);
  }
}
BENCHMARK_CAPTURE(BM_Observe, ema, "ema", 1);
BENCHMARK_CAPTURE(BM_Observe, linear_every_report, "linear", 1);
BENCHMARK_CAPTURE(BM_Observe, linear_sampled, "linear", LinearConfig{}.sample_every);

}  // namespace
}  // namespace tokenpool

BENCHMARK_MAIN();
