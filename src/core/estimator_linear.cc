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
// Past linear.sample_after reports, a model learns from one in linear.sample_every (Count).
// The conservative estimate is unbiased · (1 + γ · spread), spread an EMA of the relative
// residual |actual - estimate| / estimate over requests of >= spread_min_tokens tokens, per
// category (the global one until the category has 10 such samples).
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <utility>

#include "estimator_internal.h"

namespace tokenpool::estimator_internal {
namespace {

constexpr int kBaseFeatures = 24;
constexpr int kNumFeatures = kBaseFeatures + kNumScripts;
using Vec = std::array<double, kNumFeatures>;
// P of the RLS model in 4 x 4 blocks (Rls::Update): kBlocks blocks of rows and of columns,
// kNumFeatures rounded up to a whole number of 4-double vectors.
using V4 = double __attribute__((vector_size(4 * sizeof(double))));
using V4i = int64_t __attribute__((vector_size(4 * sizeof(int64_t))));

constexpr int kBlocks = (kNumFeatures + 3) / 4;
// P's upper triangle with whole diagonal blocks, column by column: column j holds rows 0 to the
// end of its diagonal block, j / 4 + 1 vectors; block column b (columns 4b to 4b + 3) starts
// at vector 4 (1 + 2 + ... + b) = 2 b (b + 1).
constexpr int kPackedVectors = 2 * kBlocks * (kBlocks + 1);

// The lanes i0..i3 of a and b together (0-3: a's, 4-7: b's), with either compiler's builtin.
// (A macro: a function returning a V4 breaks -Wpsabi in the baseline clone.)
#if defined(__clang__)
#define TOKENPOOL_SHUFFLE(a, b, i0, i1, i2, i3) __builtin_shufflevector(a, b, i0, i1, i2, i3)
#else
#define TOKENPOOL_SHUFFLE(a, b, i0, i1, i2, i3) __builtin_shuffle(a, b, V4i{i0, i1, i2, i3})
#endif
constexpr int BlockColumnStart(int b) { return 2 * b * (b + 1); }

constexpr int64_t kMinSpreadSamples = 10;

// Returns B, the scale; fills x with the unscaled counts divided by B.
//
// Four at a time: a count in [0, 2^52) becomes a double exactly as the bits of 2^52 + count
// minus 2^52 (AVX2 has no int64 -> double conversion), and a division is correctly rounded
// whether one or four are done at once, so x is bit for bit the scalar loop's (any count
// outside that range takes the scalar loop). Compiled for AVX2 and the x86-64 baseline, as
// Rls::Update: 365 -> 166 instructions a call (callgrind of bench/gateway/run_gateway_profile.sh;
// two calls a request).
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
__attribute__((target_clones("avx2", "default")))
#endif
double FillFeatures(const RequestFeatures& f, Vec* x) {
  const ByteStats& s = f.text;
  const double b = static_cast<double>(f.text_bytes + f.structured_bytes + 20 * f.messages + 1);
  constexpr int kVectors = (kNumFeatures + 3) / 4;
  // Set element by element (an initializer list would zero all of it first): the base
  // features, the scripts, 0 in the padding.
  alignas(32) int64_t raw[4 * kVectors];
  const int64_t base[kBaseFeatures] = {
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
  std::memcpy(raw, base, sizeof base);
  std::memcpy(raw + kBaseFeatures, s.script.data(), sizeof s.script);
  for (int i = kNumFeatures; i < 4 * kVectors; ++i) raw[i] = 0;
  V4i any{};
  for (int v = 0; v < kVectors; ++v) {
    V4i r;
    std::memcpy(&r, &raw[4 * v], sizeof r);
    any |= r;
  }
  if (((any[0] | any[1] | any[2] | any[3]) >> 52) != 0) {  // negative, or 2^52 and up
    for (int i = 0; i < kNumFeatures; ++i) (*x)[i] = static_cast<double>(raw[i]) / b;
    return b;
  }
  constexpr int64_t kTwo52Bits = 0x4330000000000000;  // the double 2^52
  const V4i magic = {kTwo52Bits, kTwo52Bits, kTwo52Bits, kTwo52Bits};
  const V4 two52 = {0x1p52, 0x1p52, 0x1p52, 0x1p52};
  const V4 bv = {b, b, b, b};
  for (int v = 0; v < kVectors; ++v) {
    V4i r;
    std::memcpy(&r, &raw[4 * v], sizeof r);
    const V4 exact = reinterpret_cast<V4>(r | magic) - two52;
    const V4 q = exact / bv;
    if (4 * v + 4 <= kNumFeatures) {
      std::memcpy(x->data() + 4 * v, &q, sizeof q);  // straight into x
    } else {
      for (int l = 0; 4 * v + l < kNumFeatures; ++l) (*x)[4 * v + l] = q[l];
    }
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
  // P (symmetric) as its upper triangle with whole diagonal blocks: see BlockColumnStart, Update.
  std::array<V4, kPackedVectors> p{};
  int64_t samples = 0;  // usage reports seen
  int64_t learned = 0;  // of those, the ones Update learned from
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
    p.fill(V4{});
    for (int i = 0; i < kNumFeatures; ++i) {
      // Column i's last vector (i / 4 + 1 per column of block column i / 4), lane i % 4.
      p[static_cast<size_t>(BlockColumnStart(i / 4) + (i % 4 + 1) * (i / 4 + 1) - 1)][i % 4] =
          prior_variance;
    }
    hi = 0;
    initialized = true;
  }
  double Predict(const Vec& x) const {
    double y = 0;
    for (int i = 0; i < kNumFeatures; ++i) y += theta[i] * x[i];
    return y;
  }
  // P is symmetric, so only its upper triangle is stored, in 4 x 4 blocks: column j holds
  // P(i, j) for the rows i of the blocks above its diagonal block and of that block, whole (both
  // triangles of each diagonal block are kept, so that every loop runs over whole 4-double
  // vectors). An element (i, j) below the diagonal blocks is read as P(j, i), in column i.
  //
  // px = P x is accumulated block column by block column (AddPx): each column j adds its
  // stored rows times x_j (skipped when x_j is 0: most scripts, tool features in plain chat),
  // and the rows below them, P(j, i) for i in the blocks above j's diagonal block, come in as
  // the dot product of column j with x, into px[j]: 4 lanes per column, summed at the end in a
  // fixed order. The update P(i, j) -= (px[i] / den) * px[j] then runs over the stored
  // elements only (Subtract; a column whose px[j] is 0 would only subtract zeros: skipped):
  // about half of what updating all of P did. The loops over a block column's rows have a
  // length fixed at compile time (the block column), so that they are unrolled without
  // per-element bookkeeping; those over the blocks below hi (den, k) do not.
  //
  // The result is the full update's in exact arithmetic. In floating point the dot products
  // and den are summed in another order than before, and P stays exactly symmetric outside the
  // diagonal blocks where the full update let P(i, j) and P(j, i) drift apart by rounding, so
  // the model's bits are not those of the full update; `tokenpool estimate-eval` (and --json)
  // printed the same figures before and after this scheme.
  //
  // Beyond `hi`, x is 0, P x is exactly 0 and nothing changes there: the loops stop at the
  // block column that holds hi - 1. The rows of that block from hi up are exact zeros in the
  // columns below hi (a feature never seen nonzero keeps the prior's zero covariances), and
  // its columns from hi up are the prior's, so their px and k are 0 and the update leaves them
  // (and theta) as they are.
  //
  // Compiled twice, for AVX2 and for the x86-64 baseline, picked at load time: the vectors are
  // GCC vector types, one ymm register or two xmm registers, element by element the same
  // operations either way (the helpers below are always_inline member templates, not lambdas,
  // which would be compiled apart without the clone's target). Without FMA (a separate target
  // feature), and the build does not contract a * b + c (ISO C++ mode: -ffp-contract=off):
  // every product and sum is rounded as in the baseline build, so the model is bit for bit the
  // same on every machine.
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
    const int nb = (hi + 3) / 4;  // block columns (and rows) that can change
    std::array<V4, kBlocks> xv;  // x in vectors, padded with 0
    Load(x, &xv);
    std::array<V4, kBlocks> px;  // P x: AddPx<B> sets px[B], below nb
    AddPxBlocks(std::make_integer_sequence<int, kBlocks>{}, nb, xv, &px);
    V4 dv{};
    for (int r = 0; r < nb; ++r) dv += xv[static_cast<size_t>(r)] * px[static_cast<size_t>(r)];
    const double den = 1 + ((dv[0] + dv[1]) + (dv[2] + dv[3]));
    const double err = y - Predict(x);
    // k = px / den and theta += k err, 4 elements at a time. Past hi, px and k are 0 (see
    // above) and theta keeps its value.
    std::array<V4, kBlocks> k;
    std::array<V4, kBlocks> t;
    Load(theta, &t);
    const V4 eb = {err, err, err, err};
    for (int r = 0; r < nb; ++r) {
      const size_t u = static_cast<size_t>(r);
      k[u] = px[u] / den;
      t[u] += k[u] * eb;
    }
    for (int r = 0; r < kBlocks; ++r) {
      for (int l = 0; l < 4 && 4 * r + l < kNumFeatures; ++l) theta[4 * r + l] = t[r][l];
    }
    SubtractBlocks(std::make_integer_sequence<int, kBlocks>{}, nb, px, k);
    ++learned;
  }
  // Counts one usage report; true when the model learns from it: each of the first
  // sample_after, then one in sample_every (LinearConfig).
  bool Count(const LinearConfig& c) {
    ++samples;
    return samples <= c.sample_after || (samples - c.sample_after) % c.sample_every == 0;
  }
  // v in vectors, padded with 0.
  [[gnu::always_inline]] static inline void Load(const Vec& v, std::array<V4, kBlocks>* out) {
    for (int r = 0; r < kBlocks; ++r) {
      for (int l = 0; l < 4; ++l) (*out)[r][l] = 4 * r + l < kNumFeatures ? v[4 * r + l] : 0;
    }
  }
  // AddPx<B> for the block columns B < nb (not a lambda: it would be compiled apart, without
  // the clone's target).
  template <int... B>
  [[gnu::always_inline]] inline void AddPxBlocks(std::integer_sequence<int, B...>, int nb,
                                                 const std::array<V4, kBlocks>& xv,
                                                 std::array<V4, kBlocks>* px) const {
    (void)((B < nb && (AddPx<B>(xv, px), true)) && ...);
  }
  template <int... B>
  [[gnu::always_inline]] inline void SubtractBlocks(std::integer_sequence<int, B...>, int nb,
                                                    const std::array<V4, kBlocks>& px,
                                                    const std::array<V4, kBlocks>& k) {
    (void)((B < nb && (Subtract<B>(px, k), true)) && ...);
  }
  // Adds block column B's terms of P x to px: its stored rows times x_j for each of its columns
  // j, and, into px[B], the rows below them, P(j, i) = P(i, j) for i < 4B, as dot products.
  template <int B>
  [[gnu::always_inline]] inline void AddPx(const std::array<V4, kBlocks>& xv,
                                           std::array<V4, kBlocks>* px) const {
    const V4* col = &p[BlockColumnStart(B)];
    (*px)[B] = V4{};
    for (int c = 0; c < 4; ++c) {
      const double xj = xv[B][c];
      if (xj == 0) continue;
      const V4 xb = {xj, xj, xj, xj};
#pragma GCC unroll 16
      for (int r = 0; r <= B; ++r) (*px)[r] += col[c * (B + 1) + r] * xb;
    }
    std::array<V4, 4> acc;
    if constexpr (B > 0) {
      for (int c = 0; c < 4; ++c) acc[c] = col[c * (B + 1)] * xv[0];
#pragma GCC unroll 16
      for (int r = 1; r < B; ++r) {
        for (int c = 0; c < 4; ++c) acc[c] += col[c * (B + 1) + r] * xv[r];
      }
    }
    if constexpr (B > 0) {
      // (*px)[B][c] += (acc[c][0] + acc[c][1]) + (acc[c][2] + acc[c][3]), four columns at once.
      const V4 s01 = TOKENPOOL_SHUFFLE(acc[0], acc[1], 0, 4, 2, 6) +
                     TOKENPOOL_SHUFFLE(acc[0], acc[1], 1, 5, 3, 7);
      const V4 s23 = TOKENPOOL_SHUFFLE(acc[2], acc[3], 0, 4, 2, 6) +
                     TOKENPOOL_SHUFFLE(acc[2], acc[3], 1, 5, 3, 7);
      (*px)[B] += TOKENPOOL_SHUFFLE(s01, s23, 0, 1, 4, 5) + TOKENPOOL_SHUFFLE(s01, s23, 2, 3, 6, 7);
    }
  }
  // P(i, j) -= k_i px_j over block column B's stored elements. A column whose px_j is 0 would
  // only subtract zeros: skipped.
  template <int B>
  [[gnu::always_inline]] inline void Subtract(const std::array<V4, kBlocks>& px,
                                              const std::array<V4, kBlocks>& k) {
    V4* col = &p[BlockColumnStart(B)];
    for (int c = 0; c < 4; ++c, col += B + 1) {
      const double pj = px[B][c];
      if (pj == 0) continue;
      const V4 pb = {pj, pj, pj, pj};
#pragma GCC unroll 16
      for (int r = 0; r <= B; ++r) col[r] -= k[r] * pb;
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
    if (global_.samples < config_.linear.min_global_samples) {
      // Cold: the static formula, its content routed with the initial spread's margin (it had
      // none: on a fresh gateway a Han prompt of 7,211 tokens, estimated 6,754, went to the
      // short pool and got its 400).
      TokenEstimate e = StaticEstimate(config_, f);
      const int64_t rest = e.framing_tokens + e.image_tokens + f.prompt_token_ids;
      const double margin = 1 + config_.linear.gamma * config_.linear.initial_spread;
      e.routing_prompt_tokens = static_cast<int64_t>(
          std::ceil(static_cast<double>(e.prompt_tokens - rest) * margin) + rest);
      Finish(config_, f, &e);
      return e;
    }
    Vec x;
    const double b = FillFeatures(f, &x);
    const Rls* cat = Lookup(c);
    // Within what the bytes can be (LearnsFrom's bounds): the unconstrained fit can go to
    // nothing on content unlike what it learned from (a prompt of control bytes was 1 token,
    // reserving 1 of its 2,010), or far past the bytes after a few tiny samples.
    const double content =
        std::clamp(Content(cat, x, b), std::max(1.0, MinContentTokens(f)),
                   static_cast<double>(std::max<int64_t>(1, MaxContentTokens(config_, f))));
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
    // A request with images teaches nothing, nor a count its bytes cannot be (LearnsFrom).
    if (!LearnsFrom(config_, f, actual)) return;
    Vec x;
    const double b = FillFeatures(f, &x);
    const double target = static_cast<double>(actual - f.prompt_token_ids);
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
    if (global_.Count(config_.linear)) global_.Update(x, target / b);
    if (cat->Count(config_.linear)) cat->Update(x, target / b);
    cat->observed.Add(static_cast<double>(RatioBytes(f)), target);
  }

  int CategoryCount() const override { return table_.size(); }

  std::vector<EstimatorCategoryState> Categories() const override {
    std::vector<EstimatorCategoryState> out;
    const auto add = [&](const std::string& name, const Rls& r) {
      out.push_back({.name = name,
                     .samples = r.samples,
                     .learned = r.learned,
                     .trusted = r.samples >= config_.linear.min_category_samples,
                     .bytes_per_token = r.observed.value(),
                     .model_bytes_per_token = 0,
                     // The spread its estimates use (before enough samples: the global's, or
                     // the initial one; it showed 0 while estimates used 0.15).
                     .spread = Spread(&r)});
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
