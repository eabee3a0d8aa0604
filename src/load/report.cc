#include "load/report.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cerrno>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <utility>

namespace tokenpool::load {
namespace {

namespace json = boost::json;

Percentiles Stats(std::vector<double>& v) {
  Percentiles p;
  p.count = static_cast<int64_t>(v.size());
  if (v.empty()) return p;
  double sum = 0;
  for (double x : v) sum += x;
  p.mean = sum / static_cast<double>(v.size());
  p.p50 = Quantile(v, 0.5);
  p.p90 = Quantile(v, 0.9);
  p.p99 = Quantile(v, 0.99);
  p.max = *std::max_element(v.begin(), v.end());
  return p;
}

struct Acc {
  GroupSummary g;
  std::vector<double> queue, ttft, tpot, e2e;
  void Add(const RequestRecord& r) {
    ++g.requests;
    switch (r.outcome) {
      case Outcome::kOk:
        ++g.ok;
        break;
      case Outcome::kHttpError:
        ++g.http_errors;
        break;
      case Outcome::kTransport:
        ++g.transport;
        break;
      case Outcome::kTimeout:
        ++g.timeouts;
        break;
      case Outcome::kDropped:
        ++g.dropped;
        break;
      case Outcome::kGenerator:
        ++g.generator;
        break;
      case Outcome::kBadStream:
        ++g.bad_stream;
        break;
    }
    if (r.late) ++g.late;
    if (r.sent) ++g.statuses[r.status];
    if (r.outcome != Outcome::kOk) return;
    if (r.prompt_tokens > 0) g.prompt_tokens += r.prompt_tokens;
    if (r.completion_tokens > 0) g.completion_tokens += r.completion_tokens;
    if (r.queue_ms >= 0) queue.push_back(r.queue_ms);
    if (r.ttft_ms >= 0) ttft.push_back(r.ttft_ms);
    if (r.tpot_ms >= 0) tpot.push_back(r.tpot_ms);
    if (r.e2e_ms >= 0) e2e.push_back(r.e2e_ms);
  }
  GroupSummary Finish() {
    g.queue_ms = Stats(queue);
    g.ttft_ms = Stats(ttft);
    g.tpot_ms = Stats(tpot);
    g.e2e_ms = Stats(e2e);
    return g;
  }
};

// Of no sample, the figures are null (not 0: "TTFT 0 ms" for a group none of whose requests
// got a token).
json::object PercentilesJson(const Percentiles& p) {
  const auto v = [&p](double x) { return p.count > 0 ? json::value(x) : json::value(nullptr); };
  return {{"count", p.count}, {"mean", v(p.mean)}, {"p50", v(p.p50)},
          {"p90", v(p.p90)},  {"p99", v(p.p99)},   {"max", v(p.max)}};
}

// A table cell: `v` with `decimals`, right-aligned in `width`; "-" when there is no sample.
std::string Cell(const Percentiles& p, double v, int width, int decimals) {
  char buf[64];
  if (p.count == 0) {
    std::snprintf(buf, sizeof buf, "%*s", width, "-");
  } else {
    std::snprintf(buf, sizeof buf, "%*.*f", width, decimals, v);
  }
  return buf;
}

std::string CsvField(std::string_view s) {
  if (s.find_first_of(",\"\n\r") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out.push_back('"');
    out.push_back(c == '\n' || c == '\r' ? ' ' : c);
  }
  out.push_back('"');
  return out;
}

std::string Ms(double v) {
  if (v < 0) return "";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", v);
  return buf;
}

}  // namespace

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kOk:
      return "ok";
    case Outcome::kHttpError:
      return "http_error";
    case Outcome::kTransport:
      return "transport";
    case Outcome::kTimeout:
      return "timeout";
    case Outcome::kDropped:
      return "dropped";
    case Outcome::kGenerator:
      return "generator";
    case Outcome::kBadStream:
      return "bad_stream";
  }
  return "?";
}

double Quantile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  size_t rank = static_cast<size_t>(std::ceil(p * static_cast<double>(v.size())));
  rank = std::clamp<size_t>(rank, 1, v.size()) - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(rank), v.end());
  return v[rank];
}

