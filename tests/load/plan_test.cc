// BuildPlan: arrivals from traces and scenarios, tenant shares, caps, and errors that name the
// file, the line and the field. No network.
#include "load/plan.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <tuple>

#include "../common/test_util.h"

#include "load/config.h"
#include "scenario/scenario.h"
#include "sim/simulator.h"

namespace tokenpool::load {
namespace {

using ::tokenpool::test::TempDir;

std::string PlainTrace(int rows, double gap_s) {
  std::string t = "arrival_s,input_tokens,output_tokens\n";
  for (int i = 0; i < rows; ++i) {
    t += std::to_string(i * gap_s) + "," + std::to_string(100 + i) + "," + std::to_string(10 + i) +
         "\n";
  }
  return t;
}

TEST(LoadPlanTest, TraceReplayScalesTimesToTheRate) {
  TempDir dir;
  LoadConfig c;
  c.trace_path = dir.Write("t.csv", PlainTrace(100, 1.0));  // 1 req/s recorded
  c.rate_rps = 10;
  auto p = BuildPlan(c);
  ASSERT_TRUE(p.ok()) << p.status().message();
  // One pass at 10x: 100 requests over 10 s, gaps of 0.1 s, lengths in trace order.
  ASSERT_EQ(p->requests.size(), 100u);
  EXPECT_NEAR(p->duration_s, 10.0, 1e-9);
  EXPECT_NEAR(p->requests[1].at_s - p->requests[0].at_s, 0.1, 1e-9);
  EXPECT_EQ(p->requests[5].prompt_tokens, 105);
  EXPECT_EQ(p->requests[5].output_tokens, 15);
  // A longer duration loops the trace.
  c.duration_s = 25;
  p = BuildPlan(c);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->requests.size(), 250u);
  EXPECT_EQ(p->requests[100].prompt_tokens, 100);
}

TEST(LoadPlanTest, PoissonSplitsTenantsByShareAndIsDeterministic) {
  TempDir dir;
  LoadConfig c;
  c.trace_path = dir.Write("t.csv", PlainTrace(50, 1.0));
  c.process = "poisson";
  c.rate_rps = 1000;
  c.duration_s = 20;
  c.keys = {{"a", "ka", 3}, {"b", "kb", 1}};
  c.max_output_tokens = 12;
  auto p = BuildPlan(c);
  ASSERT_TRUE(p.ok()) << p.status().message();
  const double n = static_cast<double>(p->requests.size());
  EXPECT_NEAR(n, 20000, 5 * std::sqrt(20000.0));
  int64_t a = 0;
  double prev = 0;
  for (const PlannedRequest& r : p->requests) {
    a += r.tenant == 0;
    EXPECT_GE(r.at_s, prev);
    prev = r.at_s;
    EXPECT_LE(r.output_tokens, 12);
  }
  EXPECT_NEAR(static_cast<double>(a) / n, 0.75, 0.02);
  auto again = BuildPlan(c);
  ASSERT_TRUE(again.ok());
  ASSERT_EQ(again->requests.size(), p->requests.size());
  for (size_t i = 0; i < p->requests.size(); i += 997) {
    EXPECT_EQ(again->requests[i].at_s, p->requests[i].at_s);
    EXPECT_EQ(again->requests[i].tenant, p->requests[i].tenant);
    EXPECT_EQ(again->requests[i].category, p->requests[i].category);
  }
}

TEST(LoadPlanTest, BadTraceRowNamesFileLineAndField) {
  TempDir dir;
  LoadConfig c;
  c.trace_path = dir.Write("bad.csv", "arrival_s,input_tokens,output_tokens\n0,10,5\n1,abc,5\n");
  auto p = BuildPlan(c);
  ASSERT_FALSE(p.ok());
  const std::string m = p.status().message();
  EXPECT_NE(m.find("bad.csv:3:"), std::string::npos) << m;
  EXPECT_NE(m.find("input_tokens"), std::string::npos) << m;
}

TEST(LoadPlanTest, MissingTraceAndPoissonWithoutRateAreErrors) {
  LoadConfig c;
  c.trace_path = "/nonexistent/trace.csv";
  auto p = BuildPlan(c);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--trace: cannot read"), std::string::npos);

  TempDir dir;
  c.trace_path = dir.Write("lengths.csv", "num_prefill_tokens,num_decode_tokens\n10,5\n20,6\n");
  p = BuildPlan(c);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("--rate"), std::string::npos) << p.status().message();
  c.rate_rps = 50;
  c.duration_s = 2;
  p = BuildPlan(c);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_GT(p->requests.size(), 50u);
}

