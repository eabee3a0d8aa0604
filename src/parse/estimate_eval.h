#pragma once
// Replay evaluation of a token estimator on a corpus of OpenAI requests with true prompt-token
// counts (the format of ../shared/corpus/open.jsonl: one JSON object per line with `body`,
// `prompt_tokens_llama3` and `category`; an optional `headers` object may carry
// `x-tokenpool-category`). The estimator sees only the body and the headers; `category` only
// groups the report. Used by `tokenpool estimate-eval` and by tests/parse/estimate_eval_test.cc.
//
//   Result<std::vector<EvalRecord>> corpus = LoadCorpus("../shared/corpus");
//   Result<EvalReport> r = RunEval(*corpus, EvalOptions{.mode = "linear"});
//   std::puts(FormatJson(*r).c_str());
//
// Replay: records in a fixed pseudo-random order (our own splitmix64 Fisher-Yates shuffle, the
// same on every standard library), and for each: Estimate, then Observe(actual), as a gateway
// would see them. Metrics skip each category's first `warmup_per_category` requests:
//   mape_after_warmup  mean of |estimate - actual| / actual (unbiased estimate)
//   calibration_error  |Σ estimate - Σ actual| / Σ actual (unbiased estimate)
//   misroute_rate      share of requests whose routing decision (routing_budget > boundary:
//                      long pool) differs from the one the true prompt tokens + the same output
//                      reserve would give; unsafe_misroute_rate: truly long, routed short.
//
// Thread-safety: functions are reentrant; they share nothing.

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tokenpool/estimator.h"
#include "tokenpool/request_features.h"
#include "tokenpool/status.h"

namespace tokenpool::parse {

struct EvalRecord {
  std::string category;         // report group only; never given to the estimator
  std::string header_category;  // headers.x-tokenpool-category, if any
  int64_t prompt_tokens = 0;    // the truth
  RequestFeatures features;
};

// Every *.jsonl file in `dir` (sorted by name). Errors name the file, the line and the field:
// "open.jsonl:17: prompt_tokens_llama3: expected a positive integer".
Result<std::vector<EvalRecord>> LoadCorpus(const std::string& dir);

struct EvalOptions {
  std::string mode = std::string(kDefaultEstimatorMode);
  EstimatorConfig config;
  int64_t warmup_per_category = 50;  // the warm-up
  int64_t boundary_tokens = 8192;    // short pool's context (the paper's boundary)
  uint64_t seed = 1;                 // replay order
  // Replays of the corpus: the first passes - 1 (orders from seed + 1, seed + 2, ...) only
  // train; the last (order from seed) is scored, with the warm-up counted from its start.
  // More than one shows a model that has seen more reports than the corpus holds (its
  // learning from a sample, linear.sample_after), on requests it has seen before.
  int64_t passes = 1;

  // The first broken rule, naming the field ("boundary_tokens: must be >= 1"); an unknown mode
  // is NOT_FOUND ("mode: estimator mode \"x\": unknown (known: ...)"). RunEval checks it.
  Status Validate() const;
};

struct CategoryResult {
  std::string name;
  int64_t n = 0;         // requests in the corpus
  int64_t n_scored = 0;  // after warm-up
  double mape_after_warmup = 0;
  double calibration_error = 0;
  double mean_signed_error = 0;  // Σ (estimate - actual) / Σ actual, after warm-up
  // How ClassifyContent sorted this group's requests (all of them, warm-up included).
  std::array<int64_t, kNumContentClasses> content_classes{};
};

// Requests grouped by their true prompt tokens: [0, 256), [256, 1024), [1024, 4096), >= 4096.
struct SizeResult {
  std::string name;  // "<256", "256-1K", "1K-4K", ">=4K"
  int64_t n_scored = 0;
  double mape_after_warmup = 0;
  double mean_signed_error = 0;  // Σ (estimate - actual) / Σ actual
};

struct EvalReport {
  std::string mode;
  std::vector<CategoryResult> categories;  // sorted by name
  int64_t n = 0;
  int64_t n_scored = 0;
  double overall_mape_after_warmup = 0;
  int64_t misroutes = 0;
  int64_t unsafe_misroutes = 0;
  double misroute_rate = 0;
  double unsafe_misroute_rate = 0;
  int estimator_categories = 0;  // categories the estimator created
  std::vector<SizeResult> sizes;
};

Result<EvalReport> RunEval(const std::vector<EvalRecord>& records, const EvalOptions& options);

// The replay order: a permutation of [0, n) from splitmix64 with Fisher-Yates.
std::vector<size_t> ReplayOrder(size_t n, uint64_t seed);

// `classes`: also the table of content classes per group.
std::string FormatTable(const EvalReport& r, bool classes = false);
// One JSON object: {"mode":..., "categories":{"<name>":{"n":..,"mape_after_warmup":..,
// "calibration_error":..}}, "overall_mape_after_warmup":.., "misroute_rate":..,
// "unsafe_misroute_rate":..} (fractions: 0.012 = 1.2%; null where nothing was scored after the
// warm-up).
std::string FormatJson(const EvalReport& r);

}  // namespace tokenpool::parse
