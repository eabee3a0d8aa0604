// Runs the built `tokenpool` binary (TOKENPOOL_BINARY) with arguments through the shell and
// collects its exit status and output, for the CLI tests.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

namespace tokenpool::test {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// `args` as a shell would split them (quote what needs it).
inline RunResult RunTokenpool(const std::string& args) {
  const std::string command = std::string(TOKENPOOL_BINARY) + " " + args + " 2>&1";
  RunResult r;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  const int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

}  // namespace tokenpool::test