// A duration past 1e9 s, or one that is not finite, would overflow a deadline: refused with
// the flag and the rule.
TEST(LoadPlanTest, DurationsPastTheRangeAreRefusedByName) {
  TempDir dir;
  LoadConfig good;
  good.trace_path = dir.Write("lengths.csv", "num_prefill_tokens,num_decode_tokens\n10,5\n");
  good.rate_rps = 10;
  good.duration_s = 1;
  ASSERT_TRUE(BuildPlan(good).ok());
  const double inf = std::numeric_limits<double>::infinity();
  struct Case {
    double LoadConfig::*field;
    double value;
    const char* message;
  };
  for (const Case& k :
       {Case{&LoadConfig::duration_s, 1e300, "--duration: must be in [0, 1e9] seconds"},
        Case{&LoadConfig::timeout_s, inf, "--timeout: must be in (0, 1e9] seconds"},
        Case{&LoadConfig::drain_s, 2e9, "--drain: must be in [0, 1e9] seconds"},
        Case{&LoadConfig::connect_timeout_s, inf, "--connect-timeout: must be in (0, 1e9] seconds"},
        Case{&LoadConfig::late_ms, inf, "--late-ms: must be in [0, 1e9]"},
        Case{&LoadConfig::rate_rps, inf, "--rate: must be a finite number >= 0"},
        Case{&LoadConfig::rate_rps, 1e12,
             "--rate x --duration: plans more than 50,000,000 requests"}}) {
    LoadConfig c = good;
    c.*k.field = k.value;
    auto p = BuildPlan(c);
    ASSERT_FALSE(p.ok()) << k.message;
    EXPECT_EQ(p.status().message(), k.message);
  }
}

constexpr const char* kScenario = R"(name: two-tenants
seed: 3
duration_s: 10
pools:
  - {name: short, profile: llama-3-8b-h100, max_model_len: 8192, replicas: 2}
workload:
  process: poisson
  rate_rps: 40
  trace: t.csv
categories:
  - {name: code, share: 1, bytes_per_token: 3.5}
  - {name: prose, share: 1, bytes_per_token: 4.5}
tenants:
  - {name: acme, class: guaranteed, share: 1, guarantee_share: 0.5}
  - {name: spotty, class: spot, share: 3}
)";

TEST(LoadPlanTest, ScenarioGivesTenantsKeysCategoriesAndScaledRate) {
  TempDir dir;
  dir.Write("t.csv", PlainTrace(20, 1.0));
  LoadConfig c;
  c.scenario_path = dir.Write("s.yaml", kScenario);
  c.keys = {{"acme", "sk-acme", -1}};
  auto p = BuildPlan(c);
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->tenants.size(), 2u);
  EXPECT_EQ(p->tenants[0].key, "sk-acme");
  EXPECT_EQ(p->tenants[1].key, "spotty");  // default: the tenant's name
  ASSERT_EQ(p->categories.size(), 2u);
  EXPECT_EQ(p->categories[0].type, ContentType::kCode);
  EXPECT_NEAR(static_cast<double>(p->requests.size()), 400, 5 * 20);
  c.rate_rps = 400;  // 10x every stream
  auto fast = BuildPlan(c);
  ASSERT_TRUE(fast.ok());
  EXPECT_NEAR(static_cast<double>(fast->requests.size()), 4000, 5 * std::sqrt(4000.0));
  int64_t spotty = 0;
  for (const PlannedRequest& r : fast->requests) spotty += r.tenant == 1;
  EXPECT_NEAR(static_cast<double>(spotty) / static_cast<double>(fast->requests.size()), 0.75, 0.04);

  c.keys = {{"nobody", "k", -1}};
  auto bad = BuildPlan(c);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("no tenant \"nobody\""), std::string::npos);
}

