// `tokenpool load --target HOST:PORT (--trace FILE | --scenario FILE) [--rate R] [--duration S]
// [--key NAME=KEY[:SHARE]]... [--csv FILE] [--json FILE]`: the open-loop load generator
// (src/load/client.h). Prints the summary table per tenant and class to stdout; a live line
// on stderr when it is a terminal. Exit status: 0 when at least one request completed, 2 on
// bad input or a target that cannot be reached, 3 when no request completed. Behaviour and
// output formats: docs/load.md.
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "load/client.h"
#include "load/config.h"
#include "load/plan.h"
#include "load/report.h"

namespace tokenpool::cli {
namespace {

struct LoadArgs {
  load::LoadConfig config;
  std::vector<std::string> keys;
  std::vector<std::string> headers;
  std::string mix;
  bool no_progress = false;
  bool quiet = false;
};

// Whether `path` can be written, checked before the run (a run of minutes lost to a typo in a
// directory name); a file the check made is removed again.
bool Writable(const std::string& path, const char* flag) {
  std::error_code ec;
  const bool existed = std::filesystem::exists(path, ec);
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) {
    std::fprintf(stderr, "tokenpool load: %s: cannot write \"%s\": %s\n", flag, path.c_str(),
                 std::strerror(errno));
    return false;
  }
  std::fclose(f);
  if (!existed) std::filesystem::remove(path, ec);
  return true;
}

int RunLoadCommand(LoadArgs& args) {
  for (const std::string& k : args.keys) {
    Result<load::TenantKey> key = load::ParseKeyFlag(k);
    if (!key.ok()) {
      std::fprintf(stderr, "tokenpool load: %s\n", key.status().message().c_str());
      return 2;
    }
    args.config.keys.push_back(*key);
  }
  for (const std::string& h : args.headers) {
    Result<std::pair<std::string, std::string>> header = load::ParseHeaderFlag(h);
    if (!header.ok()) {
      std::fprintf(stderr, "tokenpool load: %s\n", header.status().message().c_str());
      return 2;
    }
    args.config.headers.push_back(*header);
  }
  if (!args.mix.empty()) {
    Result<std::vector<load::ContentShare>> mix = load::ParseMixFlag(args.mix);
    if (!mix.ok()) {
      std::fprintf(stderr, "tokenpool load: %s\n", mix.status().message().c_str());
      return 2;
    }
    args.config.mix = *mix;
  }
  Result<load::LoadPlan> plan = load::BuildPlan(args.config);
  if (!plan.ok()) {
    std::fprintf(stderr, "tokenpool load: %s\n", plan.status().message().c_str());
    return 2;
  }
  if (plan->requests.empty()) {
    std::fprintf(stderr, "tokenpool load: the plan has no requests (check --rate/--duration)\n");
    return 2;
  }
  if ((!args.config.csv_path.empty() && !Writable(args.config.csv_path, "--csv")) ||
      (!args.config.json_path.empty() && !Writable(args.config.json_path, "--json"))) {
    return 2;
  }
  const bool tty = isatty(STDERR_FILENO) == 1 && !args.no_progress && !args.quiet;
  Result<load::LoadResult> result = load::RunLoad(args.config, *plan, tty ? stderr : nullptr);
  if (!result.ok()) {
    std::fprintf(stderr, "tokenpool load: %s\n", result.status().message().c_str());
    return 2;
  }
  const load::LoadSummary summary = load::Summarize(*plan, *result);
  if (!args.quiet) std::fputs(load::FormatTable(summary).c_str(), stdout);
  bool written = true;  // a CSV that fails does not keep the JSON from being written
  if (!args.config.csv_path.empty()) {
    if (Status s = load::WriteCsv(*plan, *result, args.config.csv_path); !s.ok()) {
      std::fprintf(stderr, "tokenpool load: %s\n", s.message().c_str());
      written = false;
    }
  }
  if (!args.config.json_path.empty()) {
    if (Status s = load::WriteJson(summary, args.config.json_path); !s.ok()) {
      std::fprintf(stderr, "tokenpool load: %s\n", s.message().c_str());
      written = false;
    }
  }
  if (!written) return 2;
  if (result->interrupted_by != 0) return 128 + result->interrupted_by;  // as a shell reports it
  if (summary.completed == 0) {
    std::fprintf(stderr, "tokenpool load: no request completed (%lld sent)\n",
                 static_cast<long long>(summary.sent));
    return 3;
  }
  return 0;
}

}  // namespace

void RegisterLoad(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "load", "Open-loop load generator: replay a trace or a scenario against a gateway or mock");
  auto args = std::make_shared<LoadArgs>();
  load::LoadConfig& c = args->config;
  cmd->add_option("--target", c.target, "Server as host:port or http://host:port")
      ->capture_default_str();
  cmd->add_option("--trace", c.trace_path, "CSV trace: arrival times and lengths");
  cmd->add_option("--scenario", c.scenario_path, "The simulator's scenario YAML");
  cmd->add_option("--process", c.process,
                  "With --trace: trace (replay its times) or poisson (default: trace when the "
                  "trace has times)");
  cmd->add_option("--rate", c.rate_rps, "Target mean rate, req/s (0: the source's own)");
  cmd->add_option("--duration", c.duration_s,
                  "Arrival window, seconds (0: one trace pass or the scenario's duration_s)");
  cmd->add_option("--header", args->headers,
                  "Header \"Name: value\" sent with every request (repeatable; e.g. a peer "
                  "gateway's routing headers)");
  cmd->add_option("--key", args->keys,
                  "Tenant API key NAME=KEY[:SHARE] (repeatable; with a scenario, NAME is one of "
                  "its tenants and the key defaults to the name)");
  cmd->add_option("--mix", args->mix,
                  "Prompt content mix, e.g. prose:0.5,code:0.25,json:0.15,multilingual:0.1");
  cmd->add_option("--model", c.model, "Model name (default: the first of GET /v1/models)");
  cmd->add_option("--seed", c.seed, "Seed of arrivals, tenants and text")->capture_default_str();
  cmd->add_option("--max-connections", c.max_connections,
                  "Connection cap = requests in flight; beyond it requests are dropped")
      ->capture_default_str();
  cmd->add_option("--late-ms", c.late_ms, "A send this far behind its due time counts as late")
      ->capture_default_str();
  cmd->add_option("--timeout", c.timeout_s, "Per-request timeout, seconds")->capture_default_str();
  cmd->add_option("--drain", c.drain_s,
                  "Seconds after the planned duration (or the last arrival, if later) before "
                  "cutting the rest")
      ->capture_default_str();
  cmd->add_option("--connect-timeout", c.connect_timeout_s, "Seconds per connect")
      ->capture_default_str();
  cmd->add_option("--max-prompt-tokens", c.max_prompt_tokens, "Cap on prompt lengths (0: none)");
  cmd->add_option("--max-output-tokens", c.max_output_tokens, "Cap on output lengths (0: none)");
  cmd->add_option("--csv", c.csv_path, "Write one row per request");
  cmd->add_option("--json", c.json_path, "Write the summary as JSON");
  cmd->add_flag("--no-progress", args->no_progress, "No live line on stderr");
  cmd->add_flag("--quiet", args->quiet, "No table on stdout and no live line");
  cmd->callback([args] {
    const int rc = RunLoadCommand(*args);
    if (rc != 0) throw CLI::RuntimeError(rc);
  });
}

}  // namespace tokenpool::cli
