// `tokenpool plan`: size a homogeneous fleet and a short/long pool pair for a trace, with the
// analytic planner of the core (tokenpool/planner.h). The CLI reads the file; the core parses
// and plans. Method: docs/planner.md.

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "commands.h"
#include "tokenpool/capacity.h"
#include "tokenpool/planner.h"
#include "tokenpool/profile.h"
#include "tokenpool/text_file.h"
#include "tokenpool/trace.h"

namespace tokenpool::cli {
namespace {

struct PlanFlags {
  std::string trace;
  std::string profile;
  std::optional<int64_t> boundary;
  std::optional<double> rate;
  std::optional<double> slo_ttft_p99_s;
  std::optional<int64_t> long_max_model_len;
  std::optional<double> price;
  bool sweep = false;
  bool json = false;
  bool list_profiles = false;
  std::string ttft_prefill = "p99";
};

// Prints "tokenpool plan: <message>" and ends the command with exit status 2 (CLI11 returns
// a RuntimeError's code from CLI11_PARSE without printing it again).
[[noreturn]] void Fail(const std::string& message) {
  std::fprintf(stderr, "tokenpool plan: %s\n", message.c_str());
  throw CLI::RuntimeError(2);
}

// Core errors name PlanOptions fields; the user typed flags.
std::string WithFlagNames(std::string message) {
  static constexpr std::pair<std::string_view, std::string_view> kFlags[] = {
      {"boundary_tokens", "--boundary"},
      {"long_max_model_len", "--long-max-model-len"},
      {"rate_rps", "--rate"},
      {"slo_ttft_p99_s", "--slo-ttft-p99"},
      {"usd_per_gpu_hour", "--price-per-gpu-hour"},
  };
  for (const auto& [field, flag] : kFlags) {
    if (message.rfind(field, 0) == 0) return std::string(flag) + message.substr(field.size());
  }
  return message;
}

std::string Fmt(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

// JSON numbers: finite only (an infinite wait is written as null).
std::string Num(double v) {
  if (!std::isfinite(v)) return "null";
  return Fmt("%.6g", v);
}

std::string Str(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) >= 0x20) {  // control characters dropped
      out += c;
    }
  }
  return out + "\"";
}

std::string Millions(double usd) { return Fmt("$%.2fM", usd / 1e6); }

std::string PoolJson(const PoolPlan& p) {
  std::ostringstream o;
  const ReplicaPerformance& r = p.replica;
  o << "{\"role\":" << Str(p.role) << ",\"max_model_len\":" << p.max_model_len
    << ",\"requests\":" << p.requests << ",\"share\":" << Num(p.share)
    << ",\"rate_rps\":" << Num(p.rate_rps)
    << ",\"mean_prompt_tokens\":" << Num(p.shape.mean_prompt_tokens)
    << ",\"mean_output_tokens\":" << Num(p.shape.mean_output_tokens)
    << ",\"service_cv2\":" << Num(p.service_cv2) << ",\"replica\":{\"slots\":" << r.slots
    << ",\"kv_tokens\":" << r.kv_tokens << ",\"active_seqs\":" << Num(r.active_seqs)
    << ",\"step_s\":" << Num(r.step_s) << ",\"service_s\":" << Num(r.service_s)
    << ",\"prefill_s\":" << Num(r.prefill_s) << ",\"requests_per_s\":" << Num(r.requests_per_s)
    << ",\"tokens_per_s\":" << Num(r.tokens_per_s) << "},\"instances\":" << p.instances
    << ",\"gpus\":" << p.gpus << ",\"utilization\":" << Num(p.utilization)
    << ",\"p99_wait_s\":" << Num(p.p99_wait_s) << ",\"prefill_p99_s\":" << Num(p.prefill_p99_s)
    << ",\"p99_ttft_s\":" << Num(p.p99_ttft_s) << ",\"slo_met\":" << (p.slo_met ? "true" : "false")
    << ",\"usd_per_year\":" << Num(p.usd_per_year) << "}";
  return o.str();
}

std::string PlanJson(const Plan& p) {
  std::ostringstream o;
  o << "{\"boundary_tokens\":" << p.boundary_tokens << ",\"alpha\":" << Num(p.alpha)
    << ",\"rho\":" << Num(p.rho) << ",\"rho_pools\":" << Num(p.rho_pools)
    << ",\"predicted_saving\":" << Num(p.predicted_saving)
    << ",\"homogeneous\":" << PoolJson(p.homogeneous) << ",\"short\":" << PoolJson(p.short_pool)
    << ",\"long\":" << PoolJson(p.long_pool) << ",\"homogeneous_gpus\":" << p.homogeneous.gpus
    << ",\"two_pool_gpus\":" << p.two_pool_gpus << ",\"actual_saving\":" << Num(p.actual_saving)
    << ",\"usd_per_year_homogeneous\":" << Num(p.usd_per_year_homogeneous)
    << ",\"usd_per_year_two_pool\":" << Num(p.usd_per_year_two_pool) << "}";
  return o.str();
}

