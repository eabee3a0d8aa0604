// The default mode: an online linear model from byte-class counts to prompt tokens.
//
// Features x (kNumFeatures, listed in FillFeatures) are counts from RequestFeatures; the model
// is fitted on x / B -> (tokens - images - token ids) / B with B = text + structured bytes
// + 20 per message + 1: dividing by the request's size makes the squared error relative, which
// is what MAPE and calibration measure, and keeps every feature in [0, ~1] for a well-conditioned
// recursive least squares (RLS, forgetting factor 1: the corpus is stationary; P0 = δ·I).
//
// A global model learns from every request; each category's model starts from the global
// coefficients when the category is created and is used once it has min_category_samples.
// The conservative estimate is unbiased · (1 + γ · spread), spread an EMA of the relative
// residual |actual - estimate| / estimate over requests of >= spread_min_tokens tokens, per
// category (the global one until the category has 10 such samples).
#include <algorithm>
#include <array>
#include <cmath>

#include "estimator_internal.h"

namespace tokenpool::estimator_internal {
namespace {

constexpr int kBaseFeatures = 24;
constexpr int kNumFeatures = kBaseFeatures + kNumScripts;
using Vec = std::array<double, kNumFeatures>;
// A column of the RLS matrix: kNumFeatures rounded up to a whole number of 4-double vectors.
constexpr int kStride = (kNumFeatures + 3) / 4 * 4;
using Column = std::array<double, kStride>;

constexpr int64_t kMinSpreadSamples = 10;

// Returns B, the scale; fills x with the unscaled counts divided by B.
double FillFeatures(const RequestFeatures& f, Vec* x) {
  const ByteStats& s = f.text;
  const double b = static_cast<double>(f.text_bytes + f.structured_bytes + 20 * f.messages + 1);
  const int64_t raw[kBaseFeatures] = {
      1,  // intercept: the template's begin/end tokens
      f.messages,
      f.tool_calls,
      f.tool_definitions,
      f.structured_bytes,
      s.letters,
      s.upper,
      s.letter_runs,
      s.letters_ge4,
      s.letters_ge8,
      s.camel,
      s.digits,
      s.digit_runs,
      s.spaces,
      s.space_runs,
      s.newlines,
      s.newline_runs,
      s.punct,
      s.punct_runs,
      s.punct_ge3,
      s.control,
      s.quotes,
      s.brackets,
      s.non_ascii_runs,
  };
  for (int i = 0; i < kBaseFeatures; ++i) (*x)[i] = static_cast<double>(raw[i]) / b;
  for (int i = 0; i < kNumScripts; ++i) {
    (*x)[kBaseFeatures + i] = static_cast<double>(s.script[i]) / b;
  }
  return b;
}

// The coefficients before any data: the static mode's rule (text bytes / static_bytes_per_token
// + framing per message), and one token per non-ASCII character, which errs high for most
// scripts (Han ~0.9, Cyrillic ~0.4 tokens per character on Llama 3) but not by the factor of 2
// that bytes/4 would err low for Georgian or Armenian (~2 and ~1.7). Coefficients of features
// never seen keep these values: a script's first requests are not estimated at zero tokens.
Vec PriorTheta(const EstimatorConfig& c) {
  Vec t{};
  const double per_byte = 1.0 / c.static_bytes_per_token;
  t[1] = static_cast<double>(c.framing_per_message);           // messages
  t[2] = t[3] = static_cast<double>(c.framing_per_tool_call);  // tool calls, definitions
  t[4] = per_byte;                                             // structured bytes
  for (int i : {5, 11, 13, 15, 17, 20})
    t[i] = per_byte;  // letters, digits, spaces, newlines,
                      // punctuation, control bytes
  for (int i = 0; i < kNumScripts; ++i) t[kBaseFeatures + i] = 1.0;
  return t;
}

struct Rls {
  Vec theta{};
  // P column by column, each column padded to kStride doubles (Update).
  std::array<double, kStride * kStride> p{};
  int64_t samples = 0;
  // One past the highest feature ever nonzero in an update. Rows and columns at or above it
  // are still the prior's (δ on the diagonal, 0 elsewhere), so P x and every update leave them
  // exactly as they are, and Update's loops stop here: 24 of 43 for text in Latin script only.
  int hi = 0;
  bool initialized = false;
  double spread = 0;
  int64_t spread_samples = 0;
  ObservedRatio observed;  // ratio bytes / (tokens - images - token ids), for the admin view

