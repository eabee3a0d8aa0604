// RunLoad and `tokenpool load` against a `tokenpool mock` child process on loopback: a short run
// completes every request with the right tenant shares and records TTFT, TPOT and usage; a
// refused connection and a bad trace row end the command with a clear message and a non-zero
// exit. Checks behaviour only, never wall-clock figures.
#include "load/client.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "../common/test_util.h"
#include "../mock/mock_test_util.h"
#include "load/plan.h"
#include "load/report.h"

namespace tokenpool::load {
namespace {

using mock::testing::MockProcess;

using ::tokenpool::test::TempDir;

std::string Trace() {
  std::string t = "arrival_s,input_tokens,output_tokens\n";
  for (int i = 0; i < 40; ++i) {
    t += std::to_string(i) + "," + std::to_string(60 + 25 * (i % 7)) + "," +
         std::to_string(4 + i % 9) + "\n";
  }
  return t;
}

// Runs the binary with `args` after the shell commands `prefix`; returns the exit status and
// stdout+stderr.
int RunCommand(const std::string& args, std::string* output, const std::string& prefix = "") {
  const std::string cmd = prefix + "exec " + TOKENPOOL_BINARY + " load " + args + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output->append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(LoadClientTest, ShortRunCompletesEveryRequestWithSharesAndTimings) {
  MockProcess mock({"--speedup", "20", "--seed", "5"});
  ASSERT_GT(mock.port(), 0) << mock.banner();
  TempDir dir;
  LoadConfig c;
  c.target = "127.0.0.1:" + std::to_string(mock.port());
  c.trace_path = dir.Write("t.csv", Trace());
  c.process = "poisson";
  c.rate_rps = 200;
  c.duration_s = 1.5;
  c.keys = {{"big", "sk-big", 3}, {"small", "sk-small", 1}};
  c.drain_s = 30;
  auto plan = BuildPlan(c);
  ASSERT_TRUE(plan.ok()) << plan.status().message();
  const size_t n = plan->requests.size();
  ASSERT_GT(n, 150u);

  auto result = RunLoad(c, *plan, nullptr);
  ASSERT_TRUE(result.ok()) << result.status().message();
  EXPECT_EQ(result->model, "llama-3-8b-h100");  // learned from GET /v1/models
  ASSERT_EQ(result->records.size(), n);
  int64_t big = 0;
  for (size_t i = 0; i < n; ++i) {
    const RequestRecord& r = result->records[i];
    const PlannedRequest& p = plan->requests[i];
    ASSERT_EQ(r.outcome, Outcome::kOk) << i << ": " << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.sent);
    EXPECT_EQ(r.completion_tokens, p.output_tokens) << i;  // max_tokens honoured, usage read
    // The text generator's prompt size, counted by the mock's tokenizer.
    EXPECT_NEAR(static_cast<double>(r.prompt_tokens) / p.prompt_tokens, 1.0, 0.5) << i;
    EXPECT_GT(r.ttft_ms, 0);
    EXPECT_GE(r.e2e_ms, r.ttft_ms);
    if (p.output_tokens > 1) {
      EXPECT_GT(r.tpot_ms, 0) << i;
    }
    EXPECT_EQ(r.cls, -1);  // the mock sends no x-tokenpool-class
    big += p.tenant == 0;
  }
  EXPECT_NEAR(static_cast<double>(big) / static_cast<double>(n), 0.75, 0.1);

  const LoadSummary s = Summarize(*plan, *result);
  EXPECT_EQ(s.completed, static_cast<int64_t>(n));
  EXPECT_EQ(s.dropped, 0);
  ASSERT_EQ(s.groups.size(), 5u);  // big/-, small/-, big/all, small/all, all/all
  EXPECT_EQ(s.groups.back().tenant, "all");
  EXPECT_EQ(s.groups.back().ok, static_cast<int64_t>(n));
  EXPECT_GT(s.groups.back().ttft_ms.p99, 0);
  EXPECT_NE(SummaryJson(s).find("\"achieved_rate_rps\""), std::string::npos);
}

TEST(LoadClientTest, ConnectionCapDropsInsteadOfWaiting) {
  // One connection and requests that stall: the ones due while it is busy are dropped.
  MockProcess mock({"--instant", "--added-latency-ms", "300"});
  ASSERT_GT(mock.port(), 0) << mock.banner();
  TempDir dir;
  LoadConfig c;
  c.target = "127.0.0.1:" + std::to_string(mock.port());
  c.trace_path = dir.Write("t.csv", Trace());
  c.process = "poisson";
  c.rate_rps = 100;
  c.duration_s = 0.5;
  c.max_connections = 1;
  c.model = "llama-3-8b-h100";
  auto plan = BuildPlan(c);
  ASSERT_TRUE(plan.ok());
  auto result = RunLoad(c, *plan, nullptr);
  ASSERT_TRUE(result.ok()) << result.status().message();
  const LoadSummary s = Summarize(*plan, *result);
  for (const RequestRecord& r : result->records) {
    EXPECT_TRUE(r.outcome == Outcome::kOk || r.outcome == Outcome::kDropped) << r.error;
  }
  EXPECT_GE(s.completed, 1);
  EXPECT_GT(s.dropped, 0);
  EXPECT_EQ(s.completed + s.dropped, s.planned);
  EXPECT_EQ(s.max_open_connections, 1);
}

TEST(LoadCommandTest, CsvAndJsonFromTheCommand) {
  MockProcess mock({"--instant"});
  ASSERT_GT(mock.port(), 0) << mock.banner();
  TempDir dir;
  const std::string trace = dir.Write("t.csv", Trace());
  std::string out;
  const int rc = RunCommand("--target 127.0.0.1:" + std::to_string(mock.port()) + " --trace " +
                                trace + " --rate 100 --key a=ka:1 --key b=kb:1 --csv " +
                                dir.Path("rows.csv") + " --json " + dir.Path("sum.json"),
                            &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("tenant"), std::string::npos) << out;  // the table's header
  std::ifstream csv(dir.Path("rows.csv"));
  std::string line;
  int rows = 0, ok = 0;
  std::getline(csv, line);
  EXPECT_EQ(line.rfind("id,tenant,class,category,due_s,outcome,status", 0), 0u) << line;
  while (std::getline(csv, line)) {
    ++rows;
    ok += line.find(",ok,200,") != std::string::npos;
  }
  EXPECT_EQ(rows, 40);  // one trace pass
  EXPECT_EQ(ok, 40);
  std::stringstream json;
  json << std::ifstream(dir.Path("sum.json")).rdbuf();
  EXPECT_NE(json.str().find("\"completed\":40"), std::string::npos) << json.str();
  EXPECT_NE(json.str().find("\"statuses\":{\"200\":40}"), std::string::npos) << json.str();
}

// SIGINT stops the arrivals, cuts what is in flight and writes the table, the CSV and the
// JSON of the requests due so far; the exit status says the signal. Before, the run died with
// nothing written.
TEST(LoadCommandTest, SigintReportsTheRunSoFar) {
  MockProcess mock({"--instant"});
  ASSERT_GT(mock.port(), 0) << mock.banner();
  TempDir dir;
  const std::string trace = dir.Write("t.csv", Trace());  // one request a second for 40 s
  std::string out;
  const int rc =
      RunCommand("--target 127.0.0.1:" + std::to_string(mock.port()) + " --trace " + trace +
                     " --csv " + dir.Path("rows.csv") + " --json " + dir.Path("sum.json"),
                 &out, "(sleep 2.5; kill -INT $$) & ");
  EXPECT_EQ(rc, 128 + SIGINT) << out;
  EXPECT_NE(out.find("interrupted by"), std::string::npos) << out;
  std::ifstream csv(dir.Path("rows.csv"));
  std::string line;
  int rows = 0;
  std::getline(csv, line);
  while (std::getline(csv, line)) ++rows;
  EXPECT_GT(rows, 0);
  EXPECT_LT(rows, 40);
  std::stringstream json;
  json << std::ifstream(dir.Path("sum.json")).rdbuf();
  EXPECT_NE(json.str().find(R"("interrupted_by":"SIGINT")"), std::string::npos) << json.str();
}

// An output that cannot be written is refused before the run, not after it; a connection cap
// that the open-file limit sets is said in the table.
TEST(LoadCommandTest, OutputsAreCheckedFirstAndAFileLimitCapIsSaid) {
  MockProcess mock({"--instant"});
  ASSERT_GT(mock.port(), 0) << mock.banner();
  TempDir dir;
  const std::string trace = dir.Write("t.csv", Trace());
  const std::string target = "--target 127.0.0.1:" + std::to_string(mock.port());
  std::string out;
  int rc = RunCommand(
      target + " --trace " + trace + " --rate 100 --csv " + dir.Path("no/such/dir/rows.csv"), &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("--csv: cannot write"), std::string::npos) << out;
  EXPECT_NE(out.find("No such file or directory"), std::string::npos) << out;
  EXPECT_EQ(out.find("tenant"), std::string::npos) << "no run: " << out;
  out.clear();
  rc = RunCommand(target + " --trace " + trace + " --rate 100 --json " + dir.Path("s.json"), &out,
                  "ulimit -n 80; ");
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("connections capped at 16 by the open-file limit"), std::string::npos) << out;
}

TEST(LoadCommandTest, RefusedConnectionIsAClearErrorNotAHang) {
  TempDir dir;
  const std::string trace = dir.Write("t.csv", Trace());
  std::string out;
  const int port = ::tokenpool::test::UnusedPort();
  const int rc =
      RunCommand("--target 127.0.0.1:" + std::to_string(port) + " --trace " + trace, &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("cannot connect to 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << out;
  EXPECT_NE(out.find("refused"), std::string::npos) << out;
}

// An exception inside a request (std::bad_alloc building a 2e9-token body under a 1 GB
// address-space limit) is that request's error, with its reason, and the run does not wait for
// --drain on it.
TEST(LoadCommandTest, ExceptionInARequestIsAnErrorNotASilentDrop) {
#if defined(__SANITIZE_ADDRESS__)
  // The binary is built as this test is: AddressSanitizer cannot start under `ulimit -v`.
  GTEST_SKIP() << "needs ulimit -v, which AddressSanitizer's shadow memory does not fit";
#endif
  MockProcess mock({"--instant"});
  ASSERT_GT(mock.port(), 0) << mock.banner();
  TempDir dir;
  const std::string trace =
      dir.Write("t.csv", "arrival_s,input_tokens,output_tokens\n0,2000000000,5\n");
  std::string out;
  const int rc = RunCommand("--target 127.0.0.1:" + std::to_string(mock.port()) + " --trace " +
                                trace + " --drain 60 --quiet --csv " + dir.Path("rows.csv") +
                                " --json " + dir.Path("sum.json"),
                            &out, "ulimit -v 1000000; ");
  EXPECT_EQ(rc, 3) << out;  // no request completed
  std::ifstream csv(dir.Path("rows.csv"));
  std::string line;
  std::getline(csv, line);
  ASSERT_TRUE(std::getline(csv, line)) << out;
  EXPECT_NE(line.find(",generator,"), std::string::npos) << line;
  EXPECT_NE(line.find("generator: std::bad_alloc"), std::string::npos) << line;
  std::stringstream json;
  json << std::ifstream(dir.Path("sum.json")).rdbuf();
  EXPECT_NE(json.str().find("\"generator_errors\":1"), std::string::npos) << json.str();
  // Ended when the request failed, not at the drain's end 60 s later.
  const size_t w = json.str().find("\"wall_s\":");
  ASSERT_NE(w, std::string::npos) << json.str();
  EXPECT_LT(std::stod(json.str().substr(w + 9)), 30.0) << json.str();
}

TEST(LoadCommandTest, BadTraceRowNamesFileLineAndField) {
  TempDir dir;
  const std::string trace =
      dir.Write("bad.csv", "arrival_s,input_tokens,output_tokens\n0,10,5\n1,10,-3\n");
  std::string out;
  const int rc = RunCommand("--target 127.0.0.1:1 --trace " + trace, &out);
  EXPECT_EQ(rc, 2) << out;
  EXPECT_NE(out.find("bad.csv:3: output_tokens"), std::string::npos) << out;
}

}  // namespace
}  // namespace tokenpool::load
