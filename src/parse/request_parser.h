#pragma once
// RequestParser: reads an OpenAI request body (/v1/chat/completions or /v1/completions) in one
// pass with simdjson on-demand into RequestFeatures (tokenpool/request_features.h): model,
// stream flags, max_completion_tokens / max_tokens, byte counts of text and structured content,
// counts of messages, tool calls, tool definitions and images, and the byte statistics of all
// text content (unescaped).
//
//   RequestParser parser;                    // one per thread; reuses its buffers
//   RequestFeatures f;
//   if (Status s = parser.Parse(body, &f); !s.ok()) return s;   // "messages[2].content: ..."
//
// Padding contract: simdjson reads up to kPadding bytes past the end of the JSON text.
// ParsePadded() reads the body in place: the caller guarantees that `capacity` bytes starting at
// body.data() are readable (capacity >= body.size() + kPadding; the padding bytes may hold
// anything). Parse() copies the body into a padded buffer owned by the parser, grown only when a
// larger body arrives (no allocation in the steady state).
//
// Errors (never exceptions): kInvalidArgument with the JSON path and the rule
// ("messages[2].content: expected string, array or null"), or for malformed JSON the simdjson
// error and the path being read; kOutOfRange for a body over ParserConfig::max_body_bytes.
// Fields the estimate does not need are skipped (on-demand parsing does not validate them beyond
// simdjson's structural pass: UTF-8 and string/structure scanning).
//
// Thread-safety: not thread-safe; use one parser per thread.

#include <cstddef>
#include <memory>
#include <string_view>

#include "tokenpool/request_features.h"
#include "tokenpool/status.h"

namespace tokenpool::parse {

struct ParserConfig {
  // 16 MiB: above the largest context of current models at ~4 bytes/token with room for
  // escaping, and small enough that a hostile body cannot make the gateway hold much memory.
  size_t max_body_bytes = size_t{16} << 20;
  // false: RequestFeatures::text holds only `bytes` (enough for the static and ema modes);
  // skips the byte-class statistics, most of the parse time for long content.
  bool byte_stats = true;
  // How the statistics are counted; every path gives the same counts. kRaw: on the raw JSON
  // strings in place, no unescaping (CountJsonStringStats; strings with \u escapes and builds
  // without AVX2 take kUnescaped). kUnescaped: simdjson unescapes each string, then
  // CountByteStats. kReference: the byte-at-a-time CountByteStatsReference on the unescaped
  // text (for tests).
  enum StatsPath { kRaw, kUnescaped, kReference };
  StatsPath stats_path = kRaw;
  // kRaw: the AVX-512 kernel where the CPU has it (chosen at run time); false: the AVX2 kernel
  // on any CPU (to measure what a CPU without AVX-512 gets).
  bool avx512 = true;
  // The least max_tokens / max_completion_tokens taken: 0 for the mock, which answers it with
  // vLLM's own message; 1 at the gateway, whose 400 then names the field and the rule.
  int64_t min_max_tokens = 0;

  Status Validate() const;
};

class RequestParser {
 public:
  static constexpr size_t kPadding = 64;  // == SIMDJSON_PADDING of simdjson 3.x

  // Requires config.Validate().ok() (checked once where the config is loaded).
  explicit RequestParser(ParserConfig config = {});
  ~RequestParser();
  RequestParser(const RequestParser&) = delete;
  RequestParser& operator=(const RequestParser&) = delete;

  // Copies `body` into the parser's padded buffer, then parses. Overwrites *out (Clear()) even
  // on error; on error *out is unspecified.
  Status Parse(std::string_view body, RequestFeatures* out);

  // Zero-copy. Requires: capacity >= body.size() + kPadding bytes readable at body.data().
  Status ParsePadded(std::string_view body, size_t capacity, RequestFeatures* out);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tokenpool::parse
