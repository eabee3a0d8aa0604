#include "gateway/usage.h"

#include <boost/json.hpp>
#include <charconv>
#include <cstring>

#include "parse/usage_object.h"

namespace tokenpool::gateway {

size_t FindUsageValue(std::string_view json) {
  constexpr std::string_view kKey = "\"usage\"";
  constexpr size_t kG = 4;
  static_assert(kKey[kG] == 'g');
  // Searched from the end: vLLM and OpenAI write usage as the last member, so a stream chunk's
  // `"usage":null` ends it and an answer's usage object is in its last few hundred bytes. The
  // search jumps from one 'g' to the previous one (memrchr, vectorized): the first 'g' before
  // the end is usage's own when it is last. (A forward memmem per chunk was 13 K instructions
  // per streamed request, a byte-by-byte backward scan ~1 K per answer, callgrind.)
  for (size_t end = json.size(); end > 0;) {
    const void* g = ::memrchr(json.data(), 'g', end);
    if (g == nullptr) return std::string_view::npos;
    const size_t gi = static_cast<size_t>(static_cast<const char*>(g) - json.data());
    end = gi;
    if (gi < kG) return std::string_view::npos;
    const size_t at = gi - kG;
    if (json.compare(at, kKey.size(), kKey) != 0) continue;
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
    return i < json.size() ? i : std::string_view::npos;
  }
  return std::string_view::npos;
}

std::string_view FindUsageObject(std::string_view json) {
  const size_t i = FindUsageValue(json);
  if (i == std::string_view::npos || json[i] != '{') return {};  // absent, null or not an object
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

int64_t PromptTokensOfContextError(std::string_view body) {
  if (body.find("maximum context length") == std::string_view::npos) return -1;
  // The number before the first marker ("N in the messages" / "N in the prompt"), or after
  // "your request has ".
  const auto number_before = [&](size_t at) -> int64_t {
    size_t begin = at;
    while (begin > 0 && body[begin - 1] >= '0' && body[begin - 1] <= '9') --begin;
    int64_t v = -1;
    const auto [p, ec] = std::from_chars(body.data() + begin, body.data() + at, v);
    return ec == std::errc() && p == body.data() + at ? v : -1;
  };
  for (const std::string_view marker :
       {std::string_view(" in the messages"), std::string_view(" in the prompt")}) {
    if (const size_t at = body.find(marker); at != std::string_view::npos) return number_before(at);
  }
  constexpr std::string_view kHas = "your request has ";
  if (const size_t at = body.find(kHas); at != std::string_view::npos) {
    int64_t v = -1;
    const char* begin = body.data() + at + kHas.size();
    const auto [p, ec] = std::from_chars(begin, body.data() + body.size(), v);
    if (ec == std::errc() &&
        std::string_view(p, body.data() + body.size() - p).starts_with(" input tokens")) {
      return v;
    }
  }
  return -1;
}

bool ReadUsage(std::string_view json, Usage* u) {
  // The object from its '{' on: the reader stops at its end (what follows is the rest of the
  // answer), so the brace matching of FindUsageObject is not needed here.
  const size_t i = FindUsageValue(json);
  if (i == std::string_view::npos || json[i] != '{') return false;
  int64_t prompt = 0, completion = 0;
  if (!parse::ReadUsageCounts(json.substr(i), &prompt, &completion)) return false;
  u->prompt = Tokens(prompt);
  u->completion = Tokens(completion);
  return true;
}

namespace {

bool IsJsonSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string AppendIncludeUsage(std::string_view body) {
  size_t end = body.size();
  while (end > 0 && IsJsonSpace(body[end - 1])) --end;
  if (end == 0 || body[end - 1] != '}') return std::string(body);  // not an object
  size_t before = end - 1;
  while (before > 0 && IsJsonSpace(body[before - 1])) --before;
  const bool empty = before > 0 && body[before - 1] == '{';
  constexpr std::string_view kMember = "\"stream_options\":{\"include_usage\":true}}";
  std::string out;
  out.reserve(end + 1 + kMember.size());
  out.append(body.substr(0, end - 1));
  if (!empty) out.push_back(',');
  out.append(kMember);
  return out;
}

}  // namespace

std::string WithIncludeUsage(std::string_view body, bool has_stream_options) {
  if (!has_stream_options) return AppendIncludeUsage(body);
  boost::json::parse_options options;
  options.max_depth = 1024;  // Boost's default is 32
  boost::system::error_code ec;
  boost::json::value v = boost::json::parse(body, ec, {}, options);
  if (ec || !v.is_object()) return AppendIncludeUsage(body);
  boost::json::value& so = v.as_object()["stream_options"];
  if (!so.is_object()) so = boost::json::object();
  so.as_object()["include_usage"] = true;
  // vLLM honours continuous_usage_stats only with include_usage: the client, who did not ask
  // for usage, would get a usage object in every chunk.
  if (so.as_object().contains("continuous_usage_stats")) {
    so.as_object()["continuous_usage_stats"] = false;
  }
  return boost::json::serialize(v);
}

bool SseData(std::string_view event, std::string_view* json) {
  // The data line: the first line that starts with "data:" (after id:, event: or comment
  // lines), its value after one optional space (the SSE rule), to the end of its line.
  size_t at = 0;
  while (!event.substr(at).starts_with("data:")) {
    const size_t nl = event.find('\n', at);
    if (nl == std::string_view::npos) return false;
    at = nl + 1;
  }
  std::string_view value = event.substr(at + 5);
  if (value.starts_with(' ')) value.remove_prefix(1);
  if (const size_t nl = value.find('\n'); nl != std::string_view::npos) {
    value = value.substr(0, nl);
    if (value.ends_with('\r')) value.remove_suffix(1);
  }
  if (value.starts_with("[DONE]")) return false;
  *json = value;
  return true;
}

SseBlock ScanSseBlock(std::string_view text, size_t search_from) {
  SseBlock b;
  b.size = ForEachSseEvent(text, search_from, [&b](std::string_view ev) {
    std::string_view json;
    if (!SseData(ev, &json)) return;
    ++b.data_events;
    if (!ev.ends_with(kUsageNullEnd) && ReadUsage(json, &b.usage)) b.have_usage = true;
  });
  return b;
}

}  // namespace tokenpool::gateway
