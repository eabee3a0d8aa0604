// `tokenpool estimate-eval` flag errors: exit 2 naming the flag the user typed and the rule
// (not EvalOptions' field names, not exit 1), checked before the corpus is read.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "run_tokenpool.h"

namespace {

using ::testing::HasSubstr;

using ::tokenpool::test::RunResult;

RunResult RunEstimateEval(const std::string& args) {
  return ::tokenpool::test::RunTokenpool("estimate-eval " + args);
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