  void Init(const Vec& start, double prior_variance) {
    theta = start;
    p.fill(0);
    for (int i = 0; i < kNumFeatures; ++i) p[static_cast<size_t>(i) * kStride + i] = prior_variance;
    hi = 0;
    initialized = true;
  }
  double Predict(const Vec& x) const {
    double y = 0;
    for (int i = 0; i < kNumFeatures; ++i) y += theta[i] * x[i];
    return y;
  }
  // P is stored column by column (p[j * kStride + i] is P's row i, column j), so that both
  // loops below run over contiguous memory. px = P x is accumulated column by column: each
  // px[i] sums its terms in order of j (the same value as a row-by-row dot product), the sums
  // advance side by side, and the many zero features are skipped. Each element's update
  // P(i,j) -= (px[i] / den) * px[j] is the same expression in either loop order, so the model
  // is bit for bit what a row-major layout gives.
  //
  // The rows are processed in a fixed number N of 4-double vectors (hi rounded up), so that
  // px and k stay in registers. Rows from hi to N are exact zeros in every column below hi
  // (a feature never seen nonzero keeps the prior's zero covariances), so their px and k are
  // +0 and the update leaves them as they are: the same bits as stopping at hi.
  // (`tokenpool estimate-eval --json` prints the same bytes as before either change.)
  //
  // Compiled twice, for AVX2 and for the x86-64 baseline, picked at load time: the element-wise
  // loops run 4 doubles wide instead of 2. Without FMA (a separate target feature): every
  // product and sum is rounded as in the baseline build, so the model is bit for bit the same
  // on every machine.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  __attribute__((target_clones("avx2", "default")))
#endif
  void Update(const Vec& x, double y) {
    for (int j = kNumFeatures - 1; j >= hi; --j) {
      if (x[j] != 0) {
        hi = j + 1;
        break;
      }
    }
    switch ((hi + 3) / 4) {
      case 0:
      case 1: UpdateRows<4>(x, y); break;
      case 2: UpdateRows<8>(x, y); break;
      case 3: UpdateRows<12>(x, y); break;
      case 4: UpdateRows<16>(x, y); break;
      case 5: UpdateRows<20>(x, y); break;
      case 6: UpdateRows<24>(x, y); break;
      case 7: UpdateRows<28>(x, y); break;
      case 8: UpdateRows<32>(x, y); break;
      case 9: UpdateRows<36>(x, y); break;
      case 10: UpdateRows<40>(x, y); break;
      default: UpdateRows<kStride>(x, y); break;
    }
    ++samples;
  }
  template <int N>
  [[gnu::always_inline]] inline void UpdateRows(const Vec& x, double y) {
    static_assert(N % 4 == 0 && N <= kStride);
    // Beyond `hi`, x is 0, P x is exactly 0 and nothing below changes: the loops stop there.
    Column px{};
    for (int j = 0; j < hi; ++j) {
      const double xj = x[j];
      if (xj == 0) continue;
      const double* col = &p[static_cast<size_t>(j) * kStride];
      for (int i = 0; i < N; ++i) px[i] += col[i] * xj;
    }
    double den = 1;
    for (int i = 0; i < hi; ++i) den += x[i] * px[i];
    const double err = y - Predict(x);
    Column k{};
    for (int i = 0; i < N; ++i) k[i] = px[i] / den;
    for (int i = 0; i < hi; ++i) theta[i] += k[i] * err;
    // A column whose px[j] is 0 would only subtract zeros: skipped (as is, in effect, a row
    // whose px[i] is 0: k[i] = 0). P's rows and columns of features never seen nonzero (most
    // scripts, tool features in plain chat) stay those of the prior, so their px is exactly 0
    // and a typical update touches half the matrix or less.
    for (int j = 0; j < hi; ++j) {
      const double pj = px[j];
      if (pj == 0) continue;
      double* col = &p[static_cast<size_t>(j) * kStride];
      for (int i = 0; i < N; ++i) col[i] -= k[i] * pj;
    }
  }
  void AddSpread(double rel, double weight) {
    spread = spread_samples == 0 ? rel : (1 - weight) * spread + weight * rel;
    ++spread_samples;
  }
};

class LinearEstimator final : public TokenEstimator {
 public:
  explicit LinearEstimator(const EstimatorConfig& c) : config_(c), table_(c.max_categories) {
    global_.Init(PriorTheta(c), c.linear.prior_variance);
  }
  std::string_view Name() const override { return "linear"; }

