#include "load/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

#include "tokenpool/units.h"

namespace tokenpool::load {
namespace {

// A finite decimal number and nothing else (strtod also took "inf", hex and leading spaces:
// a share of inf took no traffic and gave the others all of it).
bool ParseDouble(std::string_view s, double* out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(*out);
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

std::string_view ContentTypeName(ContentType t) {
  switch (t) {
    case ContentType::kProse:
      return "prose";
    case ContentType::kCode:
      return "code";
    case ContentType::kJson:
      return "json";
    case ContentType::kMultilingual:
      return "multilingual";
  }
  return "prose";
}

ContentType ContentTypeForCategory(std::string_view name) {
  if (name.starts_with("code")) return ContentType::kCode;
  if (name.starts_with("json")) return ContentType::kJson;
  if (name.starts_with("multi") || name == "cjk" || name == "i18n" || name == "translation") {
    return ContentType::kMultilingual;
  }
  return ContentType::kProse;
}

std::vector<ContentShare> DefaultMix() {
  return {{"prose", ContentType::kProse, 0.5},
          {"code", ContentType::kCode, 0.25},
          {"json", ContentType::kJson, 0.15},
          {"multilingual", ContentType::kMultilingual, 0.1}};
}

bool IsHeaderValue(std::string_view v) {
  for (char ch : v) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
  }
  return true;
}

Status LoadConfig::Validate() const {
  if (trace_path.empty() == scenario_path.empty()) {
    return InvalidArgument("--trace or --scenario: exactly one is required");
  }
  if (!process.empty() && process != "trace" && process != "poisson") {
    return InvalidArgument("--process: must be trace or poisson, got \"" + process + "\"");
  }
  if (!process.empty() && !scenario_path.empty()) {
    return InvalidArgument("--process: only with --trace (a scenario names its own processes)");
  }
  if (!(rate_rps >= 0 && std::isfinite(rate_rps))) {
    return InvalidArgument("--rate: must be a finite number >= 0");
  }
  // Durations at most kMaxDurationSeconds (1e9), finite: a deadline past Time's range overflows.
  if (!IsDurationSeconds(duration_s, true)) {
    return InvalidArgument("--duration: must be in [0, 1e9] seconds");
  }
  // The plan is built before the run (kMaxPlannedRequests in plan.cc): refused at once.
  if (rate_rps * duration_s > 50'000'000) {
    return InvalidArgument("--rate x --duration: plans more than 50,000,000 requests");
  }
  if (max_connections < 1) return InvalidArgument("--max-connections: must be >= 1");
  if (!(late_ms >= 0 && late_ms <= 1e9)) {  // milliseconds, bounded as the durations are
    return InvalidArgument("--late-ms: must be in [0, 1e9]");
  }
  if (!IsDurationSeconds(timeout_s, false)) {
    return InvalidArgument("--timeout: must be in (0, 1e9] seconds");
  }
  if (!IsDurationSeconds(drain_s, true)) {
    return InvalidArgument("--drain: must be in [0, 1e9] seconds");
  }
  if (!IsDurationSeconds(connect_timeout_s, false)) {
    return InvalidArgument("--connect-timeout: must be in (0, 1e9] seconds");
  }
  if (max_prompt_tokens < 0) return InvalidArgument("--max-prompt-tokens: must be >= 0");
  if (max_output_tokens < 0) return InvalidArgument("--max-output-tokens: must be >= 0");
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].name.empty()) return InvalidArgument("--key: a tenant name is empty");
    if (!IsHeaderValue(keys[i].name) || !IsHeaderValue(keys[i].key)) {
      return InvalidArgument(
          "--key: NAME=KEY must not contain control characters (CR, LF...): the key is sent "
          "as a header value");
    }
    for (size_t j = 0; j < i; ++j) {
      if (keys[j].name == keys[i].name) {
        return InvalidArgument("--key: tenant \"" + keys[i].name + "\" given twice");
      }
    }
  }
  double key_sum = 0;
  for (const TenantKey& k : keys) {  // a share < 0: none given
    if (!std::isfinite(k.share)) {
      return InvalidArgument("--key: " + k.name + ": share must be a finite number >= 0");
    }
    key_sum += std::max(0.0, k.share);
  }
  if (!std::isfinite(key_sum)) return InvalidArgument("--key: the shares' sum is not finite");
  for (const auto& [name, value] : headers) {
    // The generator writes these itself: a second copy breaks the framing or the credentials.
    for (const char* own : {"host", "content-length", "transfer-encoding", "content-type",
                            "connection", "x-tokenpool-category"}) {
      if (EqualsIgnoreCase(name, own)) {
        return InvalidArgument("--header: " + name + " is the generator's own header");
      }
    }
    if (!keys.empty() && EqualsIgnoreCase(name, "authorization")) {
      return InvalidArgument("--header: Authorization with --key: the key is sent as it");
    }
  }
  double mix_sum = 0;
  for (const ContentShare& c : mix) {
    if (!(c.share >= 0 && std::isfinite(c.share))) {
      return InvalidArgument("--mix: " + c.name + ": share must be a finite number >= 0");
    }
    mix_sum += c.share;
  }
  if (!std::isfinite(mix_sum)) return InvalidArgument("--mix: the shares' sum is not finite");
  if (!mix.empty() && !(mix_sum > 0)) return InvalidArgument("--mix: the shares sum to 0");
  std::string host;
  uint16_t port = 0;
  return ParseTarget(target, &host, &port);
}