void PrintHeader(const InstanceProfile& prof, const PlanFlags& f, const Trace& trace,
                 const Plan& any) {
  std::printf("profile  %s: %s on %lld x %s, $%.2f/GPU-hour\n", prof.name.c_str(),
              prof.model.c_str(), static_cast<long long>(prof.tensor_parallel), prof.gpu.c_str(),
              any.usd_per_gpu_hour);
  std::printf("trace    %s (%s): %lld requests, %lld over the long context left out\n",
              f.trace.c_str(), std::string(TraceFormatName(trace.format)).c_str(),
              static_cast<long long>(any.trace_requests),
              static_cast<long long>(any.unservable_requests));
  std::printf("target   %.1f req/s, P99 TTFT <= %.3f s (wait + %s prefill), long context %lld\n\n",
              any.rate_rps, any.slo_ttft_p99_s, f.ttft_prefill.c_str(),
              static_cast<long long>(any.homogeneous.max_model_len));
}

void PrintPlan(const Plan& p) {
  std::printf(
      "%-12s %6s %6s %8s %7s %7s %5s %7s %8s %8s %9s %5s %5s %5s %8s %8s %8s %8s %4s "
      "%9s\n",
      "pool", "ctx", "share", "req/s", "prompt", "output", "slots", "active", "step_ms", "svc_s",
      "req/s/inst", "inst", "GPUs", "util", "wait99_s", "pre_avg", "pre_p99", "ttft99_s", "SLO",
      "$/year");
  for (const PoolPlan* pp : {&p.homogeneous, &p.short_pool, &p.long_pool}) {
    const PoolPlan& x = *pp;
    const ReplicaPerformance& r = x.replica;
    std::printf(
        "%-12s %6lld %6.3f %8.1f %7.0f %7.1f %5lld %7.1f %8.1f %8.2f %9.3f %5lld %5lld %5.2f "
        "%8.3f %8.3f %8.3f %8.3f %4s %9s\n",
        x.role.c_str(), static_cast<long long>(x.max_model_len), x.share, x.rate_rps,
        x.shape.mean_prompt_tokens, x.shape.mean_output_tokens, static_cast<long long>(r.slots),
        r.active_seqs, r.step_s * 1e3, r.service_s, r.requests_per_s,
        static_cast<long long>(x.instances), static_cast<long long>(x.gpus), x.utilization,
        x.p99_wait_s, r.prefill_s, x.prefill_p99_s, x.p99_ttft_s,
        x.requests == 0 ? "-" : (x.slo_met ? "yes" : "NO"), Millions(x.usd_per_year).c_str());
  }
  std::printf("\nalpha %.4f   rho %.3f (pools %.3f)   predicted saving alpha(1-1/rho) %.1f%%\n",
              p.alpha, p.rho, p.rho_pools, p.predicted_saving * 100);
  std::printf(
      "GPUs     homogeneous %lld, two pools %lld (%lld short + %lld long): "
      "actual saving %.1f%%\n",
      static_cast<long long>(p.homogeneous.gpus), static_cast<long long>(p.two_pool_gpus),
      static_cast<long long>(p.short_pool.gpus), static_cast<long long>(p.long_pool.gpus),
      p.actual_saving * 100);
  std::printf("$/year   homogeneous %s, two pools %s\n",
              Millions(p.usd_per_year_homogeneous).c_str(),
              Millions(p.usd_per_year_two_pool).c_str());
}

void PrintSweep(const std::vector<Plan>& plans) {
  std::printf("%8s %7s %7s %8s %6s %6s %6s %6s %8s %10s %10s\n", "boundary", "alpha", "rho", "pred",
              "homog", "short", "long", "two", "actual", "$/yr homog", "$/yr two");
  for (const Plan& p : plans) {
    std::printf("%8lld %7.4f %7.3f %7.1f%% %6lld %6lld %6lld %6lld %7.1f%% %10s %10s%s\n",
                static_cast<long long>(p.boundary_tokens), p.alpha, p.rho, p.predicted_saving * 100,
                static_cast<long long>(p.homogeneous.gpus),
                static_cast<long long>(p.short_pool.gpus), static_cast<long long>(p.long_pool.gpus),
                static_cast<long long>(p.two_pool_gpus), p.actual_saving * 100,
                Millions(p.usd_per_year_homogeneous).c_str(),
                Millions(p.usd_per_year_two_pool).c_str(),
                (p.short_pool.slo_met && p.long_pool.slo_met && p.homogeneous.slo_met)
                    ? ""
                    : "  (SLO not met in a pool: prefill alone exceeds it)");
  }
}