LoadSummary Summarize(const LoadPlan& plan, const LoadResult& result) {
  LoadSummary s;
  s.source = plan.source;
  s.model = result.model;
  s.duration_s = plan.duration_s;
  s.target_rate_rps = plan.nominal_rate_rps;
  s.planned = static_cast<int64_t>(plan.requests.size());
  s.wall_s = result.wall_s;
  s.cpu_user_s = result.cpu_user_s;
  s.cpu_system_s = result.cpu_system_s;
  s.cpu_wait_s = result.cpu_wait_s;
  s.cpu_share = result.wall_s > 0 ? (result.cpu_user_s + result.cpu_system_s) / result.wall_s : 0;
  s.send_lag_p50_ms = result.send_lag_p50_ms;
  s.send_lag_p99_ms = result.send_lag_p99_ms;
  s.send_lag_max_ms = result.send_lag_max_ms;
  s.max_open_connections = result.max_open_connections;
  s.connections_opened = result.connections_opened;
  s.interrupted_by = result.interrupted_by;
  s.connection_cap = result.connection_cap;
  s.cap_by_file_limit = result.cap_by_file_limit;
  // (tenant, class) with class -1 first; then each tenant's total; then all.
  std::map<std::pair<uint32_t, int32_t>, Acc> groups;
  std::vector<Acc> tenants(plan.tenants.size());
  Acc all;
  for (size_t i = 0; i < result.records.size(); ++i) {
    const RequestRecord& r = result.records[i];
    const uint32_t t = plan.requests[i].tenant;
    groups[{t, r.cls}].Add(r);
    tenants[t].Add(r);
    all.Add(r);
    if (r.sent) ++s.sent;
    if (r.outcome == Outcome::kOk) ++s.completed;
    if (r.late) ++s.late;
    if (r.outcome == Outcome::kDropped) ++s.dropped;
  }
  // n writes span n - 1 intervals (3 sends at 0, 0.5, 1 s are 2 req/s, not 3).
  s.achieved_rate_rps =
      result.send_window_s > 0 ? static_cast<double>(s.sent - 1) / result.send_window_s : 0;
  s.completion_rate_rps = result.wall_s > 0 ? static_cast<double>(s.completed) / result.wall_s : 0;
  for (auto& [key, acc] : groups) {
    acc.g.tenant = plan.tenants[key.first].name;
    acc.g.cls = key.second < 0 ? "-" : result.classes[static_cast<size_t>(key.second)];
    s.groups.push_back(acc.Finish());
  }
  for (size_t t = 0; t < tenants.size(); ++t) {
    if (tenants[t].g.requests == 0) continue;
    tenants[t].g.tenant = plan.tenants[t].name;
    tenants[t].g.cls = "all";
    s.groups.push_back(tenants[t].Finish());
  }
  all.g.tenant = "all";
  all.g.cls = "all";
  s.groups.push_back(all.Finish());
  return s;
}

