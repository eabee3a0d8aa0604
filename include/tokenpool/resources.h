#pragma once
// ResourceVector: inference capacity in inference-native units over three dimensions.
//   token_rate  tokens/s of throughput (prompt + output tokens processed)
//   kv_tokens   KV-cache tokens held by requests in flight
//   concurrency sequences in flight
// Stored as doubles so that one set of vector operations serves all three; kv_tokens and
// concurrency only ever hold integers, which doubles represent exactly below 2^53.
//
//   ResourceVector c{.token_rate = 2400, .kv_tokens = 1 << 20, .concurrency = 128};
//   ResourceVector pool = c * 4.0;           // four replicas
//   bool fits = (used + cost).AllLe(pool);
//
// Thread-safety: plain value.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace tokenpool {

enum class Dim : int { kTokenRate = 0, kKvTokens = 1, kConcurrency = 2 };
inline constexpr int kNumDims = 3;
inline constexpr std::array<Dim, kNumDims> kAllDims = {Dim::kTokenRate, Dim::kKvTokens,
                                                       Dim::kConcurrency};

// "token_rate", "kv_tokens", "concurrency": the names used in configs, errors and metric labels.
std::string_view DimName(Dim d);

struct ResourceVector {
  double token_rate = 0;
  double kv_tokens = 0;
  double concurrency = 0;

  double& operator[](Dim d) {
    return d == Dim::kTokenRate ? token_rate : d == Dim::kKvTokens ? kv_tokens : concurrency;
  }
  double operator[](Dim d) const {
    return d == Dim::kTokenRate ? token_rate : d == Dim::kKvTokens ? kv_tokens : concurrency;
  }

  ResourceVector operator+(const ResourceVector& o) const {
    return {token_rate + o.token_rate, kv_tokens + o.kv_tokens, concurrency + o.concurrency};
  }
  ResourceVector operator-(const ResourceVector& o) const {
    return {token_rate - o.token_rate, kv_tokens - o.kv_tokens, concurrency - o.concurrency};
  }
  ResourceVector operator*(double k) const {
    return {token_rate * k, kv_tokens * k, concurrency * k};
  }
  ResourceVector& operator+=(const ResourceVector& o) { return *this = *this + o; }
  ResourceVector& operator-=(const ResourceVector& o) { return *this = *this - o; }
  bool operator==(const ResourceVector&) const = default;

  // Every dimension of *this <= the same dimension of o.
  bool AllLe(const ResourceVector& o) const {
    return token_rate <= o.token_rate && kv_tokens <= o.kv_tokens && concurrency <= o.concurrency;
  }
  bool AnyNegative() const { return token_rate < 0 || kv_tokens < 0 || concurrency < 0; }
  bool IsZero() const { return token_rate == 0 && kv_tokens == 0 && concurrency == 0; }

  static ResourceVector Max(const ResourceVector& a, const ResourceVector& b);
  static ResourceVector Min(const ResourceVector& a, const ResourceVector& b);

  // "{token_rate: 240, kv_tokens: 65536, concurrency: 16}"
  std::string ToString() const;
};

}  // namespace tokenpool