// The built-in profiles with their capacity at the default workload shape, at their own
// context and at 8K.
void ListProfiles() {
  const WorkloadShape w;
  std::printf("workload: mean prompt %.0f, output %.0f tokens (Azure conv 2023 means)\n\n",
              w.mean_prompt_tokens, w.mean_output_tokens);
  std::printf("%-18s %3s %9s %10s %8s %9s %8s %8s %7s %6s %6s %9s %9s %9s %9s\n", "profile", "TP",
              "KV_B/tok", "KV_tokens", "W_ms", "H_us", "K_ns", "prefill", "chunk", "s@64K", "s@8K",
              "rps@64K", "rps@8K", "tok/s@64K", "tok/s@8K");
  for (const std::string& name : BuiltinProfileNames()) {
    const InstanceProfile p = FindProfile(name).value();
    const InstanceProfile p8 = WithMaxModelLen(p, 8192);
    const ReplicaPerformance r = AnalyzeReplica(p, w);
    const ReplicaPerformance r8 = AnalyzeReplica(p8, w);
    const IterationModel& m = p.iteration;
    std::printf(
        "%-18s %3lld %9lld %10lld %8.2f %9.2f %8.2f %8.0f %7lld %6lld %6lld %9.2f %9.2f "
        "%9.0f %9.0f\n",
        name.c_str(), static_cast<long long>(p.tensor_parallel),
        static_cast<long long>(KvBytesPerToken(p.shape)), static_cast<long long>(KvTokens(p)),
        m.weights_s * 1e3, m.per_seq_s * 1e6, m.per_context_token_s * 1e9, m.prefill_tokens_per_s,
        static_cast<long long>(m.prefill_chunk_tokens), static_cast<long long>(r.slots),
        static_cast<long long>(r8.slots), r.requests_per_s, r8.requests_per_s, r.tokens_per_s,
        r8.tokens_per_s);
  }
}

