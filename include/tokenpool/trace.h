#pragma once
// Request traces: pure parsing of CSV text into request lengths (and arrivals, when the trace
// has them). The caller reads the file; the planner and the simulator consume the values.
//
// Formats, detected by the header line:
//   Azure LLM inference 2023  TIMESTAMP,ContextTokens,GeneratedTokens
//                             2023-11-16 18:17:03.9799600,4808,10
//                             arrival = seconds since the first row's timestamp
//   plain                     arrival_s,input_tokens,output_tokens
//   lengths only (etalon)     num_prefill_tokens,num_decode_tokens[,...]   no arrivals
// Columns are found by name (extra columns are ignored), blank lines skipped, CRLF accepted.
//
//   Result<Trace> t = ParseTrace(text, "trace.csv");
//   // error: "trace.csv:17: ContextTokens: expected a non-negative integer, got \"abc\""
//
// Thread-safety: pure functions; results are plain values.

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "tokenpool/status.h"

namespace tokenpool {

// The most tokens a trace row may give for its input or its output: 2^32, some 400 times the
// longest context windows (10 M tokens), and small enough that input + output, and sums over
// up to 2^31 rows, stay inside int64. ParseTrace refuses larger values by file, line and field.
inline constexpr int64_t kMaxTraceTokens = int64_t{1} << 32;

struct TraceRequest {
  std::optional<double> arrival_s;  // seconds since the trace's first request; none if unknown
  int64_t input_tokens = 0;
  int64_t output_tokens = 0;

  // Exact for rows ParseTrace made (each count at most kMaxTraceTokens).
  int64_t total_tokens() const { return input_tokens + output_tokens; }
  bool operator==(const TraceRequest&) const = default;
};

enum class TraceFormat { kAzure, kPlain, kLengthsOnly };

// "azure", "plain", "lengths_only".
std::string_view TraceFormatName(TraceFormat f);

struct Trace {
  TraceFormat format = TraceFormat::kPlain;
  std::vector<TraceRequest> requests;  // in file order; arrivals are non-decreasing
};

// Parses a whole trace. `source` names the text in errors (usually the file name). Errors
// (InvalidArgument) say "<source>:<line>: <field>: <rule>, got \"<text>\"". A trace with a
// header and no rows is an error, as is an unknown header (the message lists the formats).
Result<Trace> ParseTrace(std::string_view text, std::string_view source);

}  // namespace tokenpool
