// `tokenpool sim SCENARIO.yaml --out DIR [--size] [--seed N] [--slo-ttft-p99 S] [--slo-tpot-p99
// S]`: discrete-event simulator and writes summary.json, report.md and timeseries.csv into DIR.
// With --size, the sizing search finds the fewest replicas per pool that meet the scenario's
// SLO and the files describe the run at that size plus every probe. Same scenario and seed:
// byte-identical files. A progress line goes to stderr when it is a terminal and the run lasts.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "commands.h"
#include "scenario/scenario.h"
#include "sim/report.h"
#include "sim/simulator.h"
#include "sim/sizing.h"

namespace tokenpool::cli {
namespace {

struct SimArgs {
  std::string scenario;
  std::string out;
  bool size = false;
  std::optional<uint64_t> seed;
  std::optional<double> slo_ttft_p99_s;
  std::optional<double> slo_tpot_p99_s;
};

bool WriteFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
  return static_cast<bool>(f);
}

int RunSim(const SimArgs& args) {
  Result<scenario::Scenario> sc = scenario::LoadScenarioFile(args.scenario);
  if (!sc.ok()) {
    std::fprintf(stderr, "tokenpool sim: %s\n", sc.status().message().c_str());
    return 2;
  }
  if ((args.slo_ttft_p99_s || args.slo_tpot_p99_s) && !args.size) {
    // The sizing SLO is read by the search only: without it the option would do nothing.
    std::fprintf(stderr, "tokenpool sim: --slo-ttft-p99/--slo-tpot-p99: only with --size\n");
    return 2;
  }
  if (args.seed) sc->config.seed = *args.seed;
  if (args.slo_ttft_p99_s) sc->config.slo.ttft_p99_s = *args.slo_ttft_p99_s;
  if (args.slo_tpot_p99_s) sc->config.slo.tpot_p99_s = *args.slo_tpot_p99_s;
  std::error_code ec;
  std::filesystem::create_directories(args.out, ec);
  if (ec) {
    std::fprintf(stderr, "tokenpool sim: --out %s: %s\n", args.out.c_str(), ec.message().c_str());
    return 2;
  }

  // Progress: only on a terminal, and only once the run has lasted 2 s of wall time.
  const bool tty = isatty(STDERR_FILENO) == 1;
  const auto start = std::chrono::steady_clock::now();
  bool printed = false;
  sim::RunOptions options;
  if (tty) {
    options.progress = [&](double now_s, double duration_s) {
      const double wall =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (wall < 2) return;
      std::fprintf(stderr, "\r%s: virtual %.0f / %.0f s, wall %.0f s   ", sc->config.name.c_str(),
                   now_s, duration_s, wall);
      printed = true;
    };
  }

  std::string json, md;
  sim::SimResult result;
  std::optional<sim::SizingResult> sizing;
  if (args.size) {
    Result<sim::SizingResult> s = sim::SizeFleet(sc->config, sc->sizing, options);
    if (!s.ok()) {
      if (printed) std::fprintf(stderr, "\n");
      std::fprintf(stderr, "tokenpool sim: %s: %s\n", args.scenario.c_str(),
                   s.status().message().c_str());
      return 1;
    }
    sizing = std::move(s.value());
    result = sizing->final_run;
  } else {
    Result<sim::SimResult> r = sim::RunSimulation(sc->config, options);
    if (!r.ok()) {
      if (printed) std::fprintf(stderr, "\n");
      std::fprintf(stderr, "tokenpool sim: %s: %s\n", args.scenario.c_str(),
                   r.status().message().c_str());
      return 1;
    }
    result = std::move(r.value());
  }
  if (printed) std::fprintf(stderr, "\n");
  const sim::SizingResult* sz = sizing ? &*sizing : nullptr;
  const std::filesystem::path dir(args.out);
  if (!WriteFile(dir / "summary.json", sim::SummaryJson(result, sz)) ||
      !WriteFile(dir / "report.md", sim::ReportMarkdown(result, sz)) ||
      !WriteFile(dir / "timeseries.csv", sim::TimeSeriesCsv(result))) {
    std::fprintf(stderr, "tokenpool sim: cannot write into %s\n", args.out.c_str());
    return 1;
  }
  std::printf("%s: %lld requests", result.name.c_str(), static_cast<long long>(result.requests));
  for (const auto& [k, v] : result.ends)
    std::printf(", %s %lld", k.c_str(), static_cast<long long>(v));
  if (sz != nullptr) std::printf("; sized to %lld GPUs", static_cast<long long>(sz->gpus));
  std::printf("; wrote %s/{summary.json,report.md,timeseries.csv}\n", args.out.c_str());
  return 0;
}

}  // namespace

void RegisterSim(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "sim", "Run a scenario in the discrete-event fleet simulator (virtual time)");
  static SimArgs args;
  cmd->add_option("scenario", args.scenario, "scenario YAML file")->required();
  cmd->add_option("--out", args.out, "directory for summary.json, report.md, timeseries.csv")
      ->required();
  cmd->add_flag("--size", args.size,
                "find the fewest replicas per pool that meet the scenario's SLO");
  cmd->add_option("--seed", args.seed, "override the scenario's seed");
  cmd->add_option("--slo-ttft-p99", args.slo_ttft_p99_s, "override the sizing SLO's P99 TTFT, s")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--slo-tpot-p99", args.slo_tpot_p99_s, "override the sizing SLO's P99 TPOT, s")
      ->check(CLI::PositiveNumber);
  cmd->callback([] {
    const int rc = RunSim(args);
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace tokenpool::cli
