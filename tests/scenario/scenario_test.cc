// Scenario files: errors name file, line and field; a scenario runs byte-identically twice
// through the CLI (tests/scenario ↔ src/scenario).
#include "scenario/scenario.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>

namespace tokenpool::scenario {
namespace {

const std::string kTraces = std::string(TOKENPOOL_SHARED_DIR) + "/traces/";

std::string Good(const std::string& pools_extra = "", const std::string& rate = "5") {
  return "name: t\n"
         "seed: 3\n"
         "duration_s: 20\n"
         "router: two-pool\n"
         "pools:\n"
         "  - name: short\n"
         "    profile: fleetsim-a100\n"
         "    max_model_len: 8192\n"
         "    replicas: 2\n" +
         pools_extra +
         "  - {name: long, profile: fleetsim-a100, max_model_len: 65536, replicas: 1}\n"
         "workload:\n"
         "  process: poisson\n"
         "  rate_rps: " +
         rate +
         "\n"
         "  trace: AzureLLMInferenceTrace_conv.csv\n"
         "tenants:\n"
         "  - {name: a, class: elastic, share: 1, guarantee_share: 0.5}\n";
}

// Every scenario here reads a trace from ../shared; without it the tests skip, saying why.
class ScenarioTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(kTraces + "AzureLLMInferenceTrace_conv.csv")) {
      GTEST_SKIP() << "../shared/traces is absent: scenario tests need its traces";
    }
  }
};

std::string ErrorOf(const std::string& text) {
  Result<Scenario> s = LoadScenarioText(text, "e1.yaml", kTraces);
  return s.ok() ? "OK" : s.status().message();
}

TEST_F(ScenarioTest, LoadsAGoodFile) {
  Result<Scenario> s = LoadScenarioText(Good(), "e1.yaml", kTraces);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->config.pools.size(), 2u);
  EXPECT_EQ(s->config.pools[0].profile.max_model_len, 8192);
  EXPECT_EQ(s->config.workload->lengths->size(), 19366u);
}

TEST_F(ScenarioTest, ValidationErrorNamesFileLineAndField) {
  std::string text = Good();
  text.replace(text.find("replicas: 2"), 11, "replicas: 0");
  EXPECT_EQ(ErrorOf(text), "e1.yaml:9: pools[0].replicas: must be in [1, 10000]");
}

// A duration past 1e9 s or not finite would overflow virtual time: refused with the field.
TEST_F(ScenarioTest, DurationsPastTheRangeAreRefused) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string text = Good();
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  EXPECT_EQ(ErrorOf(with("duration_s: 20", "duration_s: .inf")),
            "e1.yaml:3: duration_s: expected a finite number, got \".inf\"");
  EXPECT_EQ(ErrorOf(with("duration_s: 20", "duration_s: 20\nrate_window_s: 1e300")),
            "e1.yaml:4: rate_window_s: must be in (0, 1e9] seconds");
  EXPECT_EQ(ErrorOf(with("share: 1, guarantee_share: 0.5",
                         "share: 1, guarantee_share: 0.5, slo: {ttft_s: .inf}")),
            "e1.yaml:16: tenants[0].slo.ttft_s: expected a finite number, got \".inf\"");
  EXPECT_EQ(ErrorOf(with("share: 1, guarantee_share: 0.5",
                         "share: 1, guarantee_share: 0.5, slo: {ttft_s: 2, max_queue_wait_s: -1}")),
            "e1.yaml:16: tenants[0].slo.max_queue_wait_s: must be in [0, 1e9] seconds");
  EXPECT_EQ(ErrorOf(with("share: 1, guarantee_share: 0.5",
                         "share: 1, guarantee_share: 0.5, slo: {ttft_s: 1e9}")),
            "OK");
}

