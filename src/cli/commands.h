#pragma once
// Subcommand registration for the `tokenpool` binary. One function per subcommand, each defined
// in its own file (src/cli/<name>_cmd.cc) and called from main.cc.

#include <CLI/CLI.hpp>

namespace tokenpool::cli {

void RegisterVersion(CLI::App& app);
void RegisterDemo(CLI::App& app);
void RegisterEstimateEval(CLI::App& app);
void RegisterPlan(CLI::App& app);
void RegisterMock(CLI::App& app);
void RegisterSim(CLI::App& app);
void RegisterServe(CLI::App& app);
void RegisterLoad(CLI::App& app);

}  // namespace tokenpool::cli
