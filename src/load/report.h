#pragma once
// What a load run measured: one RequestRecord per planned request, the run's own counters, and
// the summary per tenant and class (percentiles over the requests that completed), written as
// a table, CSV rows and a JSON summary. Format: docs/load.md.
//
//   LoadSummary s = Summarize(plan, result);
//   std::fputs(FormatTable(s).c_str(), stdout);
//   WriteCsv(plan, result, "rows.csv");
//
// Thread-safety: pure functions over plain values.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "load/plan.h"
#include "tokenpool/status.h"

namespace tokenpool::load {

enum class Outcome : uint8_t {
  kOk,         // 2xx and the whole stream arrived
  kHttpError,  // a non-2xx status (the gateway's refusals: 429, 503...)
  kTransport,  // connect failed, connection reset or closed mid-response, bad HTTP
  kTimeout,    // no complete response within --timeout or by the end of --drain
  kDropped,    // never sent: every connection busy at --max-connections when it was due
  kGenerator,  // the generator itself failed on it (an exception, e.g. out of memory building
               // the body); `error` has the reason
  kBadStream,  // 2xx, but no server-sent event came (a JSON answer, another framing): nothing
               // to time
};
// "ok", "http_error", "transport", "timeout", "dropped", "generator", "bad_stream"
std::string_view OutcomeName(Outcome o);

struct RequestRecord {
  Outcome outcome = Outcome::kDropped;
  int32_t status = 0;  // HTTP status; 0 when none arrived
  int32_t cls = -1;    // index into LoadResult::classes (x-tokenpool-class); -1: none
  bool late = false;   // written more than --late-ms after it was due
  bool sent = false;
  double send_lag_ms = 0;  // write start - due time (a new connection's setup included)
  double connect_ms = -1;  // time to open a new connection for it; -1: reused an idle one
  // Latencies from the write start; negative: not measured.
  double queue_ms = -1;            // x-tokenpool-queue-ms
  double ttft_ms = -1;             // first content token
  double tpot_ms = -1;             // (last token - first token) / (completion tokens - 1)
  double e2e_ms = -1;              // end of the response
  int64_t prompt_tokens = -1;      // usage
  int64_t completion_tokens = -1;  // usage
  std::string error;  // transport error, the start of an error body, or the generator's own
};

struct LoadResult {
  std::vector<RequestRecord> records;  // parallel to LoadPlan::requests
  std::vector<std::string> classes;    // values of x-tokenpool-class seen
  std::string model;
  double wall_s = 0;         // first due time to the last response (or the drain's end)
  double send_window_s = 0;  // first to last write
  double cpu_user_s = 0;     // the generator's own CPU over the run
  double cpu_system_s = 0;
  // Runnable but waiting for a CPU over the run (/proc/self/schedstat); -1: unknown. On a
  // shared machine this is time the generator could not send on schedule.
  double cpu_wait_s = -1;
  int64_t max_open_connections = 0;
  int64_t connections_opened = 0;
  double send_lag_p50_ms = 0, send_lag_p99_ms = 0, send_lag_max_ms = 0;
  // The signal (SIGINT, SIGTERM) that stopped the run early, else 0; `records` then holds the
  // requests dispatched before it.
  int interrupted_by = 0;
  int64_t connection_cap = 0;      // the most connections open at once
  bool cap_by_file_limit = false;  // set by the open-file limit, below --max-connections
};

struct Percentiles {
  int64_t count = 0;
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, max = 0;
};

struct GroupSummary {
  std::string tenant;  // "all" for the total
  std::string cls;     // "-" when the response named none; "all" for a tenant's total
  int64_t requests = 0, ok = 0, http_errors = 0, transport = 0, timeouts = 0, dropped = 0;
  int64_t generator = 0;   // Outcome::kGenerator
  int64_t bad_stream = 0;  // Outcome::kBadStream
  int64_t late = 0;
  std::map<int32_t, int64_t> statuses;  // HTTP status -> responses (0: none arrived)
  int64_t prompt_tokens = 0, completion_tokens = 0;
  Percentiles queue_ms, ttft_ms, tpot_ms, e2e_ms;
};

struct LoadSummary {
  std::string source;
  std::string model;
  double duration_s = 0, target_rate_rps = 0;
  int64_t planned = 0, sent = 0, completed = 0, late = 0, dropped = 0;
  double achieved_rate_rps = 0;  // (sent - 1) / send window
  double completion_rate_rps = 0;
  double wall_s = 0, cpu_user_s = 0, cpu_system_s = 0, cpu_share = 0, cpu_wait_s = -1;
  double send_lag_p50_ms = 0, send_lag_p99_ms = 0, send_lag_max_ms = 0;
  int64_t max_open_connections = 0, connections_opened = 0;
  int interrupted_by = 0;            // LoadResult::interrupted_by
  int64_t connection_cap = 0;
  bool cap_by_file_limit = false;
  std::vector<GroupSummary> groups;  // per (tenant, class), then per tenant, then "all"
};

LoadSummary Summarize(const LoadPlan& plan, const LoadResult& result);
std::string FormatTable(const LoadSummary& s);
std::string SummaryJson(const LoadSummary& s);
Status WriteCsv(const LoadPlan& plan, const LoadResult& result, const std::string& path);
Status WriteJson(const LoadSummary& s, const std::string& path);

// The p-quantile (0..1) by nearest rank, as the simulator's reports; 0 for none.
double Quantile(std::vector<double>& v, double p);

}  // namespace tokenpool::load
