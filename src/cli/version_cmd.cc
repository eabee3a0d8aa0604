#include <cstdio>

#include "commands.h"
#include "tokenpool/version.h"

namespace tokenpool::cli {

void RegisterVersion(CLI::App& app) {
  auto* cmd = app.add_subcommand("version", "Print the tokenpool version");
  cmd->callback([] { std::printf("tokenpool %s\n", kVersion); });
}

}  // namespace tokenpool::cli