std::string FormatTable(const LoadSummary& s) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line,
                "%s, model %s: %lld planned over %.1f s (%.1f req/s); sent %lld at %.1f req/s, "
                "%lld late, %lld dropped; send lag p50 %.3f ms p99 %.3f ms max %.3f ms\n",
                s.source.c_str(), s.model.c_str(), static_cast<long long>(s.planned), s.duration_s,
                s.target_rate_rps, static_cast<long long>(s.sent), s.achieved_rate_rps,
                static_cast<long long>(s.late), static_cast<long long>(s.dropped),
                s.send_lag_p50_ms, s.send_lag_p99_ms, s.send_lag_max_ms);
  out += line;
  if (s.interrupted_by != 0) {
    std::snprintf(line, sizeof line,
                  "interrupted by %s: arrivals stopped, requests in flight cut (as timeouts); "
                  "the figures are of the %lld requests due before it\n",
                  strsignal(s.interrupted_by), static_cast<long long>(s.groups.back().requests));
    out += line;
  }
  std::snprintf(line, sizeof line,
                "generator CPU %.2f s user + %.2f s system over %.2f s wall (%.0f%% of one "
                "core; %.2f s waiting for a CPU); %lld connections opened, at most %lld open\n\n",
                s.cpu_user_s, s.cpu_system_s, s.wall_s, 100 * s.cpu_share, s.cpu_wait_s,
                static_cast<long long>(s.connections_opened),
                static_cast<long long>(s.max_open_connections));
  out += line;
  if (s.cap_by_file_limit) {
    // Before the blank line ending the run's lines.
    out.pop_back();
    std::snprintf(line, sizeof line,
                  "connections capped at %lld by the open-file limit (ulimit -n), below "
                  "--max-connections\n\n",
                  static_cast<long long>(s.connection_cap));
    out += line;
  }
  std::snprintf(line, sizeof line,
                "%-14s %-11s %8s %8s %6s %6s %6s | %9s %9s | %9s %9s | %8s %8s | %9s %9s | "
                "%11s %11s\n",
                "tenant", "class", "requests", "ok", "http", "transp", "drop", "ttft_p50",
                "ttft_p99", "tpot_p50", "tpot_p99", "queue_50", "queue_99", "e2e_p50", "e2e_p99",
                "prompt_tok", "compl_tok");
  out += line;
  for (const GroupSummary& g : s.groups) {
    std::snprintf(
        line, sizeof line,
        "%-14s %-11s %8lld %8lld %6lld %6lld %6lld | %s %s | %s %s | %s %s | %s %s | %11lld "
        "%11lld\n",
        g.tenant.c_str(), g.cls.c_str(), static_cast<long long>(g.requests),
        static_cast<long long>(g.ok), static_cast<long long>(g.http_errors),
        static_cast<long long>(g.transport + g.timeouts + g.generator + g.bad_stream),
        static_cast<long long>(g.dropped), Cell(g.ttft_ms, g.ttft_ms.p50, 9, 1).c_str(),
        Cell(g.ttft_ms, g.ttft_ms.p99, 9, 1).c_str(), Cell(g.tpot_ms, g.tpot_ms.p50, 9, 2).c_str(),
        Cell(g.tpot_ms, g.tpot_ms.p99, 9, 2).c_str(),
        Cell(g.queue_ms, g.queue_ms.p50, 8, 1).c_str(),
        Cell(g.queue_ms, g.queue_ms.p99, 8, 1).c_str(), Cell(g.e2e_ms, g.e2e_ms.p50, 9, 1).c_str(),
        Cell(g.e2e_ms, g.e2e_ms.p99, 9, 1).c_str(), static_cast<long long>(g.prompt_tokens),
        static_cast<long long>(g.completion_tokens));
    out += line;
  }
  out +=
      "(latencies in ms from each request's write; transp = transport errors + timeouts + "
      "bad streams + generator errors)\n";
  return out;
}

std::string SummaryJson(const LoadSummary& s) {
  json::array groups;
  for (const GroupSummary& g : s.groups) {
    json::object statuses;
    for (const auto& [code, n] : g.statuses) statuses[std::to_string(code)] = n;
    groups.push_back(json::object{
        {"tenant", g.tenant},
        {"class", g.cls},
        {"requests", g.requests},
        {"ok", g.ok},
        {"http_errors", g.http_errors},
        {"transport_errors", g.transport},
        {"timeouts", g.timeouts},
        {"dropped", g.dropped},
        {"generator_errors", g.generator},
        {"bad_streams", g.bad_stream},
        {"late", g.late},
        {"statuses", std::move(statuses)},
        {"prompt_tokens", g.prompt_tokens},
        {"completion_tokens", g.completion_tokens},
        {"queue_ms", PercentilesJson(g.queue_ms)},
        {"ttft_ms", PercentilesJson(g.ttft_ms)},
        {"tpot_ms", PercentilesJson(g.tpot_ms)},
        {"e2e_ms", PercentilesJson(g.e2e_ms)},
    });
  }
  json::object o{
      {"source", s.source},
      {"model", s.model},
      {"duration_s", s.duration_s},
      {"target_rate_rps", s.target_rate_rps},
      {"planned", s.planned},
      {"sent", s.sent},
      {"completed", s.completed},
      {"late", s.late},
      {"dropped", s.dropped},
      {"achieved_rate_rps", s.achieved_rate_rps},
      {"completion_rate_rps", s.completion_rate_rps},
      {"send_lag_ms",
       json::object{
           {"p50", s.send_lag_p50_ms}, {"p99", s.send_lag_p99_ms}, {"max", s.send_lag_max_ms}}},
      {"wall_s", s.wall_s},
      {"cpu_user_s", s.cpu_user_s},
      {"cpu_system_s", s.cpu_system_s},
      {"cpu_share_of_one_core", s.cpu_share},
      {"cpu_wait_s", s.cpu_wait_s},
      {"connections_opened", s.connections_opened},
      {"max_open_connections", s.max_open_connections},
      {"connection_cap", s.connection_cap},
      {"connection_cap_by_file_limit", s.cap_by_file_limit},
      {"interrupted_by", s.interrupted_by == SIGINT    ? json::value("SIGINT")
                         : s.interrupted_by == SIGTERM ? json::value("SIGTERM")
                         : s.interrupted_by != 0       ? json::value(s.interrupted_by)
                                                       : json::value(nullptr)},
      {"groups", std::move(groups)},
  };
  return json::serialize(o) + "\n";
}

