#include "gateway/json_values.h"

#include <cmath>
#include <cstdint>

namespace tokenpool::gateway {

boost::json::value JsonNumber(double v) {
  if (!std::isfinite(v)) return nullptr;
  constexpr double kExact = 9007199254740992.0;  // 2^53: every integer below is a double
  if (v == std::trunc(v) && std::abs(v) < kExact) return static_cast<int64_t>(v);
  return v;
}

boost::json::object ResourceVectorJson(const ResourceVector& v) {
  return {{"token_rate", JsonNumber(v.token_rate)},
          {"kv_tokens", JsonNumber(v.kv_tokens)},
          {"concurrency", JsonNumber(v.concurrency)}};
}

}  // namespace tokenpool::gateway
