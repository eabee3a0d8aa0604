// The `tokenpool` binary's flag errors, whichever subcommand: exit status 2 (the documented
// "bad input") with a message naming the flag and the rule, never CLI11's own codes (104 for a
// value it cannot convert, 109 for an unknown flag), and no unsigned flag that takes "-1" or
// an overflowing number as 2^64 - 1.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "run_tokenpool.h"

namespace {

using ::testing::HasSubstr;

using ::tokenpool::test::RunResult;
using ::tokenpool::test::RunTokenpool;

class CliFlagsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(TOKENPOOL_BINARY)) {
      GTEST_SKIP() << TOKENPOOL_BINARY << " is not built";
    }
  }
};

TEST_F(CliFlagsTest, ValuesThatDoNotConvertExit2NamingFlagAndRule) {
  struct Case {
    const char* args;
    const char* message;
  };
  const std::string uint_rule =
      ": must be an integer in [0, 18446744073709551615] in decimal, without leading zeros, got ";
  for (const Case& c : {
           Case{"load --trace t.csv --rate abc", "--rate: must be a number, got \"abc\""},
           Case{"plan --rate 3 --boundary 1.5", "--boundary: must be an integer"},
           Case{"mock --port abc", "--port: must be an integer"},
           Case{"load --trace t.csv --seed -1", "--seed: must be an integer in"},
           Case{"load --trace t.csv --seed 99999999999999999999999", "--seed: must be an integer"},
           Case{"sim s.yaml --out d --seed -1", "--seed: must be an integer in"},
           Case{"demo --seed -5", "--seed: must be an integer in"},
           Case{"estimate-eval --corpus c --seed x", "--seed: must be an integer in"},
           // CLI11 reads integers with base 0: "010" would be octal 8, "0x10" 16.
           Case{"demo --seed 010", "without leading zeros, got \"010\""},
           Case{"plan --rate 3 --boundary 08192", "without leading zeros, got \"08192\""},
           Case{"demo --seed 0x10", "--seed: must be an integer in"},
       }) {
    const RunResult r = RunTokenpool(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr(c.message)) << c.args;
  }
  EXPECT_THAT(RunTokenpool("load --trace t.csv --seed -1").output,
              HasSubstr("--seed" + uint_rule + "\"-1\""));
}

// Flags that only the demo reads are refused beside a config file (they were ignored in
// silence: the gateway listened where the file said).
TEST_F(CliFlagsTest, DemoOnlyFlagsAreRefusedWithAConfig) {
  for (const char* flag : {"--port 9", "--admin-port 9", "--host 127.0.0.2"}) {
    const RunResult r = RunTokenpool(std::string("serve --config g.yaml ") + flag);
    EXPECT_EQ(r.exit_code, 2) << flag << "\n" << r.output;
    EXPECT_THAT(r.output, HasSubstr("only with --demo")) << flag;
  }
}

TEST_F(CliFlagsTest, UnknownFlagsAndMissingValuesExit2) {
  for (const char* args : {"load --trace t.csv --bogus", "plan --rate", "sim", "nosuchcommand"}) {
    const RunResult r = RunTokenpool(args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
  }
  EXPECT_THAT(RunTokenpool("load --trace t.csv --bogus").output, HasSubstr("--bogus"));
}

TEST_F(CliFlagsTest, HelpExits0AndACommandKeepsItsOwnStatus) {
  EXPECT_EQ(RunTokenpool("load --help").exit_code, 0);
  EXPECT_EQ(RunTokenpool("version").exit_code, 0);
  // A command's own failure keeps its status: 2 from `plan` for a missing trace.
  const RunResult r = RunTokenpool(
      "plan --trace /nonexistent.csv --profile fleetsim-a100 --boundary 8192 "
      "--rate 3 --slo-ttft-p99 2");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_THAT(r.output, HasSubstr("--trace: cannot open"));
}

}  // namespace
