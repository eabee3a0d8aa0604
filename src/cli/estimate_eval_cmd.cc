// `tokenpool estimate-eval --corpus DIR [--mode NAME] [--json] [--passes N]`: replays a
// token-count corpus through an estimator (src/parse/estimate_eval.h) and prints the
// per-category accuracy. A bad flag exits 2 naming the flag and the rule (as every command,
// src/cli/main.cc); a corpus that cannot be read exits 1.
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "commands.h"
#include "parse/estimate_eval.h"

namespace tokenpool::cli {
namespace {

// EvalOptions errors name its fields ("warmup_per_category: must be >= 0"); the user typed
// flags.
std::string WithFlagNames(const std::string& message) {
  static constexpr std::pair<std::string_view, std::string_view> kFlags[] = {
      {"mode", "--mode"},
      {"warmup_per_category", "--warmup"},
      {"boundary_tokens", "--boundary"},
      {"passes", "--passes"},
      {"linear.gamma", "--linear-gamma"},
      {"linear.spread_min_tokens", "--linear-spread-min-tokens"},
      {"ema.gamma", "--ema-gamma"},
      {"ema.decay", "--ema-decay"},
      {"linear.prior_variance", "--linear-prior-variance"},
      {"linear.min_category_samples", "--linear-min-category-samples"},
      {"linear.sample_after", "--linear-sample-after"},
      {"linear.sample_every", "--linear-sample-every"},
  };
  const std::string_view field = std::string_view(message).substr(0, message.find(':'));
  for (const auto& [name, flag] : kFlags) {
    if (field == name) return std::string(flag) + message.substr(field.size());
  }
  return message;
}

}  // namespace

void RegisterEstimateEval(CLI::App& app) {
  struct Args {
    std::string corpus;
    std::string mode = std::string(kDefaultEstimatorMode);
    bool json = false;
    bool classes = false;
    int64_t warmup = 50;
    int64_t boundary = 8192;
    uint64_t seed = 1;
    double linear_gamma = EstimatorConfig{}.linear.gamma;
    int64_t spread_min_tokens = EstimatorConfig{}.linear.spread_min_tokens;
    double ema_gamma = EstimatorConfig{}.ema.gamma;
    double ema_decay = EstimatorConfig{}.ema.decay;
    double prior_variance = EstimatorConfig{}.linear.prior_variance;
    int64_t min_category_samples = EstimatorConfig{}.linear.min_category_samples;
    int64_t sample_after = EstimatorConfig{}.linear.sample_after;
    int64_t sample_every = EstimatorConfig{}.linear.sample_every;
    int64_t passes = 1;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("estimate-eval",
                                 "Replay a prompt-token corpus (JSONL) through a token estimator");
  cmd->add_option("--corpus", args->corpus, "directory of *.jsonl files (corpus format)")
      ->required();
  cmd->add_option("--mode", args->mode, "estimator mode: static, ema, linear")
      ->capture_default_str();
  cmd->add_flag("--json", args->json, "print one JSON object (fractions)");
  cmd->add_flag("--classes", args->classes, "also print the content classes per category");
  cmd->add_option("--warmup", args->warmup, "requests per category before scoring")
      ->capture_default_str();
  cmd->add_option("--boundary", args->boundary, "short-pool boundary in tokens, >= 1")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "replay order seed")->capture_default_str();
  cmd->add_option("--linear-gamma", args->linear_gamma, "linear mode: margin factor γ")
      ->capture_default_str();
  cmd->add_option("--linear-spread-min-tokens", args->spread_min_tokens,
                  "linear mode: smallest estimate that feeds the spread")
      ->capture_default_str();
  cmd->add_option("--ema-gamma", args->ema_gamma, "ema mode: low-tail factor γ")
      ->capture_default_str();
  cmd->add_option("--ema-decay", args->ema_decay, "ema mode: EMA decay β")->capture_default_str();
  cmd->add_option("--linear-prior-variance", args->prior_variance,
                  "linear mode: RLS prior variance δ (P0 = δ·I)")
      ->capture_default_str();
  cmd->add_option("--linear-min-category-samples", args->min_category_samples,
                  "linear mode: samples before a category's own model is used")
      ->capture_default_str();
  cmd->add_option("--linear-sample-after", args->sample_after,
                  "linear mode: reports a model learns from in full before sampling")
      ->capture_default_str();
  cmd->add_option("--linear-sample-every", args->sample_every,
                  "linear mode: then learn from one report in this many (1: all)")
      ->capture_default_str();
  cmd->add_option("--passes", args->passes,
                  "replays of the corpus; all but the last only train, the last is scored")
      ->capture_default_str();
  cmd->callback([args] {
    parse::EvalOptions options;
    options.mode = args->mode;
    options.warmup_per_category = args->warmup;
    options.boundary_tokens = args->boundary;
    options.seed = args->seed;
    options.config.linear.gamma = args->linear_gamma;
    options.config.linear.spread_min_tokens = args->spread_min_tokens;
    options.config.ema.gamma = args->ema_gamma;
    options.config.ema.decay = args->ema_decay;
    options.config.linear.prior_variance = args->prior_variance;
    options.config.linear.min_category_samples = args->min_category_samples;
    options.config.linear.sample_after = args->sample_after;
    options.config.linear.sample_every = args->sample_every;
    options.passes = args->passes;
    // The flags first: a bad one is reported before the corpus is read.
    if (Status s = options.Validate(); !s.ok()) {
      std::fprintf(stderr, "tokenpool estimate-eval: %s\n", WithFlagNames(s.message()).c_str());
      throw CLI::RuntimeError(2);
    }
    Result<std::vector<parse::EvalRecord>> corpus = parse::LoadCorpus(args->corpus);
    if (!corpus.ok()) {
      std::fprintf(stderr, "estimate-eval: %s\n", corpus.status().ToString().c_str());
      throw CLI::RuntimeError(1);
    }
    Result<parse::EvalReport> report = parse::RunEval(*corpus, options);
    if (!report.ok()) {
      std::fprintf(stderr, "estimate-eval: %s\n", report.status().ToString().c_str());
      throw CLI::RuntimeError(1);
    }
    const std::string out =
        args->json ? parse::FormatJson(*report) + "\n" : parse::FormatTable(*report, args->classes);
    std::fputs(out.c_str(), stdout);
  });
}

}  // namespace tokenpool::cli
