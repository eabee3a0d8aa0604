// `tokenpool estimate-eval` flag errors: exit 2 naming the flag the user typed and the rule
// (not EvalOptions' field names, not exit 1), checked before the corpus is read.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <string>

namespace {

using ::testing::HasSubstr;

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

RunResult RunEstimateEval(const std::string& args) {
  const std::string command = std::string(TOKENPOOL_BINARY) + " estimate-eval " + args + " 2>&1";
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

TEST(EstimateEvalCmdTest, BadFlagsExit2NamingTheFlag) {
  if (!std::filesystem::exists(TOKENPOOL_BINARY)) GTEST_SKIP() << TOKENPOOL_BINARY << " absent";
  // The corpus does not exist: the flags are refused before it is read.
  struct Case {
    const char* args;
    const char* message;
  };
  for (const Case& c : {
           Case{"--boundary -5", "tokenpool estimate-eval: --boundary: must be >= 1, got -5"},
           Case{"--boundary 0", "--boundary: must be >= 1, got 0"},
           Case{"--warmup -1", "tokenpool estimate-eval: --warmup: must be >= 0"},
           Case{"--passes 0", "--passes: must be >= 1"},
           Case{"--linear-sample-every 0", "--linear-sample-every: must be >= 1"},
           Case{"--ema-decay 2", "--ema-decay: must be in (0, 1)"},
           Case{"--mode nope", "--mode: estimator mode \"nope\": unknown (known: "},
       }) {
    const RunResult r = RunEstimateEval(std::string("--corpus /nonexistent ") + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << c.args;
  }
  // Good flags on a corpus that cannot be read: a run failure, exit 1.
  EXPECT_EQ(RunEstimateEval("--corpus /nonexistent --boundary 1").exit_code, 1);
}

}  // namespace
