#pragma once
// Reading `usage` from a backend's OpenAI-shaped JSON (a response body or one SSE chunk) without
// parsing the rest of it: an answer of 32K tokens is ~130 KB of JSON and only the usage object
// is needed to settle the reservation and teach the estimator.
//
//   Usage u;
//   if (ReadUsage(R"({"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}})",
//                 &u)) ...   // u.prompt == 3, u.completion == 4
//
// Thread-safety: pure functions.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "tokenpool/token_pool.h"

namespace tokenpool::gateway {

// Where the value of the top-level "usage" member starts (after the colon and any whitespace);
// npos when there is none. A "usage" inside a string is escaped (\"usage\") and never matches.
size_t FindUsageValue(std::string_view json);

// Whether the top-level "usage" member is an object (readable by ReadUsage or not).
inline bool HasUsageObject(std::string_view json) {
  const size_t at = FindUsageValue(json);
  return at < json.size() && json[at] == '{';
}

// The raw text of the top-level "usage" object ("{...}", nested objects such as
// prompt_tokens_details included); empty when absent, null or malformed. A "usage" inside a
// string is escaped (\"usage\") and never matches. (The request path reads the counts with
// ReadUsage; this is for callers that want the text.)
std::string_view FindUsageObject(std::string_view json);

// prompt_tokens and completion_tokens of the top-level "usage" object (found by FindUsageValue
// and read from its '{' on, so without FindUsageObject's brace matching); false when either is
// missing or not an integer.
bool ReadUsage(std::string_view json, Usage* u);

// The prompt's true token count in vLLM's context-length refusal (a 400 body), -1 when the
// body says none: "... you requested 9000 tokens (7211 in the messages, 1789 in the
// completion)", "(7211 in the prompt, ...)", or the newer "your request has 7211 input tokens".
int64_t PromptTokensOfContextError(std::string_view body);

// The request body `body` (a JSON object, as the request parser found it) with
// stream_options.include_usage = true, for a stream whose client did not ask for usage.
// Without a stream_options object of the client's (`has_stream_options` false, the usual case)
// the member is written before the object's closing brace, without parsing the body (a
// `"stream_options":null` before it loses to it: the last member wins in vLLM's parse). With
// one, the body is parsed and the member set in it, the client's other options kept; a body
// Boost.JSON cannot take (nested past 1,024 levels) gets the member written at its end.
std::string WithIncludeUsage(std::string_view body, bool has_stream_options);

// Calls f(event) for each whole server-sent event at the start of `text` (an event ends with
// a blank line: "\n\n", or "\r\n\r\n" as the SSE rules allow; f sees it without its last line
// ending and the blank line) and returns the bytes those events take; the tail after the last
// blank line is left for the next read.
// `search_from`: where to start looking for the first event's end, when `text` up to there
// is known to hold none (the tail of an earlier call, grown by a read): each byte of a long
// event is then searched once, not at every read.
template <typename F>
size_t ForEachSseEvent(std::string_view text, size_t search_from, F&& f) {
  const char* const base = text.data();
  const size_t n = text.size();
  size_t at = 0;  // the current event's start
  size_t from = search_from;
  while (from + 1 < n) {
    const void* nl = std::memchr(base + from, '\n', n - from - 1);
    if (nl == nullptr) break;
    const size_t i = static_cast<size_t>(static_cast<const char*>(nl) - base);
    size_t next;  // past the blank line, if one follows
    if (base[i + 1] == '\n') {
      next = i + 2;
    } else if (base[i + 1] == '\r' && i + 2 < n && base[i + 2] == '\n') {
      next = i + 3;
    } else {  // a line inside the event
      from = i + 1;
      continue;
    }
    const size_t end = i > at && base[i - 1] == '\r' ? i - 1 : i;
    f(std::string_view(base + at, end - at));
    at = from = next;
  }
  return at;
}

// What vLLM puts at the end of each content chunk's JSON once include_usage is asked for
// (FindUsageValue: it writes usage last), without and with the object's closing brace.
inline constexpr std::string_view kUsageNull = ",\"usage\":null";
inline constexpr std::string_view kUsageNullEnd = ",\"usage\":null}";

// Whether `event` has a data line other than `data: [DONE]`; *json is then its value (the first
// data line's: after id:, event: or comment lines, "data:" with or without its space).
bool SseData(std::string_view event, std::string_view* json);

// What the request path needs of whole server-sent events passed through unchanged.
struct SseBlock {
  size_t size = 0;          // bytes of the whole events at the start of the text
  int64_t data_events = 0;  // data events among them (SseData)
  bool have_usage = false;  // some event had a usage object (ReadUsage) ...
  Usage usage;              // ... and the last such event's
};
// The whole events at the start of `text` (ForEachSseEvent). Every data event is read for
// usage except one that ends with kUsageNullEnd, as vLLM's content chunks do once
// include_usage is asked for: those are counted by one comparison.
SseBlock ScanSseBlock(std::string_view text, size_t search_from = 0);

}  // namespace tokenpool::gateway