void Run(const PlanFlags& f) {
  if (f.list_profiles) {
    ListProfiles();
    return;
  }
  if (f.trace.empty()) Fail("--trace: required (a CSV trace file)");
  if (f.profile.empty()) Fail("--profile: required (see --list-profiles)");
  if (!f.rate) Fail("--rate: required (target requests/s)");
  if (!f.slo_ttft_p99_s) Fail("--slo-ttft-p99: required (seconds)");
  if (!f.sweep && !f.boundary) Fail("--boundary: required unless --sweep");
  if (!(*f.rate > 0) || !std::isfinite(*f.rate)) {
    Fail("--rate: must be > 0, got " + Fmt("%g", *f.rate));
  }
  if (!(*f.slo_ttft_p99_s > 0) || !std::isfinite(*f.slo_ttft_p99_s)) {
    Fail("--slo-ttft-p99: must be > 0 seconds, got " + Fmt("%g", *f.slo_ttft_p99_s));
  }
  if (f.boundary && *f.boundary <= 0) {
    Fail("--boundary: must be > 0 tokens, got " + std::to_string(*f.boundary));
  }
  if (f.long_max_model_len && *f.long_max_model_len <= 0) {
    Fail("--long-max-model-len: must be > 0, got " + std::to_string(*f.long_max_model_len));
  }
  if (f.price && (!(*f.price >= 0) || !std::isfinite(*f.price))) {
    Fail("--price-per-gpu-hour: must be a finite number >= 0, got " + Fmt("%g", *f.price));
  }
  Result<InstanceProfile> profile = FindProfile(f.profile);
  if (!profile.ok()) Fail("--profile: " + profile.status().message());

  Result<std::string> text = ReadTextFile(f.trace);
  if (!text.ok()) Fail("--trace: cannot open " + f.trace + ": " + text.status().message());
  Result<Trace> trace = ParseTrace(*text, f.trace);
  if (!trace.ok()) Fail(trace.status().message());

  PlanOptions o;
  o.boundary_tokens = f.boundary.value_or(8192);
  o.rate_rps = *f.rate;
  o.slo_ttft_p99_s = *f.slo_ttft_p99_s;
  o.long_max_model_len = f.long_max_model_len;
  o.usd_per_gpu_hour = f.price;
  if (f.ttft_prefill == "p99") {
    o.ttft_prefill = TtftPrefill::kP99;
  } else if (f.ttft_prefill == "mean") {
    o.ttft_prefill = TtftPrefill::kMean;
  } else {
    Fail("--ttft-prefill: must be p99 or mean, got \"" + f.ttft_prefill + "\"");
  }

  std::vector<Plan> plans;
  if (f.sweep) {
    // --boundary with --sweep: one more boundary to try (it was dropped in silence).
    std::vector<int64_t> boundaries = DefaultSweepBoundaries();
    if (f.boundary) {
      boundaries.push_back(*f.boundary);
      std::sort(boundaries.begin(), boundaries.end());
      boundaries.erase(std::unique(boundaries.begin(), boundaries.end()), boundaries.end());
    }
    Result<std::vector<Plan>> r = PlanSweep(trace->requests, *profile, o, boundaries);
    if (!r.ok()) Fail(WithFlagNames(r.status().message()));
    plans = std::move(r).value();
  } else {
    Result<Plan> r = PlanFleet(trace->requests, *profile, o);
    if (!r.ok()) Fail(WithFlagNames(r.status().message()));
    plans.push_back(std::move(r).value());
  }

  if (f.json) {
    std::ostringstream out;
    out << "{\"profile\":" << Str(profile->name)
        << ",\"tensor_parallel\":" << profile->tensor_parallel
        << ",\"usd_per_gpu_hour\":" << Num(plans[0].usd_per_gpu_hour)
        << ",\"trace\":{\"file\":" << Str(f.trace)
        << ",\"format\":" << Str(TraceFormatName(trace->format))
        << ",\"requests\":" << plans[0].trace_requests
        << ",\"unservable_requests\":" << plans[0].unservable_requests
        << "},\"rate_rps\":" << Num(o.rate_rps) << ",\"slo_ttft_p99_s\":" << Num(o.slo_ttft_p99_s)
        << ",\"long_max_model_len\":" << plans[0].homogeneous.max_model_len
        << ",\"ttft_prefill\":" << Str(TtftPrefillName(o.ttft_prefill));
    if (f.sweep) {
      out << ",\"sweep\":[";
      for (size_t i = 0; i < plans.size(); ++i) out << (i ? "," : "") << PlanJson(plans[i]);
      out << "]}";
    } else {
      out << ",\"plan\":" << PlanJson(plans[0]) << "}";
    }
    std::printf("%s\n", out.str().c_str());
    return;
  }
  PrintHeader(*profile, f, *trace, plans[0]);
  if (f.sweep) {
    PrintSweep(plans);
  } else {
    PrintPlan(plans[0]);
  }
}

}  // namespace

void RegisterPlan(CLI::App& app) {
  auto flags = std::make_shared<PlanFlags>();
  auto* cmd = app.add_subcommand(
      "plan", "Size a homogeneous fleet and a short/long pool pair for a request trace");
  cmd->add_option("--trace", flags->trace,
                  "CSV trace: Azure (TIMESTAMP,ContextTokens,GeneratedTokens), plain "
                  "(arrival_s,input_tokens,output_tokens) or lengths only");
  cmd->add_option("--profile", flags->profile, "built-in instance profile (--list-profiles)");
  cmd->add_option("--boundary", flags->boundary,
                  "short/long boundary: a request is short if input + output <= N tokens");
  cmd->add_option("--rate", flags->rate, "target arrival rate, requests/s");
  cmd->add_option("--slo-ttft-p99", flags->slo_ttft_p99_s, "P99 time-to-first-token SLO, s");
  cmd->add_option("--long-max-model-len", flags->long_max_model_len,
                  "context of the long pool and the homogeneous fleet (default: the "
                  "profile's, 65536 for the built-ins)");
  cmd->add_option("--price-per-gpu-hour", flags->price, "$ per GPU-hour (default: profile's)");
  cmd->add_option("--ttft-prefill", flags->ttft_prefill,
                  "prefill time in the P99 TTFT: p99 (of the pool's prompts; default) or mean "
                  "(fleet-sim's)");
  cmd->add_flag("--sweep", flags->sweep,
                "try boundaries 2K, 3K, 4K, 6K, 8K, 12K, 16K, 24K, 32K (and --boundary, if given)");
  cmd->add_flag("--json", flags->json, "one JSON object instead of the text table");
  cmd->add_flag("--list-profiles", flags->list_profiles,
                "print the built-in profiles and their capacity, then exit");
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace tokenpool::cli