// Closes a file written through stdio and says whether everything reached it: a full disk
// shows only at the flush or the close (stdio buffers), so both are checked, not just ferror.
Status CloseWritten(std::FILE* f, const char* flag, const std::string& path) {
  const bool buffered_ok = std::fflush(f) == 0 && !std::ferror(f);
  const int flush_errno = errno;
  const bool closed_ok = std::fclose(f) == 0;
  if (buffered_ok && closed_ok) return Status::Ok();
  return {StatusCode::kUnavailable, std::string(flag) + ": cannot write \"" + path +
                                        "\": " + std::strerror(buffered_ok ? errno : flush_errno)};
}

Status WriteCsv(const LoadPlan& plan, const LoadResult& result, const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!f) {
    return InvalidArgument("--csv: cannot write \"" + path + "\": " + std::strerror(errno));
  }
  std::fputs(
      "id,tenant,class,category,due_s,outcome,status,late,send_lag_ms,connect_ms,queue_ms,ttft_ms,"
      "tpot_ms,e2e_ms,planned_prompt_tokens,planned_output_tokens,prompt_tokens,completion_tokens,"
      "error\n",
      f.get());
  for (size_t i = 0; i < result.records.size(); ++i) {
    const RequestRecord& r = result.records[i];
    const PlannedRequest& p = plan.requests[i];
    std::string row = std::to_string(i) + "," + CsvField(plan.tenants[p.tenant].name) + "," +
                      (r.cls < 0 ? "" : CsvField(result.classes[static_cast<size_t>(r.cls)])) +
                      "," + CsvField(plan.categories[p.category].name) + ",";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", p.at_s);
    row += buf;
    row += "," + std::string(OutcomeName(r.outcome)) + "," + std::to_string(r.status) + "," +
           (r.late ? "1" : "0") + "," + (r.sent ? Ms(r.send_lag_ms) : "") + "," + Ms(r.connect_ms) +
           "," + Ms(r.queue_ms) + "," + Ms(r.ttft_ms) + "," + Ms(r.tpot_ms) + "," + Ms(r.e2e_ms) +
           "," + std::to_string(p.prompt_tokens) + "," + std::to_string(p.output_tokens) + "," +
           (r.prompt_tokens >= 0 ? std::to_string(r.prompt_tokens) : "") + "," +
           (r.completion_tokens >= 0 ? std::to_string(r.completion_tokens) : "") + "," +
           CsvField(r.error) + "\n";
    std::fputs(row.c_str(), f.get());
  }
  return CloseWritten(f.release(), "--csv", path);
}

Status WriteJson(const LoadSummary& s, const std::string& path) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "w"), &std::fclose);
  if (!f) {
    return InvalidArgument("--json: cannot write \"" + path + "\": " + std::strerror(errno));
  }
  const std::string text = SummaryJson(s);
  std::fwrite(text.data(), 1, text.size(), f.get());
  return CloseWritten(f.release(), "--json", path);
}

}  // namespace tokenpool::load
