// `tokenpool estimate-eval --corpus DIR [--mode NAME] [--json]`: replays a token-count corpus
// through an estimator (src/parse/estimate_eval.h) and prints the per-category accuracy.
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "parse/estimate_eval.h"

namespace tokenpool::cli {

void RegisterEstimateEval(CLI::App& app) {
  struct Args {
    std::string corpus;
    std::string mode = std::string(kDefaultEstimatorMode);
    bool json = false;
    int64_t warmup = 50;
    int64_t boundary = 8192;
    uint64_t seed = 1;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "estimate-eval", "Replay a prompt-token corpus (JSONL) through a token estimator");
  cmd->add_option("--corpus", args->corpus, "directory of *.jsonl files (corpus format)")
      ->required();
  cmd->add_option("--mode", args->mode, "estimator mode: static, ema, linear")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print one JSON object (fractions)");
  cmd->add_option("--warmup", args->warmup, "requests per category before scoring")
      ->capture_default_str();
  cmd->add_option("--boundary", args->boundary, "short-pool boundary in tokens")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "replay order seed")->capture_default_str();
  cmd->callback([args] {
    Result<std::vector<parse::EvalRecord>> corpus = parse::LoadCorpus(args->corpus);
    if (!corpus.ok()) {
      std::fprintf(stderr, "estimate-eval: %s\n", corpus.status().ToString().c_str());
      throw CLI::RuntimeError(1);
    }
    parse::EvalOptions options;
    options.mode = args->mode;
    options.warmup_per_category = args->warmup;
    options.boundary_tokens = args->boundary;
    options.seed = args->seed;
    Result<parse::EvalReport> report = parse::RunEval(*corpus, options);
    if (!report.ok()) {
      std::fprintf(stderr, "estimate-eval: %s\n", report.status().ToString().c_str());
      throw CLI::RuntimeError(1);
    }
    const std::string out = args->json ? parse::FormatJson(*report) + "\n"
                                       : parse::FormatTable(*report);
    std::fputs(out.c_str(), stdout);
  });
}

}  // namespace tokenpool::cli
