#pragma once
// LoadConfig: the settings of one `tokenpool load` run, as plain values (the CLI fills it from
// flags; tests build it in code), and the small parsers for its flag syntaxes.
//
//   LoadConfig c;
//   c.target = "127.0.0.1:8080";
//   c.trace_path = "conv.csv";
//   c.rate_rps = 100;
//   c.duration_s = 30;
//   c.keys.push_back(*ParseKeyFlag("acme=sk-acme:0.7"));
//   if (Status s = c.Validate(); !s.ok()) ...   // "--rate: must be > 0"
//
// Thread-safety: plain values; the parsers are pure functions.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tokenpool/status.h"

namespace tokenpool::load {

// One tenant's API key. share < 0: not given (a scenario's tenant share applies, else 1).
struct TenantKey {
  std::string name;
  std::string key;  // sent as "Authorization: Bearer <key>"; empty: no header
  double share = -1;
};

// The synthetic prompt text kinds (load/text.h).
enum class ContentType : uint8_t { kProse, kCode, kJson, kMultilingual };
inline constexpr int kNumContentTypes = 4;
std::string_view ContentTypeName(ContentType t);
// The kind for a category name: "code*" -> code, "json*" -> JSON, "multi*", "cjk", "i18n",
// "translation" -> multilingual, anything else -> prose.
ContentType ContentTypeForCategory(std::string_view name);

struct ContentShare {
  std::string name;  // category name, sent as x-tokenpool-category
  ContentType type = ContentType::kProse;
  double share = 1;
};

struct LoadConfig {
  std::string target = "127.0.0.1:8080";  // host:port, or http://host:port[/]
  // Exactly one source of arrivals.
  std::string trace_path;     // CSV trace (tokenpool/trace.h formats)
  std::string scenario_path;  // the simulator's scenario YAML (docs/experiments.md)
  // For --trace: "trace" replays the recorded arrival times (scaled to rate_rps when > 0);
  // "poisson" draws exponential gaps at rate_rps and samples lengths from the rows. Empty:
  // "trace" when the trace has arrival times, else "poisson".
  std::string process;
  double rate_rps = 0;    // target mean rate; 0: the trace's or scenario's own
  double duration_s = 0;  // arrivals stop here; 0: one trace pass / the scenario's duration_s
  std::vector<TenantKey> keys;
  std::vector<ContentShare> mix;  // empty: DefaultMix() (or the scenario's categories)
  uint64_t seed = 1;
  std::string model;  // empty: the first id of GET /v1/models
  // Sent with every request (e.g. a peer gateway's routing headers), as ParseHeaderFlag made
  // them: {name, value}.
  std::vector<std::pair<std::string, std::string>> headers;
  // HTTP/1.1 has one request in flight per connection, so this caps the requests in flight.
  // A request due when every connection is busy and the cap is reached is dropped (not sent
  // late), so the generator never turns into a closed loop.
  int32_t max_connections = 8192;
  double late_ms = 10;     // a request written more than this after its due time counts as late
  double timeout_s = 300;  // one request, from its send to the end of its response
  double drain_s = 60;     // after the last arrival, in-flight requests get this long
  double connect_timeout_s = 5;   // the start-up check and every new connection
  int64_t max_prompt_tokens = 0;  // caps on the trace's lengths; 0 = none
  int64_t max_output_tokens = 0;
  std::string csv_path;   // per-request rows
  std::string json_path;  // the summary
  bool progress = true;   // a live line on stderr when it is a terminal

  // The first broken rule, naming the flag: "--rate: must be >= 0".
  Status Validate() const;
};

// prose 0.5, code 0.25, JSON 0.15, multilingual 0.1.
std::vector<ContentShare> DefaultMix();

// Whether `v` may be sent as an HTTP header value (RFC 9110 field-value): no control
// characters (CR, LF, NUL, DEL...) other than horizontal tab.
bool IsHeaderValue(std::string_view v);

// "NAME=KEY[:SHARE]" (KEY may be empty: "NAME=:0.5" sends no Authorization header). NAME and
// KEY go into a header (Authorization), so control characters are refused.
Result<TenantKey> ParseKeyFlag(std::string_view flag);
// "prose:0.5,code:0.3,json:0.1,multilingual:0.1" (the names of ContentTypeName).
Result<std::vector<ContentShare>> ParseMixFlag(std::string_view flag);
// "Name: value" (a header sent with every request): the name must be a non-empty HTTP token,
// the value IsHeaderValue.
Result<std::pair<std::string, std::string>> ParseHeaderFlag(std::string_view flag);
// "host:port", "http://host:port", "http://host:port/".
Status ParseTarget(std::string_view target, std::string* host, uint16_t* port);

}  // namespace tokenpool::load
