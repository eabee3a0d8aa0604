#pragma once
// The two counts of an OpenAI `usage` object ({"prompt_tokens":N,"completion_tokens":M,...}),
// read with simdjson's On-Demand API (this library is compiled for AVX2, see CMakeLists.txt):
// the gateway settles every reservation with them. ~100 bytes of JSON; Boost.JSON's DOM parse
// of it was ~1.8 K instructions per answer, a twentieth of the gateway's work per request
// (`PROFILE_KEEP=DIR bash bench/gateway/run_gateway_profile.sh`, callgrind_annotate --inclusive).
//
//   int64_t prompt = 0, completion = 0;
//   if (parse::ReadUsageCounts(R"({"prompt_tokens":3,"completion_tokens":4})", &prompt,
//                              &completion)) ...
//
// Thread-safety: reentrant (one parser per thread).

#include <cstdint>
#include <string_view>

namespace tokenpool::parse {

// The most tokens one count of a usage object may say: 10^12, far past any request's (its
// output at most 10^9 per choice, 128 choices) and far enough inside int64 that the sums the
// token pools keep never overflow.
inline constexpr int64_t kMaxUsageTokens = 1'000'000'000'000;

// True when `object` starts with a JSON object whose prompt_tokens and completion_tokens are
// integers in [0, kMaxUsageTokens] (other members, nested ones included, are skipped); false
// for anything else: a backend's negative or absurd count is not a usage to settle with. What
// follows the object's closing brace (the rest of the document it was found in) is not read.
bool ReadUsageCounts(std::string_view object, int64_t* prompt_tokens, int64_t* completion_tokens);

}  // namespace tokenpool::parse
