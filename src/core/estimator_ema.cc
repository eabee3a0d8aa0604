// The paper's mode (papers.md §2): per category, the bytes/token ratio of text + structured
// bytes, learned online by EMA from usage.prompt_tokens (after removing framing, images and
// given token ids):
//   c_obs = bytes / content_tokens
//   σ̂ ← β σ̂ + (1 - β) |c_obs - ĉ|,   ĉ ← β ĉ + (1 - β) c_obs   (the first sample sets ĉ)
//   unbiased    = ceil(bytes / ĉ) + framing + images
//   conservative = ceil(bytes / c*) + ..., c* = max(ĉ - γ σ̂, ĉ / 4)
// The warm-up ratio is used until the category has min_samples observations.
#include <algorithm>

#include "estimator_internal.h"

namespace tokenpool::estimator_internal {
namespace {

struct EmaState {
  double ratio = 0;    // ĉ, bytes per token
  double abs_dev = 0;  // σ̂, EMA of |c_obs - ĉ|
  int64_t samples = 0;
  ObservedRatio observed;
};

class EmaEstimator final : public TokenEstimator {
 public:
  explicit EmaEstimator(const EstimatorConfig& c) : config_(c), table_(c.max_categories) {}
  std::string_view Name() const override { return "ema"; }

  TokenEstimate Estimate(const RequestFeatures& f, const Category& c) const override {
    const EmaState* s = table_.Find(c.key);
    if (s == nullptr) s = &table_.default_state();
    if (s->samples < config_.ema.min_samples) {
      TokenEstimate e = StaticEstimate(config_, f);
      const double bytes = static_cast<double>(RatioBytes(f));
      const int64_t rest = e.prompt_tokens - CeilDiv(bytes, config_.static_bytes_per_token);
      e.prompt_tokens =
          std::max<int64_t>(1, CeilDiv(bytes, config_.ema.warmup_bytes_per_token) + rest);
      e.routing_prompt_tokens = e.prompt_tokens;
      Finish(config_, f, &e);
      return e;
    }
    TokenEstimate e;
    e.framing_tokens = Framing(config_, f);
    e.image_tokens = ImageTokens(config_, f);
    const int64_t rest = e.framing_tokens + e.image_tokens + f.prompt_token_ids;
    const double bytes = static_cast<double>(RatioBytes(f));
    const double low = std::max(s->ratio - config_.ema.gamma * s->abs_dev, s->ratio / 4);
    e.prompt_tokens = std::max<int64_t>(1, CeilDiv(bytes, s->ratio) + rest);
    e.routing_prompt_tokens = std::max<int64_t>(1, CeilDiv(bytes, low) + rest);
    e.learned = true;
    Finish(config_, f, &e);
    return e;
  }

  void Observe(const RequestFeatures& f, const Category& c, int64_t actual) override {
    if (!LearnsFrom(config_, f, actual)) return;  // images, implausible counts
    const int64_t bytes = RatioBytes(f);
    if (bytes <= 0) return;  // nothing to learn a ratio from
    const int64_t content_tokens =
        std::max<int64_t>(1, actual - Framing(config_, f) - f.prompt_token_ids);
    const double obs = static_cast<double>(bytes) / static_cast<double>(content_tokens);
    EmaState* s = table_.FindOrCreate(c, [] { return EmaState{}; });
    const double b = config_.ema.decay;
    if (s->samples == 0) {
      s->ratio = obs;
      s->abs_dev = 0;
    } else {
      s->abs_dev = b * s->abs_dev + (1 - b) * std::abs(obs - s->ratio);
      s->ratio = b * s->ratio + (1 - b) * obs;
    }
    ++s->samples;
    s->observed.Add(static_cast<double>(bytes), static_cast<double>(content_tokens));
  }

  int CategoryCount() const override { return table_.size(); }

  std::vector<EstimatorCategoryState> Categories() const override {
    std::vector<EstimatorCategoryState> out;
    const auto add = [&](const std::string& name, const EmaState& s) {
      out.push_back({.name = name,
                     .samples = s.samples,
                     .learned = s.samples,
                     .trusted = s.samples >= config_.ema.min_samples,
                     .bytes_per_token = s.observed.value(),
                     .model_bytes_per_token = s.ratio,
                     .spread = s.ratio > 0 ? s.abs_dev / s.ratio : 0});
    };
    table_.ForEach(add);
    if (table_.default_state().samples > 0) add("(overflow)", table_.default_state());
    return out;
  }

 private:
  EstimatorConfig config_;
  CategoryTable<EmaState> table_;
};

}  // namespace

std::unique_ptr<TokenEstimator> MakeEmaEstimator(const EstimatorConfig& c) {
  return std::make_unique<EmaEstimator>(c);
}

}  // namespace tokenpool::estimator_internal
