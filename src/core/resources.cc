#include "tokenpool/resources.h"

#include <algorithm>
#include <cstdio>

namespace tokenpool {

std::string_view DimName(Dim d) {
  switch (d) {
    case Dim::kTokenRate:
      return "token_rate";
    case Dim::kKvTokens:
      return "kv_tokens";
    case Dim::kConcurrency:
      return "concurrency";
  }
  return "unknown";
}

ResourceVector ResourceVector::Max(const ResourceVector& a, const ResourceVector& b) {
  return {std::max(a.token_rate, b.token_rate), std::max(a.kv_tokens, b.kv_tokens),
          std::max(a.concurrency, b.concurrency)};
}

ResourceVector ResourceVector::Min(const ResourceVector& a, const ResourceVector& b) {
  return {std::min(a.token_rate, b.token_rate), std::min(a.kv_tokens, b.kv_tokens),
          std::min(a.concurrency, b.concurrency)};
}

std::string ResourceVector::ToString() const {
  char buf[160];
  std::snprintf(buf, sizeof buf, "{token_rate: %.6g, kv_tokens: %.6g, concurrency: %.6g}",
                token_rate, kv_tokens, concurrency);
  return buf;
}

}  // namespace tokenpool