Result<TenantKey> ParseKeyFlag(std::string_view flag) {
  const size_t eq = flag.find('=');
  if (eq == std::string_view::npos || eq == 0) {
    return InvalidArgument("--key: expected NAME=KEY[:SHARE], got \"" + std::string(flag) + "\"");
  }
  TenantKey k;
  k.name = std::string(flag.substr(0, eq));
  std::string_view rest = flag.substr(eq + 1);
  const size_t colon = rest.rfind(':');
  if (colon != std::string_view::npos) {
    double share = 0;
    if (!ParseDouble(rest.substr(colon + 1), &share) || !(share >= 0)) {
      return InvalidArgument("--key: " + k.name + ": share must be a number >= 0, got \"" +
                             std::string(rest.substr(colon + 1)) + "\"");
    }
    k.share = share;
    rest = rest.substr(0, colon);
  }
  k.key = std::string(rest);
  if (!IsHeaderValue(k.name) || !IsHeaderValue(k.key)) {
    return InvalidArgument(
        "--key: NAME=KEY must not contain control characters (CR, LF...): the key is sent as "
        "a header value");
  }
  return k;
}

Result<std::vector<ContentShare>> ParseMixFlag(std::string_view flag) {
  std::vector<ContentShare> out;
  while (!flag.empty()) {
    const size_t comma = flag.find(',');
    const std::string_view item = flag.substr(0, comma);
    flag = comma == std::string_view::npos ? std::string_view() : flag.substr(comma + 1);
    const size_t colon = item.find(':');
    const std::string_view name = item.substr(0, colon);
    bool known = false;
    ContentShare c;
    for (int t = 0; t < kNumContentTypes; ++t) {
      if (ContentTypeName(static_cast<ContentType>(t)) == name) {
        known = true;
        c.type = static_cast<ContentType>(t);
      }
    }
    if (!known) {
      return InvalidArgument("--mix: unknown content type \"" + std::string(name) +
                             "\" (known: prose, code, json, multilingual)");
    }
    c.name = std::string(name);
    if (colon != std::string_view::npos &&
        (!ParseDouble(item.substr(colon + 1), &c.share) || !(c.share >= 0))) {
      return InvalidArgument("--mix: " + c.name + ": share must be a number >= 0, got \"" +
                             std::string(item.substr(colon + 1)) + "\"");
    }
    out.push_back(std::move(c));
  }
  if (out.empty()) return InvalidArgument("--mix: empty");
  return out;
}

Status ParseTarget(std::string_view target, std::string* host, uint16_t* port) {
  std::string_view t = target;
  if (t.starts_with("http://")) t.remove_prefix(7);
  if (t.starts_with("https://")) {
    return InvalidArgument("--target: https is not supported (plain HTTP/1.1 only)");
  }
  while (t.ends_with('/')) t.remove_suffix(1);
  const size_t colon = t.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return InvalidArgument("--target: expected host:port or http://host:port, got \"" +
                           std::string(target) + "\"");
  }
  unsigned p = 0;
  const std::string_view ps = t.substr(colon + 1);
  auto [ptr, ec] = std::from_chars(ps.data(), ps.data() + ps.size(), p);
  if (ec != std::errc() || ptr != ps.data() + ps.size() || p == 0 || p > 65535) {
    return InvalidArgument("--target: bad port \"" + std::string(ps) + "\"");
  }
  *host = std::string(t.substr(0, colon));
  *port = static_cast<uint16_t>(p);
  return Status::Ok();
}

Result<std::pair<std::string, std::string>> ParseHeaderFlag(std::string_view flag) {
  const size_t colon = flag.find(':');
  if (colon == std::string_view::npos || colon == 0) {
    return InvalidArgument("--header: expected \"Name: value\", got \"" + std::string(flag) + "\"");
  }
  const std::string_view name = flag.substr(0, colon);
  for (char c : name) {
    const bool token = std::isalnum(static_cast<unsigned char>(c)) != 0 ||
                       std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
    if (!token) {
      return InvalidArgument("--header: \"" + std::string(name) +
                             "\" is not a valid header name (letters, digits, !#$%&'*+-.^_`|~)");
    }
  }
  std::string_view value = flag.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  if (!IsHeaderValue(value)) {
    return InvalidArgument("--header: the value of " + std::string(name) +
                           " must not contain control characters (CR, LF...)");
  }
  return std::make_pair(std::string(name), std::string(value));
}

}  // namespace tokenpool::load