// Values that only the run used to refuse (the router, the entitlements, the sizing search),
// with no line and as a run failure: now refused at load, naming file, line and field.
TEST_F(ScenarioTest, RunTimeRulesAreRefusedAtLoadWithTheLine) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string text = Good();
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  const std::string tenant = "share: 1, guarantee_share: 0.5";
  EXPECT_EQ(ErrorOf(with("router: two-pool", "router: spillover\nspill_utilization: -5")),
            "e1.yaml:5: spill_utilization: must be in (0, 1], got -5");
  EXPECT_EQ(ErrorOf(with(tenant, tenant + ", guarantee: {token_rate: -5}")),
            "e1.yaml:16: tenants[0].guarantee.token_rate: must be >= 0, got -5");
  EXPECT_EQ(ErrorOf(with(tenant, "share: 1, burst: {token_rate: 100, concurrency: 4}")),
            "e1.yaml:16: tenants[0].burst.kv_tokens: must be > 0 (at least 1 for kv_tokens and "
            "concurrency): a tenant whose burst ceiling is 0 can never run a request");
  EXPECT_EQ(ErrorOf(with("class: elastic, " + tenant, "class: guaranteed, share: 1")),
            "e1.yaml:16: tenants[0].guarantee_share: must be > 0 for class guaranteed");
  EXPECT_EQ(ErrorOf(with(tenant, tenant + ", weight: 1e6")),
            "e1.yaml:16: tenants[0].weight: must be in [0.001, 1000], got 1000000");
  // 1e-12 s rounds to 0 ns.
  EXPECT_EQ(ErrorOf(with(tenant, tenant + ", slo: {ttft_s: 1e-12}")),
            "e1.yaml:16: tenants[0].slo.ttft_s: must be at least 1e-9 seconds (1 ns)");
  EXPECT_EQ(ErrorOf(with("duration_s: 20", "duration_s: 20\nrate_window_s: 1e-12")),
            "e1.yaml:4: rate_window_s: must be at least 1e-9 seconds (1 ns)");
  EXPECT_EQ(ErrorOf(Good() + "sizing: {max_replicas: -3}\n"),
            "e1.yaml:17: sizing.max_replicas: must be in [1, 10000], got -3");
  EXPECT_EQ(ErrorOf(with("seed: 3", "seed: -1")), "e1.yaml:2: seed: must be >= 0");
  // What the rules still let through runs as before.
  EXPECT_EQ(ErrorOf(with("class: elastic, " + tenant,
                         "class: guaranteed, " + tenant +
                             ", weight: 2, burst: {token_rate: 100, kv_tokens: 1000, "
                             "concurrency: 4}, slo: {ttft_s: 1e-9}")),
            "OK");
  EXPECT_EQ(ErrorOf(with("seed: 3", "seed: 0")), "OK");
}

// YAML's .inf and .nan are no value of any field (a tenant share of .inf took no traffic and
// gave the other tenant all of it), and a key given twice is refused (yaml-cpp's lookup took
// the first: `seed: 1` then `seed: 2` ran seed 1).
TEST_F(ScenarioTest, NonFiniteNumbersAndRepeatedKeysAreRefused) {
  auto with = [](const std::string& from, const std::string& to) {
    std::string text = Good();
    text.replace(text.find(from), from.size(), to);
    return text;
  };
  EXPECT_EQ(ErrorOf(with("share: 1, guarantee_share: 0.5", "share: .inf, guarantee_share: 0.5")),
            "e1.yaml:16: tenants[0].share: expected a finite number, got \".inf\"");
  EXPECT_EQ(ErrorOf(with("share: 1, guarantee_share: 0.5", "share: .nan, guarantee_share: 0.5")),
            "e1.yaml:16: tenants[0].share: expected a finite number, got \".nan\"");
  EXPECT_EQ(ErrorOf(with("seed: 3", "seed: 3\nseed: 4")),
            "e1.yaml:3: seed: appears twice in this mapping");
  EXPECT_EQ(ErrorOf(with("replicas: 2\n", "replicas: 2\n    min_replicas: 3\n")),
            "e1.yaml:10: pools[0].min_replicas: must be in [0, replicas (2)]");
}

