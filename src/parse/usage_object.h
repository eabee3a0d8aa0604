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

// True when `object` starts with a JSON object whose prompt_tokens and completion_tokens are
// integers (other members, nested ones included, are skipped); false for anything else. What
// follows the object's closing brace (the rest of the document it was found in) is not read.
bool ReadUsageCounts(std::string_view object, int64_t* prompt_tokens, int64_t* completion_tokens);

}  // namespace tokenpool::parse
