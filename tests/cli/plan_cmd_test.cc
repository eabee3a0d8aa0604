// `tokenpool plan` end to end: runs the built binary on a small trace written to a temporary
// file and checks the output and the exit status, including bad flags and bad trace lines.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "run_tokenpool.h"

namespace {

using ::testing::HasSubstr;

using ::tokenpool::test::RunResult;

RunResult RunPlan(const std::string& args) {
  return ::tokenpool::test::RunTokenpool("plan " + args);
}

class PlanCmdTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(TOKENPOOL_BINARY)) {
      GTEST_SKIP() << TOKENPOOL_BINARY << " is not built";
    }
    dir_ = std::filesystem::temp_directory_path() /
           ("tokenpool_plan_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) {
    const std::filesystem::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }
  // 3 short requests (<= 8K total) and 1 long one.
  std::string Synthetic() {
    return Write("synthetic.csv",
                 "arrival_s,input_tokens,output_tokens\n"
                 "0,1000,200\n0.5,2000,100\n1.0,500,300\n1.5,20000,400\n");
  }
  std::filesystem::path dir_;
};

TEST_F(PlanCmdTest, JsonPlan) {
  const RunResult r = RunPlan("--trace " + Synthetic() +
                              " --profile fleetsim-a100 --boundary 8192 --rate 100 "
                              "--slo-ttft-p99 2 --json");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("\"profile\":\"fleetsim-a100\""));
  EXPECT_THAT(r.output, HasSubstr("\"format\":\"plain\""));
  EXPECT_THAT(r.output, HasSubstr("\"alpha\":0.75"));
  EXPECT_THAT(r.output, HasSubstr("\"rho\":1.61"));
  EXPECT_THAT(r.output, HasSubstr("\"two_pool_gpus\":"));
  EXPECT_EQ(r.output.front(), '{');
}

TEST_F(PlanCmdTest, TextPlanAndSweep) {
  const RunResult r = RunPlan("--trace " + Synthetic() +
                              " --profile llama-3-70b-h100 --boundary 8192 --rate 100 "
                              "--slo-ttft-p99 2");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("homogeneous"));
  EXPECT_THAT(r.output, HasSubstr("actual saving"));
  const RunResult s = RunPlan("--trace " + Synthetic() +
                              " --profile fleetsim-a100 --sweep --rate 100 --slo-ttft-p99 2");
  EXPECT_EQ(s.exit_code, 0) << s.output;
  for (const char* b : {"2048", "3072", "6144", "12288", "24576", "32768"}) {
    EXPECT_THAT(s.output, HasSubstr(b));
  }
  // --boundary with --sweep is one more row (it was dropped).
  const RunResult t = RunPlan("--trace " + Synthetic() +
                              " --profile fleetsim-a100 --sweep --boundary 5000 --rate 100 "
                              "--slo-ttft-p99 2");
  EXPECT_EQ(t.exit_code, 0) << t.output;
  EXPECT_THAT(t.output, HasSubstr("    5000 "));
  EXPECT_THAT(t.output, HasSubstr("32768"));
}

TEST_F(PlanCmdTest, ListProfiles) {
  const RunResult r = RunPlan("--list-profiles");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* p : {"llama-3-70b-a100", "llama-3-70b-h100", "llama-3-8b-h100",
                        "llama-3-8b-a100", "fleetsim-a100", "fleetsim-h100"}) {
    EXPECT_THAT(r.output, HasSubstr(p));
  }
}

TEST_F(PlanCmdTest, BadFlagsNameTheFlagAndFail) {
  const std::string base = "--trace " + Synthetic() + " --profile fleetsim-a100 ";
  RunResult r = RunPlan(base + "--boundary 8192 --rate -3 --slo-ttft-p99 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--rate: must be > 0"));

  r = RunPlan(base + "--boundary 8192 --rate 3 --slo-ttft-p99 0");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--slo-ttft-p99: must be > 0"));

  r = RunPlan(base + "--boundary 100000 --rate 3 --slo-ttft-p99 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--boundary: must be <= the long pool's max_model_len"));

  r = RunPlan(base + "--rate 3 --slo-ttft-p99 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--boundary: required unless --sweep"));

  r = RunPlan(base + "--boundary 8192 --rate 3 --slo-ttft-p99 2 --ttft-prefill max");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--ttft-prefill: must be p99 or mean"));

  r = RunPlan(base + "--boundary abc --rate 3 --slo-ttft-p99 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(
      r.output,
      HasSubstr("--boundary: must be an integer in decimal, without leading zeros, got \"abc\""));

  r = RunPlan("--trace " + Synthetic() +
              " --profile nope --boundary 8192 --rate 3 "
              "--slo-ttft-p99 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--profile: profile \"nope\": unknown; known profiles: "));

  r = RunPlan("--trace " + (dir_ / "missing.csv").string() +
              " --profile fleetsim-a100 --boundary 8192 --rate 3 --slo-ttft-p99 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--trace: cannot open"));
}

// A rate no fleet of up to 2^24 instances serves is an error at once: the instance search does
// not start past its cap, and Erlang-C costs O(√load), not O(servers).
TEST_F(PlanCmdTest, HugeRateIsAnErrorNotAHang) {
  for (const char* rate : {"1e12", "1e10", "1e7"}) {
    const RunResult r =
        RunPlan("--trace " + Synthetic() + " --profile llama-3-8b-h100 --boundary 8192 --rate " +
                rate + " --slo-ttft-p99 1");
    if (std::string(rate) == "1e7") {  // 5.7 M instances: planned, in well under a second
      EXPECT_EQ(r.exit_code, 0) << rate << r.output;
      continue;
    }
    EXPECT_EQ(r.exit_code, 2) << rate << r.output;
    EXPECT_THAT(r.output, HasSubstr("no fleet under 16777216 instances meets the SLO"));
  }
}

// Token counts whose sum would overflow int64 are refused by file, line and field.
TEST_F(PlanCmdTest, TokenCountsPastTheBoundNameLineAndField) {
  const std::string trace = Write("huge.csv",
                                  "num_prefill_tokens,num_decode_tokens\n100,10\n"
                                  "5000000000000000000,5000000000000000000\n");
  const RunResult r = RunPlan("--trace " + trace +
                              " --profile llama-3-8b-h100 --boundary 8192 --rate 5 "
                              "--slo-ttft-p99 1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("huge.csv:3: num_prefill_tokens: must be at most 4294967296 "
                                  "tokens, got \"5000000000000000000\""));
}

TEST_F(PlanCmdTest, BadTraceLineIsReportedWithItsLine) {
  const std::string trace = Write("bad.csv",
                                  "TIMESTAMP,ContextTokens,GeneratedTokens\n"
                                  "2023-11-16 18:17:03.9799600,4808,10\n"
                                  "2023-11-16 18:17:04.0319600,abc,8\n");
  const RunResult r = RunPlan("--trace " + trace +
                              " --profile fleetsim-a100 --boundary 8192 --rate 3 "
                              "--slo-ttft-p99 2");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output,
              HasSubstr("bad.csv:3: ContextTokens: expected a non-negative integer, got \"abc\""));
}

}  // namespace
