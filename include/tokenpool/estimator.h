#pragma once
// Token-budget estimation without a tokenizer (papers.md §2): from the RequestFeatures of a
// request body, estimate its prompt tokens (unbiased, and conservative for routing), reserve its
// output, and learn online from the usage.prompt_tokens that the backend reports.
//
//   auto est = MakeEstimator("linear", EstimatorConfig{});     // Result<unique_ptr<...>>
//   Category c = Categorize(features, header_value);           // x-tokenpool-category, or ""
//   TokenEstimate e = (*est)->Estimate(features, c);
//   route(e.routing_budget);  ...  (*est)->Observe(features, c, usage.prompt_tokens);
//
// Modes (EstimatorModes(), an explicit name -> factory table):
//   static  fixed bytes/token over text + structured bytes, plus framing (the baseline).
//   ema     the paper's: a bytes/token ratio per category learned by EMA, with a low-tail
//           (conservative) ratio ĉ - γσ̂.
//   linear  the default: per-category online least squares (RLS) from byte-class counts to
//           prompt tokens, with a global model as the fallback, and a tracked residual spread
//           for the conservative estimate.
// docs/estimator.md describes the features, the classifier, the formulas and the constants.
//
// Cost: Categorize, Estimate are O(1) after parsing and never allocate. Observe allocates only
// when it creates a category (at most EstimatorConfig::max_categories).
//
// Thread-safety: an estimator is NOT synchronized: single-threaded use (the gateway shards
// estimators per worker or locks around Estimate/Observe). Categorize and the config are pure.

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenpool/request_features.h"
#include "tokenpool/status.h"

namespace tokenpool {

// A cheap content classifier over ByteStats (thresholds in ClassifyContent, estimator.cc).
enum class ContentClass : uint8_t {
  kEmpty = 0,    // no text content
  kProse,        // mostly ASCII letters and spaces
  kCode,         // ;=()<> dense
  kJson,         // quotes, brackets, colons, commas dense
  kTex,          // \ $ ^ _ dense
  kMarkup,       // other punctuation-heavy text (Markdown, tables)
  kCjk,          // non-ASCII dominant, mostly Han/Kana/Hangul
  kOtherScript,  // non-ASCII dominant, other scripts (Arabic, Hebrew, Indic, Thai, Georgian...)
  kAccented,     // Latin text with accented letters (German, French, Polish, Vietnamese...)
  kCyrillic,     // non-ASCII dominant, mostly Cyrillic or Greek
};
inline constexpr int kNumContentClasses = 10;
std::string_view ContentClassName(ContentClass c);  // "prose", "code", ..., the metric label
ContentClass ClassifyContent(const ByteStats& s);

// Which learned state a request uses. Holds views into the request's model and the override
// string: valid only as long as they are.
struct Category {
  uint64_t key = 0;  // hash of the override, else of (model, content class)
  ContentClass content = ContentClass::kEmpty;
  std::string_view model;
  std::string_view override_name;  // non-empty: the category was named by the caller
};

// Category of a request: `override_name` (e.g. the x-tokenpool-category header) when non-empty,
// else model + ClassifyContent(features.text).
Category Categorize(const RequestFeatures& f, std::string_view override_name = {});

struct TokenEstimate {
  int64_t prompt_tokens = 0;          // unbiased estimate (includes framing and images)
  int64_t routing_prompt_tokens = 0;  // conservative, >= prompt_tokens
  int64_t output_reserve = 0;         // max_completion_tokens / max_tokens, else the default
  int64_t image_tokens = 0;           // images x EstimatorConfig::image_tokens
  int64_t framing_tokens = 0;         // per message / tool call (0 for a learned linear model,
                                      // whose framing is inside its coefficients)
  int64_t routing_budget = 0;         // the longest sequence's routing prompt + output_reserve:
                                      // routing_prompt_tokens + output_reserve, except for a
                                      // completions batch (each prompt its own sequences)
  bool learned = false;               // from learned state, not the warm-up default
};

struct ModelOutputDefault {
  std::string model;
  int64_t output_tokens = 0;
};

struct EmaConfig {
  double warmup_bytes_per_token = 4.0;  // the reference's default, used until min_samples
  // 0.95: the first observation's weight falls below 8% after 50 samples (the warm-up of the
  // accuracy goals) while one request moves the ratio by 5%; the reference's 0.995 would still
  // give the first observation 78% of the weight after 50 samples.
  double decay = 0.95;
  int64_t min_samples = 10;  // learned ratio trusted from the 10th sample (reference)
  // Conservative ratio ĉ - γσ̂ (σ̂: EMA of |c_obs - ĉ|). 1.0: with σ̂ a mean absolute deviation,
  // about one standard deviation less 20 %; on the open corpus unsafe misrouting 0.45 % (γ 0:
  // 0.90 %, γ 2: 0.10 % at 5.3 % misrouting; docs/estimator.md).
  double gamma = 1.0;
  Status Validate() const;
};

struct LinearConfig {
  // Prior variance of the RLS coefficients (P0 = δ·I over features scaled by request bytes):
  // large enough that ~20 samples dominate the prior, small enough to keep P well conditioned.
  double prior_variance = 1e4;
  // Before: the static formula. 5: the global model's first estimates come from the static
  // prior anyway (PriorTheta); a few samples fix the per-message and per-byte scale.
  int64_t min_global_samples = 5;
  // Before: the global model. 20 (fewer than the 43 coefficients: a category starts from the
  // global ones): over 10 replay orders of the open corpus the lowest worst-category
  // calibration error (2.4 %; 30: 3.2 %, 50: 3.6 %) at the same MAPE.
  int64_t min_category_samples = 20;
  // Conservative = unbiased · (1 + γ · spread). Spread = EMA (weight 0.05, ~20 samples) of
  // |actual - estimate| / estimate over requests of at least spread_min_tokens estimated tokens:
  // small requests are far from any routing boundary and their larger relative error would
  // widen the margin for nothing. γ 1.25 over requests >= 1,000 tokens: the smallest margin
  // whose unsafe misrouting on the open corpus stays under the 0.2 % goal in all of 10 replay
  // orders (at most 0.15 %), at 1.36 % misrouting on average; γ 1.0 gives 1.21 % but 0.20-0.25 %
  // unsafe in 3 orders. An unsafe misroute can fail a request, a safe one only costs capacity.
  // docs/estimator.md has the table.
  double gamma = 1.25;
  double spread_weight = 0.05;
  int64_t spread_min_tokens = 1000;
  // Until 10 such samples are seen: the static mode's typical relative error (15 % MAPE on the
  // open corpus), so an untrained estimator is not over-confident.
  double initial_spread = 0.15;
  // Learning cost once a model has converged: a model (the global one, each category's) learns
  // from every usage report until it has seen sample_after of them, then from one in
  // sample_every (counted per model, deterministic). With no forgetting, the n-th report moves
  // the coefficients by ~1/n of its error, so past a few thousand reports a sample of them fits
  // the same model; the two RLS updates are most of the estimator's cost per request
  // (docs/estimator.md, "Learning from a sample"). The spread still sees every report.
  // sample_every 1: every report, always.
  int64_t sample_after = 4096;
  int64_t sample_every = 8;
  Status Validate() const;
};

struct EstimatorConfig {
  double static_bytes_per_token = 4.0;  // static mode, and every mode before it has learned
  int64_t image_tokens = 8192;          // per image: the reference's worst case
  int64_t framing_per_message = 4;      // the reference's admission floor
  int64_t framing_per_tool_call = 8;    // per tool call and per tool definition
  // When the request sets no max tokens and its model has no entry below. 2,048: above most
  // chat answers, yet a request without a limit still fits an 8K short pool with a 6K prompt;
  // operators with long-form clients set a per-model value.
  int64_t default_output_reserve = 2048;
  std::vector<ModelOutputDefault> model_output_reserve;  // per-model override of the above
  // Plus one default category that takes the overflow. 256: the reference's bound; at most
  // 15 KB each in the linear mode (4 MB in all).
  int max_categories = 256;
  EmaConfig ema;
  LinearConfig linear;

