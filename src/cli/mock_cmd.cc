// `tokenpool mock`: an OpenAI-compatible vLLM stand-in whose timing and capacity come from the
// engine model on real timers (src/mock/server.h). Flags map one to one onto MockConfig;
// `--tokenizer-eval FILE` reports the stand-in tokenizer's error on a token-count corpus instead
// of serving. Behaviour: docs/mock.md.

#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "mock/config.h"
#include "mock/server.h"
#include "mock/tokenizer_eval.h"

namespace tokenpool::cli {

void RegisterMock(CLI::App& app) {
  auto* cmd = app.add_subcommand("mock", "Run a mock vLLM server driven by the engine model");
  auto config = std::make_shared<mock::MockConfig>();
  auto eval_path = std::make_shared<std::string>();
  cmd->add_option("--port", config->port, "TCP port (0: any free port, printed on start)");
  cmd->add_option("--host", config->host, "Address to bind")->capture_default_str();
  cmd->add_option("--profile", config->profile,
                  "Instance profile (see `tokenpool plan "
                  "--list-profiles`)")
      ->capture_default_str();
  cmd->add_option("--model", config->model, "Served model name (default: the profile name)");
  cmd->add_option("--max-model-len", config->max_model_len,
                  "Context length, > 0 (default: the profile's)");
  cmd->add_option("--max-num-seqs", config->max_num_seqs,
                  "Batch cap, > 0 (default: the profile's)");
  cmd->add_option("--num-gpu-blocks-override", config->num_gpu_blocks_override,
                  "KV blocks of 16 tokens, > 0 (default: from the capacity model)");
  cmd->add_option("--speedup", config->speedup, "Simulated time runs K times faster")
      ->capture_default_str();
  cmd->add_option("--seed", config->seed, "Seed of generated text and fault draws")
      ->capture_default_str();
  cmd->add_flag("--instant", config->instant, "No simulated compute (throughput mode)");
  cmd->add_option("--api-key", config->api_key,
                  "Require 'Authorization: Bearer KEY' on /v1 requests (vLLM's --api-key)");
  cmd->add_option("--default-max-tokens", config->default_max_tokens,
                  "Output tokens when a request sets no max_tokens")
      ->capture_default_str();
  cmd->add_option("--fail-rate", config->faults.fail_rate,
                  "Share of completions answered with --fail-status");
  cmd->add_option("--fail-status", config->faults.fail_status, "500 or 503")->capture_default_str();
  cmd->add_option("--added-latency-ms", config->faults.added_latency_ms,
                  "Delay before each completion is handled");
  cmd->add_option("--first-token-stall-ms", config->faults.first_token_stall_ms,
                  "Stall after the response starts, before the first token");
  cmd->add_option("--drop-rate", config->faults.drop_rate,
                  "Share of completions whose connection is dropped mid-way");
  cmd->add_option("--tokenizer-eval", *eval_path,
                  "Report the stand-in tokenizer's error on a corpus JSONL file and exit");
  cmd->callback([config, eval_path] {
    if (!eval_path->empty()) {
      auto r = mock::EvaluateTokenizer(*eval_path);
      if (!r.ok()) {
        std::fprintf(stderr, "tokenpool mock: %s\n", r.status().message().c_str());
        throw CLI::RuntimeError(2);
      }
      std::printf("%s", r->Format().c_str());
      return;
    }
    if (Status s = mock::RunMockServer(*config, stdout); !s.ok()) {
      std::fprintf(stderr, "tokenpool mock: %s\n", s.message().c_str());
      throw CLI::RuntimeError(2);
    }
  });
}

}  // namespace tokenpool::cli