  TokenEstimate Estimate(const RequestFeatures& f, const Category& c) const override {
    if (global_.samples < config_.linear.min_global_samples) return StaticEstimate(config_, f);
    Vec x;
    const double b = FillFeatures(f, &x);
    const Rls* cat = Lookup(c);
    const double content = Content(cat, x, b);
    TokenEstimate e;
    e.image_tokens = ImageTokens(config_, f);
    const int64_t rest = e.image_tokens + f.prompt_token_ids;
    e.prompt_tokens = std::max<int64_t>(1, std::llround(content) + rest);
    const double margin = 1 + config_.linear.gamma * Spread(cat);
    e.routing_prompt_tokens =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(content * margin)) + rest);
    e.learned = true;
    Finish(config_, f, &e);
    return e;
  }

  void Observe(const RequestFeatures& f, const Category& c, int64_t actual) override {
    if (actual <= 0) return;
    Vec x;
    const double b = FillFeatures(f, &x);
    const double target =
        static_cast<double>(actual - ImageTokens(config_, f) - f.prompt_token_ids);
    Rls* cat = table_.FindOrCreate(c, [&] {
      Rls r;
      r.Init(global_.theta, config_.linear.prior_variance);
      return r;
    });
    if (!cat->initialized) cat->Init(global_.theta, config_.linear.prior_variance);
    if (global_.samples >= config_.linear.min_global_samples) {
      const double est = Content(cat, x, b);
      if (est >= static_cast<double>(config_.linear.spread_min_tokens)) {
        const double rel = std::abs(target - est) / est;
        cat->AddSpread(rel, config_.linear.spread_weight);
        global_.AddSpread(rel, config_.linear.spread_weight);
      }
    }
    global_.Update(x, target / b);
    cat->Update(x, target / b);
    cat->observed.Add(static_cast<double>(RatioBytes(f)), target);
  }

  int CategoryCount() const override { return table_.size(); }

  std::vector<EstimatorCategoryState> Categories() const override {
    std::vector<EstimatorCategoryState> out;
    const auto add = [&](const std::string& name, const Rls& r) {
      out.push_back({.name = name,
                     .samples = r.samples,
                     .trusted = r.samples >= config_.linear.min_category_samples,
                     .bytes_per_token = r.observed.value(),
                     .model_bytes_per_token = 0,
                     .spread = r.spread_samples >= kMinSpreadSamples ? r.spread : global_.spread});
    };
    table_.ForEach(add);
    if (table_.default_state().samples > 0) add("(overflow)", table_.default_state());
    return out;
  }

 private:
  const Rls* Lookup(const Category& c) const {
    const Rls* cat = table_.Find(c.key);
    if (cat == nullptr && table_.default_state().initialized) {
      // A category that never got a slot (table full) learns in the default state.
      cat = table_.size() >= config_.max_categories ? &table_.default_state() : nullptr;
    }
    return cat;
  }
  // Content tokens (without images and given ids) from the category model when trusted.
  double Content(const Rls* cat, const Vec& x, double b) const {
    const bool use_cat = cat != nullptr && cat->samples >= config_.linear.min_category_samples;
    return std::max(1.0, (use_cat ? cat->Predict(x) : global_.Predict(x)) * b);
  }
  double Spread(const Rls* cat) const {
    if (cat != nullptr && cat->spread_samples >= kMinSpreadSamples) return cat->spread;
    if (global_.spread_samples >= kMinSpreadSamples) return global_.spread;
    return config_.linear.initial_spread;
  }

  EstimatorConfig config_;
  Rls global_;
  CategoryTable<Rls> table_;
};

}  // namespace

std::unique_ptr<TokenEstimator> MakeLinearEstimator(const EstimatorConfig& c) {
  return std::make_unique<LinearEstimator>(c);
}

}  // namespace tokenpool::estimator_internal