  // The first violated rule, naming the field: "linear.gamma: must be >= 0".
  Status Validate() const;
};

// What an estimator has learned about one category (the admin API shows it).
struct EstimatorCategoryState {
  std::string name;                  // the override name, else "model/content-class"; "(overflow)"
                                     // for the state shared by categories beyond max_categories
  int64_t samples = 0;               // usage reports seen
  int64_t learned = 0;               // of those, the ones learned from (linear.sample_every)
  bool trusted = false;              // past the warm-up: its own state is used for estimates
  double bytes_per_token = 0;        // observed: Σ ratio bytes / Σ content tokens
  double model_bytes_per_token = 0;  // ema: the learned ratio ĉ; linear: 0 (no single ratio)
  double spread = 0;                 // relative spread behind the conservative estimate
};

class TokenEstimator {
 public:
  virtual ~TokenEstimator() = default;
  virtual std::string_view Name() const = 0;
  // O(1), no allocation.
  virtual TokenEstimate Estimate(const RequestFeatures& f, const Category& c) const = 0;
  // Learns from the backend's usage.prompt_tokens for the request. Ignores actual <= 0.
  virtual void Observe(const RequestFeatures& f, const Category& c,
                       int64_t actual_prompt_tokens) = 0;
  // Categories with learned state (excluding the default one).
  virtual int CategoryCount() const = 0;
  // Each category's learned state (allocates; for the admin API, not the request path).
  virtual std::vector<EstimatorCategoryState> Categories() const = 0;
};

// "override" when the category was named by the caller, else "model/content-class".
std::string CategoryName(const Category& c);

using EstimatorFactory = std::unique_ptr<TokenEstimator> (*)(const EstimatorConfig&);
struct EstimatorMode {
  std::string_view name;
  std::string_view description;
  EstimatorFactory make;
};

inline constexpr std::string_view kDefaultEstimatorMode = "linear";

// static, ema, linear.
std::span<const EstimatorMode> EstimatorModes();

// NotFound naming the known modes for an unknown name; the config's Validate() error if invalid.
Result<std::unique_ptr<TokenEstimator>> MakeEstimator(std::string_view mode,
                                                      const EstimatorConfig& config);

}  // namespace tokenpool
