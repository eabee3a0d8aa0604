// tokenpool: the command-line entry point. Subcommands register themselves here, one line each.
#include <CLI/CLI.hpp>

#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"tokenpool: token pools and token-budget-aware pool routing for LLM inference"};
  app.require_subcommand(1);
  tokenpool::cli::RegisterVersion(app);
  tokenpool::cli::RegisterDemo(app);
  tokenpool::cli::RegisterEstimateEval(app);
  tokenpool::cli::RegisterPlan(app);
  tokenpool::cli::RegisterMock(app);
  tokenpool::cli::RegisterSim(app);
  tokenpool::cli::RegisterServe(app);
  tokenpool::cli::RegisterLoad(app);
  CLI11_PARSE(app, argc, argv);
  return 0;
}