// A run end that the trace and the rate imply is bounded as --duration is: a rate of 1e-10
// planned a 3e10 s run whose due times overflowed, and every request was cut at once.
TEST(LoadPlanTest, ARunPast1e9SecondsIsRefused) {
  TempDir dir;
  LoadConfig c;
  c.trace_path = dir.Write("lengths.csv", "num_prefill_tokens,num_decode_tokens\n10,5\n10,5\n");
  c.rate_rps = 1e-10;
  auto p = BuildPlan(c);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("the run would last 2e+10 s, past 1e9 s"), std::string::npos)
      << p.status().message();
  c.trace_path = dir.Write("far.csv", "arrival_s,input_tokens,output_tokens\n0,10,5\n1e300,10,5\n");
  c.rate_rps = 0;
  p = BuildPlan(c);
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("at its recorded rate: the run would last"),
            std::string::npos)
      << p.status().message();
}

// --rate scales the streams to a mean over the run: a stream active in part of it counts for
// that part (a 100 req/s stream of the first 0.5 s of 4 is 12.5 req/s of the mean; it counted
// 100, and a target of 40 req/s planned 10).
TEST(LoadPlanTest, RateIsTheMeanOverTheRunWithWindowedStreams) {
  TempDir dir;
  dir.Write("t.csv", PlainTrace(20, 1.0));
  const std::string text = R"(name: windows
seed: 3
duration_s: 4
pools:
  - {name: short, profile: llama-3-8b-h100, max_model_len: 8192, replicas: 2}
tenants:
  - name: g
    share: 0
    arrivals: {process: poisson, rate_rps: 10, trace: t.csv}
  - name: b
    share: 0
    arrivals: {process: poisson, rate_rps: 100, start_s: 0, end_s: 0.5, trace: t.csv}
)";
  LoadConfig c;
  c.scenario_path = dir.Write("w.yaml", text);
  c.rate_rps = 40;
  auto p = BuildPlan(c);
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_NEAR(static_cast<double>(p->requests.size()), 160, 5 * std::sqrt(160.0));
}

TEST(LoadPlanTest, ScenarioErrorNamesFileLineAndField) {
  TempDir dir;
  dir.Write("t.csv", PlainTrace(20, 1.0));
  std::string text = kScenario;
  text.replace(text.find("rate_rps: 40"), 12, "rate_rps: fast");
  LoadConfig c;
  c.scenario_path = dir.Write("broken.yaml", text);
  auto p = BuildPlan(c);
  ASSERT_FALSE(p.ok());
  const std::string m = p.status().message();
  EXPECT_NE(m.find("broken.yaml:8:"), std::string::npos) << m;
  EXPECT_NE(m.find("workload.rate_rps"), std::string::npos) << m;
}

