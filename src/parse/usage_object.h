#pragma once
// The two counts of an OpenAI `usage` object ({"prompt_tokens":N,"completion_tokens":M,...}),
// read with simdjson's On-Demand API (this library is compiled for AVX2, see CMakeLists.txt):
// the gateway settles every reservation with them. ~100 bytes of JSON; Boost.JSON's DOM parse
// of it was ~1.8 K instructions per answer, a twentieth of the gateway's work per request.
//
//   int64_t prompt = 0, completion = 0;
//   if (parse::ReadUsageCounts(R"({"prompt_tokens":3,"completion_tokens":4})", &prompt,
//                              &completion)) ...
//
// Thread-safety: reentrant (one parser per thread).

#include <cstdint>
#include <string_view>

namespace tokenpool::parse {

// True when `object` is a JSON object whose prompt_tokens and completion_tokens are integers
// (other members, nested ones included, are skipped); false for anything else. With
// `rest_follows`, `object` may go on after the object's closing brace (the rest of the document
// it was found in), which is not read; else nothing may follow it.
bool ReadUsageCounts(std::string_view object, int64_t* prompt_tokens, int64_t* completion_tokens,
                     bool rest_follows = false);

}  // namespace tokenpool::parse