TEST_F(ScenarioTest, UnknownFieldBadTypeAndMissingField) {
  EXPECT_EQ(
      ErrorOf(Good("    replica: 3\n")).rfind("e1.yaml:10: pools[0].replica: unknown field", 0),
      0u);
  std::string text = Good("", "fast");
  EXPECT_EQ(ErrorOf(text), "e1.yaml:13: workload.rate_rps: expected a number, got \"fast\"");
  text = Good();
  text.replace(text.find("duration_s: 20\n"), 15, "");
  EXPECT_EQ(ErrorOf(text), "e1.yaml:1: duration_s: required field is missing");
  text = Good();
  text.replace(text.find("fleetsim-a100"), 13, "no-such-gpu");
  EXPECT_NE(ErrorOf(text).find("e1.yaml:7: pools[0].profile: profile \"no-such-gpu\""),
            std::string::npos);
}

TEST_F(ScenarioTest, TraceProblemsAreErrors) {
  std::string text = Good();
  text.replace(text.find("AzureLLMInferenceTrace_conv.csv"), 31, "missing.csv");
  EXPECT_EQ(ErrorOf(text),
            "e1.yaml:14: workload.trace: cannot read trace file \"missing.csv\": "
            "No such file or directory");
  const std::string dir = ::testing::TempDir();
  // A directory where a file belongs is named as one (it read as an empty file).
  EXPECT_EQ(LoadScenarioFile(dir).status().message(),
            dir + ": cannot read the scenario file: is a directory, not a file");
  std::ofstream(dir + "/empty.csv") << "arrival_s,input_tokens,output_tokens\n";
  std::ofstream(dir + "/bad.csv") << "arrival_s,input_tokens,output_tokens\n0,12,x\n";
  text = Good();
  text.replace(text.find("AzureLLMInferenceTrace_conv.csv"), 31, "empty.csv");
  EXPECT_NE(LoadScenarioText(text, "e1.yaml", dir).status().message().find("e1.yaml:14:"),
            std::string::npos);
  text = Good();
  text.replace(text.find("AzureLLMInferenceTrace_conv.csv"), 31, "bad.csv");
  EXPECT_NE(LoadScenarioText(text, "e1.yaml", dir).status().message().find("bad.csv:2:"),
            std::string::npos);
  // A length-only file cannot drive trace arrivals.
  text = Good();
  text.replace(text.find("process: poisson"), 16, "process: trace");
  text.replace(text.find("AzureLLMInferenceTrace_conv.csv"), 31,
               "sharegpt_8k_filtered_stats_llama2_tokenizer.csv");
  EXPECT_NE(ErrorOf(text).find("workload.trace: process 'trace' needs arrival times"),
            std::string::npos);
}

TEST_F(ScenarioTest, BaselineAdmissionModesAndTheirFields) {
  std::string text = Good();
  text.replace(text.find("tenants:\n"), 9,
               "admission: request_rate\nrate_limit_window_s: 30\ntenants:\n");
  // Every tenant needs its limit in this mode: the error names the tenant's field.
  EXPECT_EQ(ErrorOf(text),
            "e1.yaml:18: tenants[0].rate_limit.requests_per_s: must be > 0 with admission "
            "request_rate");
  text.replace(text.find("guarantee_share: 0.5}"), 21,
               "guarantee_share: 0.5, rate_limit: {requests_per_s: 3, tokens_per_s: 9000}}");
  Result<Scenario> s = LoadScenarioText(text, "e1.yaml", kTraces);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->config.admission, sim::AdmissionMode::kRequestRate);
  EXPECT_EQ(s->config.rate_limit_window_s, 30);
  EXPECT_EQ(s->config.tenants[0].rate_limit_rps, 3);
  EXPECT_EQ(s->config.tenants[0].rate_limit_tokens_per_s, 9000);
  text.replace(text.find("admission: request_rate"), 23, "admission: dedicated");
  s = LoadScenarioText(text, "e1.yaml", kTraces);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->config.admission, sim::AdmissionMode::kDedicated);
  text.replace(text.find("admission: dedicated"), 20, "admission: fair");
  EXPECT_EQ(ErrorOf(text).rfind("e1.yaml:15: admission: unknown admission \"fair\"", 0), 0u);
}

