// summary.json, report.md and timeseries.csv text (see report.h).

#include "sim/report.h"

#include <cinttypes>
#include <cstdio>
#include <string>
#include <vector>

namespace tokenpool::sim {
namespace {

std::string F(double v, const char* fmt = "%.6g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}
std::string I(int64_t v) { return std::to_string(v); }
std::string Q(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    o += c;
  }
  return o + "\"";
}

std::string LatencyJson(const LatencyStats& l) {
  return "{\"count\": " + I(l.count) + ", \"mean_s\": " + F(l.mean_s) +
         ", \"p50_s\": " + F(l.p50_s) + ", \"p90_s\": " + F(l.p90_s) +
         ", \"p99_s\": " + F(l.p99_s) + "}";
}

std::string MapJson(const std::map<std::string, int64_t>& m) {
  std::string o = "{";
  bool first = true;
  for (const auto& [k, v] : m) {
    o += (first ? "" : ", ") + Q(k) + ": " + I(v);
    first = false;
  }
  return o + "}";
}

std::string GroupJson(const GroupStats& g, const std::string& indent) {
  std::string o = "{\n";
  auto kv = [&](const std::string& k, const std::string& v, bool last = false) {
    o += indent + "  " + Q(k) + ": " + v + (last ? "\n" : ",\n");
  };
  kv("name", Q(g.name));
  kv("arrivals", I(g.arrivals));
  kv("admitted", I(g.admitted));
  kv("queued", I(g.queued));
  kv("dispatched", I(g.dispatched));
  kv("completed", I(g.completed));
  kv("expired", I(g.expired));
  kv("failed", I(g.failed));
  kv("cut_off", I(g.cut_off));
  kv("refused_total", I(g.refused_total));
  kv("refused", MapJson(g.refused));
  kv("preemptions", I(g.preemptions));
  kv("preemptions_per_1k", F(g.preemptions_per_1k));
  kv("prompt_tokens", I(g.prompt_tokens));
  kv("output_tokens", I(g.output_tokens));
  kv("slo_met", I(g.slo_met));
  kv("success_rate", F(g.success_rate));
  kv("goodput_rps", F(g.goodput_rps));
  kv("ttft_p99_all_s", F(g.ttft_p99_all_s));
  kv("ttft", LatencyJson(g.ttft));
  kv("tpot", LatencyJson(g.tpot));
  kv("e2e", LatencyJson(g.e2e), true);
  return o + indent + "}";
}

std::string Hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

std::string Ms(double s) { return s < 0 ? "inf" : F(s * 1000, "%.0f"); }

}  // namespace

std::string SummaryJson(const SimResult& r, const SizingResult* sizing) {
  std::string o = "{\n";
  o += "  \"name\": " + Q(r.name) + ",\n";
  o += "  \"seed\": " + std::to_string(r.seed) + ",\n";
  o += "  \"duration_s\": " + F(r.duration_s) + ",\n";
  o += "  \"warmup_s\": " + F(r.warmup_s) + ",\n";
  o += "  \"end_s\": " + F(r.end_s) + ",\n";
  o += "  \"requests\": " + I(r.requests) + ",\n";
  o += "  \"ends\": " + MapJson(r.ends) + ",\n";
  o += "  \"events\": " + I(r.events) + ",\n";
  o += "  \"event_log_hash\": " + Q(Hex(r.event_log_hash)) + ",\n";
  o += "  \"open_reservations_at_end\": " + I(r.open_reservations_at_end) + ",\n";
  o += "  \"gpus\": " + I(r.gpus) + ",\n";
  o += "  \"gpu_hours\": " + F(r.gpu_hours) + ",\n";
  o += "  \"estimator\": {\"estimates\": " + I(r.estimator.estimates) +
       ", \"mean_abs_rel_error\": " + F(r.estimator.mean_abs_rel_error) +
       ", \"misrouted_long\": " + I(r.estimator.misrouted_long) +
       ", \"misrouted_short\": " + I(r.estimator.misrouted_short) + "},\n";
  o += "  \"overall\": " + GroupJson(r.overall, "  ") + ",\n";
  auto list = [&](const char* key, const std::vector<GroupStats>& v) {
    o += std::string("  \"") + key + "\": [";
    for (size_t i = 0; i < v.size(); ++i) o += (i ? ", " : "") + GroupJson(v[i], "    ");
    o += "],\n";
  };
  list("tenants", r.tenants);
  list("classes", r.classes);
  o += "  \"pools\": [";
  for (size_t i = 0; i < r.pools.size(); ++i) {
    const PoolStats& p = r.pools[i];
    o += std::string(i ? ", " : "") + "{\"replicas_initial\": " + I(p.replicas_initial) +
         ", \"replicas_final\": " + I(p.replicas_final) +
         ", \"replicas_peak\": " + I(p.replicas_peak) +
         ", \"gpus_per_replica\": " + I(p.gpus_per_replica) + ", \"gpu_hours\": " + F(p.gpu_hours) +
         ", \"engine_iterations\": " + I(p.engine_iterations) +
         ", \"routed\": " + MapJson(p.routed) + ", \"stats\": " + GroupJson(p.stats, "    ") + "}";
  }
  o += "]";
  if (sizing != nullptr) {
    o += ",\n  \"sizing\": {\"gpus\": " + I(sizing->gpus) + ", \"replicas\": [";
    for (size_t i = 0; i < sizing->replicas.size(); ++i) {
      o += (i ? ", " : "") + I(sizing->replicas[i]);
    }
    o += "], \"probes\": [";
    for (size_t i = 0; i < sizing->probes.size(); ++i) {
      const SizingProbe& p = sizing->probes[i];
      o += std::string(i ? ",\n    " : "\n    ") + "{\"replicas\": [";
      for (size_t k = 0; k < p.replicas.size(); ++k) {
        o += (k ? ", " : "") + I(p.replicas[k]);
      }
      o += "], \"met\": [";
      for (size_t k = 0; k < p.pool_met.size(); ++k) {
        o += std::string(k ? ", " : "") + (p.pool_met[k] ? "true" : "false");
      }
      o += "], \"ttft_p99_all_s\": [";
      for (size_t k = 0; k < p.ttft_p99_all_s.size(); ++k) {
        o += (k ? ", " : "") + F(p.ttft_p99_all_s[k]);
      }
      o += "], \"tpot_p99_s\": [";
      for (size_t k = 0; k < p.tpot_p99_s.size(); ++k) o += (k ? ", " : "") + F(p.tpot_p99_s[k]);
      o += "]}";
    }
    o += "]}";
  }
  return o + "\n}\n";
}

std::string ReportMarkdown(const SimResult& r, const SizingResult* sizing) {
  std::string o = "# Simulation: " + r.name + "\n\n";
  o += "Seed " + std::to_string(r.seed) + "; arrivals for " + F(r.duration_s) +
       " s of virtual time (statistics over arrivals after " + F(r.warmup_s) +
       " s); last event at " + F(r.end_s, "%.1f") + " s; " + I(r.requests) + " requests, " +
       I(r.events) + " events, event-log hash `" + Hex(r.event_log_hash) + "`.\n\n";
  o += "Request ends:";
  for (const auto& [k, v] : r.ends) o += " " + k + " " + I(v) + ";";
  o += "\n\n";
  if (sizing != nullptr) {
    o += "## Sizing\n\nFewest replicas meeting the SLO per pool:";
    for (size_t i = 0; i < sizing->replicas.size(); ++i) {
      o += " " + r.pool_names[i] + " " + I(sizing->replicas[i]) + ";";
    }
    o += " **" + I(sizing->gpus) + " GPUs**, found in " +
         I(static_cast<int64_t>(sizing->probes.size())) +
         " runs.\n\n| probe | replicas | met | P99 TTFT (all) ms | P99 TPOT ms |\n"
         "|---|---|---|---|---|\n";
    for (size_t i = 0; i < sizing->probes.size(); ++i) {
      const SizingProbe& p = sizing->probes[i];
      std::string reps, met, ttft, tpot;
      for (size_t k = 0; k < p.replicas.size(); ++k) {
        const char* sep = k ? " / " : "";
        reps += sep + I(p.replicas[k]);
        met += std::string(sep) + (p.pool_met[k] ? "yes" : "no");
        ttft += sep + Ms(p.ttft_p99_all_s[k]);
        tpot += sep + F(p.tpot_p99_s[k] * 1000, "%.1f");
      }
      o += "| " + I(static_cast<int64_t>(i + 1)) + " | " + reps + " | " + met + " | " + ttft +
           " | " + tpot + " |\n";
    }
    o += "\n";
  }
  o += "## Pools\n\n| pool | replicas (initial/final/peak) | GPU-hours | routed | arrivals | "
       "completed | refused | expired | failed | TTFT P50/P99 ms | TPOT P50/P99 ms | "
       "P99 TTFT all ms | preempt/1k |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (size_t i = 0; i < r.pools.size(); ++i) {
    const PoolStats& p = r.pools[i];
    const GroupStats& g = p.stats;
    std::string routed;
    for (const auto& [k, v] : p.routed) routed += k + " " + I(v) + " ";
    o += "| " + r.pool_names[i] + " | " + I(p.replicas_initial) + "/" + I(p.replicas_final) + "/" +
         I(p.replicas_peak) + " | " + F(p.gpu_hours, "%.2f") + " | " + routed + "| " +
         I(g.arrivals) + " | " + I(g.completed) + " | " + I(g.refused_total) + " | " +
         I(g.expired) + " | " + I(g.failed) + " | " + Ms(g.ttft.p50_s) + "/" + Ms(g.ttft.p99_s) +
         " | " + F(g.tpot.p50_s * 1000, "%.1f") + "/" + F(g.tpot.p99_s * 1000, "%.1f") + " | " +
         Ms(g.ttft_p99_all_s) + " | " + F(g.preemptions_per_1k, "%.2f") + " |\n";
  }
  auto table = [&](const char* title, const std::vector<GroupStats>& v) {
    o += std::string("\n## ") + title +
         "\n\n| name | arrivals | admitted | queued | completed | refused (by reason) | "
         "expired | TTFT P50/P90/P99 ms | TPOT P50/P99 ms | E2E P50/P99 s | goodput req/s | "
         "success |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
    for (const GroupStats& g : v) {
      std::string refused = I(g.refused_total);
      if (!g.refused.empty()) {
        refused += " (";
        bool first = true;
        for (const auto& [k, n] : g.refused) {
          refused += (first ? "" : ", ") + k + " " + I(n);
          first = false;
        }
        refused += ")";
      }
      o += "| " + g.name + " | " + I(g.arrivals) + " | " + I(g.admitted) + " | " + I(g.queued) +
           " | " + I(g.completed) + " | " + refused + " | " + I(g.expired) + " | " +
           Ms(g.ttft.p50_s) + "/" + Ms(g.ttft.p90_s) + "/" + Ms(g.ttft.p99_s) + " | " +
           F(g.tpot.p50_s * 1000, "%.1f") + "/" + F(g.tpot.p99_s * 1000, "%.1f") + " | " +
           F(g.e2e.p50_s, "%.2f") + "/" + F(g.e2e.p99_s, "%.2f") + " | " +
           F(g.goodput_rps, "%.3f") + " | " + F(100 * g.success_rate, "%.2f") + "% |\n";
    }
  };
  table("Tenants", r.tenants);
  table("Classes", r.classes);
  table("Overall", {r.overall});
  o += "\nEstimator: " + I(r.estimator.estimates) + " estimates, mean |error| " +
       F(100 * r.estimator.mean_abs_rel_error, "%.2f") + "% of prompt tokens; misrouted to a " +
       "longer pool " + I(r.estimator.misrouted_long) + ", to a pool too short " +
       I(r.estimator.misrouted_short) + ".\n";
  return o;
}

