#include "gateway/usage.h"

#include <boost/json.hpp>
#include <cstring>

namespace tokenpool::gateway {

std::string_view FindUsageObject(std::string_view json) {
  constexpr std::string_view kKey = "\"usage\"";
  if (json.size() < kKey.size()) return {};
  // Searched from the end: vLLM and OpenAI write usage as the last member, so a stream chunk's
  // `"usage":null` is found in its last 15 bytes and an answer's usage object in its last few
  // hundred. (A forward memmem per chunk was 13 K instructions per streamed request, callgrind.)
  for (size_t at = json.size() - kKey.size() + 1; at-- > 0;) {
    if (json[at] != '"' || json.compare(at, kKey.size(), kKey) != 0) continue;
    if (at > 0 && json[at - 1] == '\\') continue;  // inside a string
    size_t i = at + kKey.size();
    const auto skip_ws = [&] {
      while (i < json.size() &&
             (json[i] == ' ' || json[i] == '\n' || json[i] == '\r' || json[i] == '\t')) {
        ++i;
      }
    };
    skip_ws();
    if (i >= json.size() || json[i] != ':') continue;
    ++i;
    skip_ws();
    if (i >= json.size() || json[i] != '{') return {};  // null or not an object
    // The matching brace: depth counting outside strings.
    int depth = 0;
    bool in_string = false;
    for (size_t j = i; j < json.size(); ++j) {
      const char c = json[j];
      if (in_string) {
        if (c == '\\') {
          ++j;
        } else if (c == '"') {
          in_string = false;
        }
      } else if (c == '"') {
        in_string = true;
      } else if (c == '{') {
        ++depth;
      } else if (c == '}' && --depth == 0) {
        return json.substr(i, j + 1 - i);
      }
    }
    return {};
  }
  return {};
}

bool ReadUsage(std::string_view json, Usage* u) {
  const std::string_view object = FindUsageObject(json);
  if (object.empty()) return false;
  // Parsed in a stack buffer: a usage object is ~100 bytes (prompt_tokens_details and the like
  // included) and the default storage took two mallocs and frees per answer; a larger one
  // spills to the heap.
  unsigned char storage[1024];
  boost::json::monotonic_resource mr(storage, sizeof storage);
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(object, ec, &mr);
  if (ec || !v.is_object()) return false;
  const auto& o = v.as_object();
  const boost::json::value* p = o.if_contains("prompt_tokens");
  const boost::json::value* c = o.if_contains("completion_tokens");
  if (p == nullptr || c == nullptr || !p->is_int64() || !c->is_int64()) return false;
  u->prompt = Tokens(p->as_int64());
  u->completion = Tokens(c->as_int64());
  return true;
}

}  // namespace tokenpool::gateway