// A rate schedule is planned at its rates (not the default 1 req/s), and a stream with a seed
// of its own plans exactly the arrivals the simulator runs for the same scenario.
TEST(LoadPlanTest, ScenarioRateScheduleAndStreamSeedMatchTheSimulator) {
  TempDir dir;
  dir.Write("t.csv", PlainTrace(20, 1.0));
  const std::string head = R"(name: sched
duration_s: 20
pools:
  - {name: p, profile: llama-3-8b-h100, max_model_len: 8192, replicas: 1}
tenants:
  - name: a
    arrivals:
)";
  struct Case {
    std::string arrivals;
    size_t at_least;
  };
  for (const auto& [arrivals, at_least] : {
           Case{std::string("      process: poisson\n"
                            "      rate_schedule: [{at_s: 0, rps: 10}, {at_s: 20, rps: 90}]\n"
                            "      seed: 7\n      trace: t.csv\n"),
                400},
           Case{std::string("      process: onoff\n      rate_rps: 30\n      on_mean_s: 2\n"
                            "      off_mean_s: 3\n      seed: 9\n      trace: t.csv\n"),
                50},
       }) {
    LoadConfig c;
    c.scenario_path = dir.Write("s.yaml", head + arrivals);
    auto p = BuildPlan(c);
    ASSERT_TRUE(p.ok()) << p.status().message();
    auto sc = scenario::LoadScenarioFile(c.scenario_path);
    ASSERT_TRUE(sc.ok()) << sc.status().message();
    auto sim = sim::RunSimulation(sc->config, {});
    ASSERT_TRUE(sim.ok()) << sim.status().message();
    // The schedule's mean is 50 req/s: ~1000 requests over 20 s (the default rate gives ~20).
    EXPECT_GE(p->requests.size(), at_least) << arrivals;
    EXPECT_EQ(static_cast<int64_t>(p->requests.size()), sim->requests) << arrivals;
    // --rate scales the schedule: 100 req/s on average is twice the requests.
    c.rate_rps = 100;
    auto fast = BuildPlan(c);
    ASSERT_TRUE(fast.ok()) << fast.status().message();
    EXPECT_NEAR(static_cast<double>(fast->requests.size()),
                2.0 * static_cast<double>(p->requests.size()),
                0.25 * static_cast<double>(p->requests.size()))
        << arrivals;
  }
}

TEST(LoadConfigTest, HeaderFlag) {
  auto h = ParseHeaderFlag("x-portkey-provider: openai");
  ASSERT_TRUE(h.ok()) << h.status().message();
  EXPECT_EQ(h->first, "x-portkey-provider");
  EXPECT_EQ(h->second, "openai");
  h = ParseHeaderFlag("x-custom-host:http://127.0.0.1:1/v1");
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->second, "http://127.0.0.1:1/v1");
  EXPECT_FALSE(ParseHeaderFlag("no colon").ok());
  EXPECT_FALSE(ParseHeaderFlag(": value").ok());
  EXPECT_NE(ParseHeaderFlag("bad name: v").status().message().find("not a valid header name"),
            std::string::npos);
  EXPECT_FALSE(ParseHeaderFlag("x: a\r\nInjected: 1").ok());
  EXPECT_EQ(ParseHeaderFlag(std::string("x: a\0b", 6)).status().message(),
            "--header: the value of x must not contain control characters (CR, LF...)");
  EXPECT_TRUE(ParseHeaderFlag("x: a\tb").ok());  // a tab is allowed in a header value
}

// Keys and scenario names go into the request head: CR, LF and other control characters would
// split it (header injection), so they are refused by flag or by file, line and field.
TEST(LoadConfigTest, ControlCharactersInHeaderValuesAreRefused) {
  for (const char* flag : {"t=sk-1\r\nX-Injected=yes:1", "t=sk\n1", "t=sk\x7f", "t\r=sk"}) {
    auto k = ParseKeyFlag(flag);
    ASSERT_FALSE(k.ok()) << flag;
    EXPECT_EQ(k.status().message(),
              "--key: NAME=KEY must not contain control characters (CR, LF...): the key is sent "
              "as a header value");
  }
  LoadConfig c;
  c.trace_path = "t.csv";
  c.keys = {{"t", "sk-1\r\nX: y", 1}};
  EXPECT_NE(c.Validate().message().find("--key: NAME=KEY must not contain control characters"),
            std::string::npos);

  TempDir dir;
  dir.Write("t.csv", PlainTrace(5, 1.0));
  for (const auto& [from, to, field] :
       {std::tuple<std::string, std::string, std::string>{
            "name: acme", "name: \"acme\\r\\nX-Injected: yes\"", "s.yaml:14: tenants[0].name"},
        {"name: code", "name: \"code\\nX: 1\"", "s.yaml:11: categories[0].name"}}) {
    std::string text = kScenario;
    text.replace(text.find(from), from.size(), to);
    LoadConfig sc;
    sc.scenario_path = dir.Write("s.yaml", text);
    auto p = BuildPlan(sc);
    ASSERT_FALSE(p.ok()) << text;
    EXPECT_EQ(p.status().message(),
              dir.Path(field) +
                  ": must not contain control characters (CR, LF...): it is sent as an HTTP "
                  "header value")
        << text;
  }
}