std::string TimeSeriesCsv(const SimResult& r) {
  std::string o = "t_s";
  for (const std::string& t : r.tenant_names) o += "," + t + "_tokens";
  for (const std::string& t : r.tenant_names) o += "," + t + "_share";
  for (const std::string& t : r.tenant_names) o += "," + t + "_debt";
  for (const std::string& p : r.pool_names) {
    o += "," + p + "_replicas," + p + "_utilization," + p + "_queued";
  }
  o += "\n";
  for (const TimeSample& s : r.samples) {
    o += F(s.t_s, "%.3f");
    int64_t total = 0;
    for (int64_t v : s.tenant_tokens) total += v;
    for (int64_t v : s.tenant_tokens) o += "," + I(v);
    for (int64_t v : s.tenant_tokens) {
      o += "," + F(total > 0 ? static_cast<double>(v) / static_cast<double>(total) : 0, "%.4f");
    }
    for (double d : s.tenant_debt) o += "," + F(d, "%.1f");
    for (size_t p = 0; p < s.pool_replicas.size(); ++p) {
      o += "," + I(s.pool_replicas[p]) + "," + F(s.pool_utilization[p], "%.4f") + "," +
           I(s.pool_queued[p]);
    }
    o += "\n";
  }
  return o;
}

}  // namespace tokenpool::sim