TEST_F(ScenarioTest, BadRateScheduleNamesFileLineAndField) {
  auto with_schedule = [](const std::string& points) {
    std::string text = Good();
    text.replace(text.find("  rate_rps: 5\n"), 14, "  rate_schedule:\n" + points);
    return text;
  };
  Result<Scenario> s = LoadScenarioText(
      with_schedule("    - {at_s: 0, rps: 1}\n    - {at_s: 10, rps: 8}\n"), "e1.yaml", kTraces);
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_EQ(s->config.workload->rate_schedule.size(), 2u);
  EXPECT_EQ(s->config.workload->rate_schedule[1].rps, 8);
  EXPECT_EQ(ErrorOf(with_schedule("    - {at_s: 10, rps: 1}\n    - {at_s: 5, rps: 8}\n")),
            "e1.yaml:15: workload.rate_schedule[1].at_s: must be > the previous point's (10)");
  EXPECT_EQ(ErrorOf(with_schedule("    - {at_s: 0, rps: -2}\n")),
            "e1.yaml:14: workload.rate_schedule[0].rps: must be >= 0, got -2");
  EXPECT_EQ(ErrorOf(with_schedule("    - {at_s: 0}\n")),
            "e1.yaml:14: workload.rate_schedule[0].rps: required field is missing");
  EXPECT_EQ(ErrorOf(with_schedule("    - {at_s: 0, rps: 0}\n")),
            "e1.yaml:14: workload.rate_schedule: every rate is 0 (no traffic)");
  std::string both = with_schedule("    - {at_s: 0, rps: 1}\n");
  both.replace(both.find("  rate_schedule:"), 0, "  rate_rps: 3\n");
  EXPECT_EQ(ErrorOf(both),
            "e1.yaml:13: workload.rate_rps: give rate_rps or rate_schedule, not both");
}

TEST_F(ScenarioTest, ArrivalSeedAndPerTenantSizing) {
  std::string text = Good();
  text.replace(text.find("  rate_rps: 5\n"), 14, "  rate_rps: 5\n  seed: 42\n");
  text += "sizing: {max_replicas: 9, per_tenant_slo: true}\n";
  Result<Scenario> s = LoadScenarioText(text, "e1.yaml", kTraces);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(s->config.workload->seed, std::optional<uint64_t>(42));
  EXPECT_TRUE(s->sizing.per_tenant_slo);
  EXPECT_EQ(s->sizing.max_replicas, 9);
  text.replace(text.find("seed: 42"), 8, "seed: -1");
  EXPECT_EQ(ErrorOf(text), "e1.yaml:14: workload.seed: must be >= 0");
}

TEST_F(ScenarioTest, YamlSyntaxErrorHasALine) {
  EXPECT_EQ(ErrorOf("name: t\npools: [\n").rfind("e1.yaml:", 0), 0u);
}

std::string ReadAll(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

TEST_F(ScenarioTest, CliRunTwiceGivesByteIdenticalOutput) {
  const std::filesystem::path dir = std::filesystem::path(::testing::TempDir()) / "sim_cli";
  std::filesystem::create_directories(dir);
  std::string text = Good();
  text.replace(text.find("AzureLLMInferenceTrace_conv.csv"), 31,
               kTraces + "AzureLLMInferenceTrace_conv.csv");
  std::ofstream(dir / "s.yaml") << text;
  for (const char* out : {"a", "b"}) {
    const std::string cmd = std::string(TOKENPOOL_BINARY) + " sim " + (dir / "s.yaml").string() +
                            " --out " + (dir / out).string() + " > /dev/null";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  }
  for (const char* f : {"summary.json", "report.md", "timeseries.csv"}) {
    const std::string a = ReadAll(dir / "a" / f);
    EXPECT_FALSE(a.empty()) << f;
    EXPECT_EQ(std::hash<std::string>{}(a), std::hash<std::string>{}(ReadAll(dir / "b" / f))) << f;
  }
  // A bad scenario exits non-zero naming file:line.
  std::ofstream(dir / "bad.yaml") << "duration_s: -1\n";
  const std::string bad = std::string(TOKENPOOL_BINARY) + " sim " + (dir / "bad.yaml").string() +
                          " --out " + (dir / "c").string() + " 2> " + (dir / "err").string();
  EXPECT_NE(std::system(bad.c_str()), 0);
  EXPECT_NE(ReadAll(dir / "err").find("bad.yaml:"), std::string::npos);
}

}  // namespace
}  // namespace tokenpool::scenario
