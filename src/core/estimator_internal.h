#pragma once
// Internal to the estimator implementations (src/core/estimator*.cc): the parts every mode
// shares (output reserve, framing, images) and the bounded category table.
//
// Thread-safety: as TokenEstimator (single-threaded).

#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "tokenpool/estimator.h"

namespace tokenpool::estimator_internal {

int64_t OutputReserve(const EstimatorConfig& c, const RequestFeatures& f);
int64_t Framing(const EstimatorConfig& c, const RequestFeatures& f);
inline int64_t ImageTokens(const EstimatorConfig& c, const RequestFeatures& f) {
  return f.images * c.image_tokens;
}
// Whether a usage report teaches the text models: not for a request with images. What an
// image costs depends on the model and the image (a probe's backend counted a one-image request as
// 13 tokens), so its share of the prompt count cannot be taken out; `image_tokens` (a worst case)
// taken out instead turned a small count negative, and a few such reports took the text's estimates
// to their floor of 1 token (seen by a probe against the demo). Text plus structured bytes: what a
// bytes/token ratio applies to.
inline int64_t RatioBytes(const RequestFeatures& f) { return f.text_bytes + f.structured_bytes; }
// The content tokens (the count less the token ids sent) that bytes can be: a byte-level
// tokenizer's token is at least one byte, plus the chat template's framing and a slack of
// kFramingSlack; and none covers more than kMaxBytesPerToken bytes.
inline constexpr double kMaxBytesPerToken = 64;
inline constexpr int64_t kFramingSlack = 64;
inline int64_t MaxContentTokens(const EstimatorConfig& c, const RequestFeatures& f) {
  return RatioBytes(f) + Framing(c, f) + kFramingSlack;
}
inline double MinContentTokens(const RequestFeatures& f) {
  return static_cast<double>(RatioBytes(f)) / kMaxBytesPerToken;
}
// Whether the usage report `actual` of request `f` teaches the models: not for a request with
// images (above), and not a count that its bytes cannot be (MaxContentTokens,
// MinContentTokens): a backend's one report of 1e9 prompt tokens took every later estimate of
// the category past the largest pool (a 400 for each, so nothing taught it back), and 1e6 left
// estimates 10 times too high after 200 good reports (a probe; the least-squares fit does not
// forget).
inline bool LearnsFrom(const EstimatorConfig& c, const RequestFeatures& f, int64_t actual) {
  if (f.images != 0 || actual <= 0 || actual < f.prompt_token_ids) return false;
  const int64_t content = actual - f.prompt_token_ids;
  return content <= MaxContentTokens(c, f) && static_cast<double>(content) >= MinContentTokens(f);
}
// Σ ratio bytes and Σ content tokens of the samples a state learned from.
struct ObservedRatio {
  double bytes = 0;
  double tokens = 0;
  void Add(double b, double t) {
    bytes += b;
    tokens += t;
  }
  double value() const { return tokens > 0 ? bytes / tokens : 0; }
};

inline int64_t CeilDiv(double bytes, double ratio) {
  return bytes <= 0 ? 0 : static_cast<int64_t>(std::ceil(bytes / ratio));
}

// The static formula: ceil(bytes / ratio) + framing + images + given token ids.
TokenEstimate StaticEstimate(const EstimatorConfig& c, const RequestFeatures& f);

// The prompt tokens of the request's longest sequence, out of `whole` (the conservative
// estimate of all its prompts): `whole`, except for a completions batch, whose prompts are
// sequences of their own (vLLM checks each against the context): its longest prompt's share
// of `whole` by text bytes (for token-id lists, that list's length exactly), plus one prompt's
// framing, at most `whole`.
int64_t LongestSequencePrompt(const EstimatorConfig& c, const RequestFeatures& f, int64_t whole);

// Fills output_reserve and routing_budget (the longest sequence's prompt + output_reserve) from
// the prompt fields; keeps routing >= unbiased.
void Finish(const EstimatorConfig& c, const RequestFeatures& f, TokenEstimate* e);

// At most `capacity` categories, found by key with open addressing (no allocation on lookup),
// plus a default State that takes every category beyond the bound.
template <typename State>
class CategoryTable {
 public:
  explicit CategoryTable(int capacity) : capacity_(capacity) {
    size_t n = 16;
    while (n < static_cast<size_t>(capacity) * 2) n *= 2;  // load factor <= 1/2
    index_.assign(n, kEmpty);
    keys_.reserve(static_cast<size_t>(capacity));
    states_.reserve(static_cast<size_t>(capacity));
  }

  // nullptr when the key has no state of its own.
  const State* Find(uint64_t key) const {
    const int32_t slot = index_[Probe(key)];
    return slot == kEmpty ? nullptr : states_[static_cast<size_t>(slot)].get();
  }
  // The key's state, created from `init` when there is room, else the default state.
  // The category's name is kept (allocated once, at creation) for CategoryTable::ForEach.
  template <typename Init>
  State* FindOrCreate(const Category& c, Init&& init) {
    const size_t pos = Probe(c.key);
    if (index_[pos] != kEmpty) return states_[static_cast<size_t>(index_[pos])].get();
    if (static_cast<int>(states_.size()) >= capacity_) return &default_;
    index_[pos] = static_cast<int32_t>(states_.size());
    keys_.push_back(c.key);
    names_.push_back(CategoryName(c));
    states_.push_back(std::make_unique<State>(init()));
    return states_.back().get();
  }
  // f(name, state) for every category in creation order.
  template <typename F>
  void ForEach(F&& f) const {
    for (size_t i = 0; i < states_.size(); ++i) f(names_[i], *states_[i]);
  }
  State& default_state() { return default_; }
  const State& default_state() const { return default_; }
  int size() const { return static_cast<int>(states_.size()); }

 private:
  static constexpr int32_t kEmpty = -1;
  size_t Probe(uint64_t key) const {
    const size_t mask = index_.size() - 1;
    size_t pos = static_cast<size_t>(key * 0x9E3779B97F4A7C15ull >> 32) & mask;
    while (index_[pos] != kEmpty && keys_[static_cast<size_t>(index_[pos])] != key) {
      pos = (pos + 1) & mask;
    }
    return pos;
  }

  int capacity_;
  std::vector<int32_t> index_;
  std::vector<uint64_t> keys_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<State>> states_;
  State default_{};
};

std::unique_ptr<TokenEstimator> MakeStaticEstimator(const EstimatorConfig& c);
std::unique_ptr<TokenEstimator> MakeEmaEstimator(const EstimatorConfig& c);
std::unique_ptr<TokenEstimator> MakeLinearEstimator(const EstimatorConfig& c);

}  // namespace tokenpool::estimator_internal