TEST(LoadConfigTest, FlagParsers) {
  auto k = ParseKeyFlag("acme=sk-1:0.25");
  ASSERT_TRUE(k.ok());
  EXPECT_EQ(k->name, "acme");
  EXPECT_EQ(k->key, "sk-1");
  EXPECT_EQ(k->share, 0.25);
  k = ParseKeyFlag("acme=sk-1");
  ASSERT_TRUE(k.ok());
  EXPECT_LT(k->share, 0);
  EXPECT_FALSE(ParseKeyFlag("acme").ok());
  EXPECT_FALSE(ParseKeyFlag("acme=k:x").ok());
  auto mix = ParseMixFlag("code:0.5,json:0.5");
  ASSERT_TRUE(mix.ok());
  EXPECT_EQ((*mix)[1].type, ContentType::kJson);
  EXPECT_FALSE(ParseMixFlag("klingon:1").ok());
  std::string host;
  uint16_t port = 0;
  EXPECT_TRUE(ParseTarget("http://localhost:8080/", &host, &port).ok());
  EXPECT_EQ(host, "localhost");
  EXPECT_EQ(port, 8080);
  EXPECT_FALSE(ParseTarget("localhost", &host, &port).ok());
}

// Shares are finite numbers: "inf" (strtod took it) gave that tenant or category no traffic,
// and shares whose sum overflows gave all of it to the last one.
TEST(LoadConfigTest, SharesAreFiniteAndSoIsTheirSum) {
  for (const char* flag : {"a=k:inf", "a=k:nan", "a=k:0x10", "a=k: 1"}) {
    EXPECT_FALSE(ParseKeyFlag(flag).ok()) << flag;
  }
  EXPECT_FALSE(ParseMixFlag("code:inf,prose:1").ok());
  LoadConfig c;
  c.trace_path = "t.csv";
  c.target = "127.0.0.1:1";
  c.keys = {{"a", "k", 1e308}, {"b", "k2", 1e308}};
  EXPECT_EQ(c.Validate().message(), "--key: the shares' sum is not finite");
  c.keys = {{"a", "k", 1}};
  c.mix = {{"code", ContentType::kCode, 1e308}, {"prose", ContentType::kProse, 1e308}};
  EXPECT_EQ(c.Validate().message(), "--mix: the shares' sum is not finite");
}

// The headers the generator writes itself cannot be given again (a second Content-Length
// broke every request), nor Authorization beside --key.
TEST(LoadConfigTest, TheGeneratorsOwnHeadersAreRefused) {
  LoadConfig c;
  c.trace_path = "t.csv";
  c.target = "127.0.0.1:1";
  for (const char* name : {"Content-Length", "transfer-encoding", "Host", "Content-Type"}) {
    c.headers = {{name, "1"}};
    EXPECT_EQ(c.Validate().message(),
              std::string("--header: ") + name + " is the generator's own header");
  }
  c.headers = {{"Authorization", "Bearer x"}};
  EXPECT_TRUE(c.Validate().ok());  // without --key it is the way to send one
  c.keys = {{"a", "k", 1}};
  EXPECT_EQ(c.Validate().message(), "--header: Authorization with --key: the key is sent as it");
}

}  // namespace
}  // namespace tokenpool::load
