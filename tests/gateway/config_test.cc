// Gateway YAML config: a good file and the errors of bad ones (file, line, path, rule).
#include "gateway/config.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "gateway/demo.h"
#include "gateway/sha256.h"
#include "gateway/state.h"
#include "tokenpool/clock.h"

namespace tokenpool::gateway {
namespace {

const std::string kKey = Sha256Hex("sk-test");

std::string Good() {
  return "listen: {host: 127.0.0.1, port: 0}\n"
         "models: [m]\n"
         "pools:\n"
         "  - name: short\n"
         "    model: m\n"
         "    profile: llama-3-8b-h100\n"
         "    max_model_len: 8192\n"
         "    replicas: {min: 1, max: 2}\n"
         "    backends: [\"http://127.0.0.1:9001\"]\n"
         "tenants:\n"
         "  - name: acme\n"
         "    keys: [" +
         kKey +
         "]\n"
         "entitlements:\n"
         "  - tenant: acme\n"
         "    pool: short\n"
         "    class: guaranteed\n"
         "    guarantee: {token_rate: 100, kv_tokens: 8192, concurrency: 2}\n"
         "    burst: {token_rate: 200, kv_tokens: 16384, concurrency: 4}\n"
         "    slo: {ttft_ms: 1000, max_queue_wait_ms: 500}\n"
         "    quotas: {day: 1000000}\n"
         "estimator: {mode: static}\n"
         "router: {mode: spillover, spill_utilization: 0.8}\n"
         "limits: {client_idle_timeout_s: 5}\n";
}

std::string Replace(std::string s, const std::string& from, const std::string& to) {
  const size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

std::string ErrorOf(const std::string& yaml) {
  Result<GatewayConfig> c = ParseGatewayConfig(yaml, "gateway.yaml");
  return c.ok() ? std::string("<ok>") : c.status().message();
}

TEST(GatewayConfigTest, ReadsAGoodFile) {
  Result<GatewayConfig> c = ParseGatewayConfig(Good(), "gateway.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->listen.port, 0);
  ASSERT_EQ(c->pools.size(), 1u);
  EXPECT_EQ(c->pools[0].max_model_len, 8192);
  EXPECT_EQ(c->pools[0].max_replicas, 2);
  EXPECT_EQ(c->pools[0].backends[0].port, 9001);
  EXPECT_EQ(c->pools[0].backends[0].authority, "127.0.0.1:9001");
  EXPECT_EQ(c->tenants[0].key_sha256[0], kKey);
  ASSERT_EQ(c->entitlements.size(), 1u);
  const EntitlementSpec& e = c->entitlements[0].spec;
  EXPECT_EQ(e.cls, EntitlementClass::kGuaranteed);
  EXPECT_EQ(e.burst.kv_tokens, 16384);
  EXPECT_EQ(e.slo.max_queue_wait, Milliseconds(500));
  EXPECT_EQ(e.quotas.limit[static_cast<int>(QuotaWindow::kDay)], 1000000);
  EXPECT_EQ(c->estimator_mode, "static");
  EXPECT_DOUBLE_EQ(c->router.spill_utilization, 0.8);
  EXPECT_DOUBLE_EQ(c->limits.client_idle_timeout_s, 5);
  EXPECT_EQ(c->estimator.linear.sample_after, LinearConfig{}.sample_after);
  EXPECT_EQ(c->estimator.linear.sample_every, LinearConfig{}.sample_every);
  c = ParseGatewayConfig(
      Replace(Good(), "mode: static", "mode: linear, linear: {sample_after: 100, sample_every: 1}"),
      "gateway.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->estimator.linear.sample_after, 100);
  EXPECT_EQ(c->estimator.linear.sample_every, 1);
}

TEST(GatewayConfigTest, BadKeyNamesFileLinePathAndRule) {
  EXPECT_EQ(ErrorOf(Replace(Good(), kKey, "abc")),
            "gateway.yaml:12: tenants[0].keys[0]: must be 64 hex characters (sha256)");
}

// A key given twice is refused (yaml-cpp's lookup took the first one in silence).
TEST(GatewayConfigTest, RepeatedKeysAreRefused) {
  EXPECT_EQ(ErrorOf(Replace(Good(), "port: 0", "port: 0, port: 8080")),
            "gateway.yaml:1: listen.port: appears twice in this mapping");
  // A key listed twice by one tenant is named as such (it said "given to another tenant").
  EXPECT_EQ(ErrorOf(Replace(Good(), "keys: [" + kKey, "keys: [" + kKey + ", " + kKey)),
            "gateway.yaml:12: tenants[0].keys[1]: this key is listed twice");
}

// A tenant's name is a path segment of the admin API, a metrics label and a log field: not
// empty, and without control characters (a newline in it split its log lines).
TEST(GatewayConfigTest, TenantNamesAreNonEmptyAndPrintable) {
  EXPECT_EQ(ErrorOf(Replace(Good(), "- name: acme", "- name: \"\"")),
            "gateway.yaml:11: tenants[0].name: must be non-empty, without control characters");
  EXPECT_EQ(ErrorOf(Replace(Good(), "- name: acme", "- name: \"ac\\nme\"")),
            "gateway.yaml:11: tenants[0].name: must be non-empty, without control characters");
}

TEST(GatewayConfigTest, Errors) {
  // The field is named once (it read "entitlements[0].class: class: must be...").
  EXPECT_EQ(ErrorOf(Replace(Good(), "class: guaranteed", "class: gold")),
            "gateway.yaml:16: entitlements[0].class: must be one of guaranteed, elastic, spot; "
            "got \"gold\"");
  EXPECT_EQ(ErrorOf(Replace(Good(), "mode: spillover", "mode: bogus")).substr(0, 45),
            "gateway.yaml:22: router.mode: must be one of ");
  EXPECT_EQ(ErrorOf(Replace(Good(), "pool: short", "pool: nope")),
            "gateway.yaml:15: entitlements[0].pool: unknown pool \"nope\"");
  EXPECT_EQ(ErrorOf(Replace(Good(), "tenant: acme", "tenant: bob")),
            "gateway.yaml:14: entitlements[0].tenant: unknown tenant \"bob\"");
  EXPECT_EQ(ErrorOf(Replace(Good(), "    model: m\n", "    model: x\n")),
            "gateway.yaml:5: pools[0].model: unknown model \"x\" (not in models)");
  EXPECT_EQ(ErrorOf(Replace(Good(), "http://127.0.0.1:9001", "https://a:1")),
            "gateway.yaml:9: pools[0].backends[0]: expected http://HOST:PORT, got \"https://a:1\"");
  EXPECT_EQ(ErrorOf(Replace(Good(), "max: 2", "max: 0")),
            "gateway.yaml:8: pools[0].replicas.max: must be >= min");
  EXPECT_EQ(ErrorOf(Replace(Good(), "port: 0", "port: 70000")),
            "gateway.yaml:1: listen.port: must be in [0, 65535]");
  EXPECT_EQ(ErrorOf(Replace(Good(), "estimator:", "estimatr:")).substr(0, 38),
            "gateway.yaml:21: estimatr: unknown fie");
  EXPECT_EQ(ErrorOf(Replace(Good(), "kv_tokens: 16384", "kv_tokens: 1024")),
            "gateway.yaml:14: entitlements[0].burst.kv_tokens: must be >= guarantee.kv_tokens "
            "(8192), got 1024");
  // Named by the config's own fields (before: "entitlements[0].name" for an empty tenant, and
  // the core's "slo.ttft_target: must be > 0" for a ttft_ms that the range [0, 1e12] allowed).
  EXPECT_EQ(ErrorOf(Replace(Good(), "slo: {ttft_ms: 1000", "slo: {ttft_ms: 0")),
            "gateway.yaml:19: entitlements[0].slo.ttft_ms: must be in [0.001, 1e12]");
  EXPECT_EQ(ErrorOf(Replace(Good(), "- tenant: acme\n", "- tenant: \"\"\n")),
            "gateway.yaml:14: entitlements[0].tenant: must not be empty");
  EXPECT_EQ(ErrorOf(Replace(Good(), "    class: guaranteed\n",
                            "    class: guaranteed\n    weight: 5e-324\n")),
            "gateway.yaml:14: entitlements[0].weight: must be in [0.001, 1000], got 4.94066e-324");
  EXPECT_EQ(ErrorOf(Replace(Good(), "mode: static", "mode: magic")).substr(0, 32),
            "gateway.yaml:21: estimator: esti");
  EXPECT_EQ(ErrorOf(Replace(Good(), "mode: static", "mode: linear, linear: {sample_every: 0}")),
            "gateway.yaml:21: estimator: linear.sample_every: must be >= 1");
  EXPECT_EQ(ErrorOf(Replace(Good(), "mode: static", "linear: {sample_evry: 2}")).substr(0, 55),
            "gateway.yaml:21: estimator.linear.sample_evry: unknown ");
  EXPECT_EQ(ErrorOf(Replace(Good(), "client_idle_timeout_s: 5", "client_idle_timeout_s: 0")),
            "gateway.yaml:23: limits.client_idle_timeout_s: must be in (0, 1e9] seconds");
  // Past 1e9 s, or not finite, a timeout would overflow its deadline (1e300 s cast to
  // nanoseconds was a deadline in the past): refused.
  for (const char* t : {"1e300", ".inf", ".nan", "1.1e9"}) {
    EXPECT_EQ(ErrorOf(Replace(Good(), "client_idle_timeout_s: 5",
                              std::string("client_idle_timeout_s: 5, upstream_timeout_s: ") + t)),
              "gateway.yaml:23: limits.upstream_timeout_s: must be in (0, 1e9] seconds")
        << t;
  }
  EXPECT_EQ(ErrorOf(Replace(Good(), "client_idle_timeout_s: 5", "client_idle_timeout_s: .inf")),
            "gateway.yaml:23: limits.client_idle_timeout_s: must be in (0, 1e9] seconds");
  EXPECT_EQ(ErrorOf(Replace(Good(), "client_idle_timeout_s: 5",
                            "client_idle_timeout_s: 5, drain_timeout_s: -1")),
            "gateway.yaml:23: limits.drain_timeout_s: must be in [0, 1e9] seconds");
  EXPECT_EQ(ErrorOf(Replace(Good(), "client_idle_timeout_s: 5", "client_idle_timeout_s: 1e9")),
            "<ok>");
  for (const char* t : {"0", "-1", ".inf", "1.1e9"}) {
    EXPECT_EQ(ErrorOf(Replace(Good(), "client_idle_timeout_s: 5",
                              std::string("client_idle_timeout_s: 5, send_timeout_s: ") + t)),
              "gateway.yaml:23: limits.send_timeout_s: must be in (0, 1e9] seconds")
        << t;
  }
  EXPECT_EQ(ErrorOf(Replace(Good(), "client_idle_timeout_s: 5",
                            "client_idle_timeout_s: 5, send_timeout_s: 0.5")),
            "<ok>");
  EXPECT_EQ(ErrorOf("workers: -1\n" + Good()), "gateway.yaml:1: workers: must be in [0, 256]");
  EXPECT_EQ(ErrorOf("workers: \"2\"\n" + Good()),
            "gateway.yaml:1: workers: expected an integer, got a string");
  EXPECT_EQ(ErrorOf("busy_poll_us: 2000000\n" + Good()),
            "gateway.yaml:1: busy_poll_us: must be in [0, 1000000]");
  EXPECT_EQ(ErrorOf("time_scale: 0\n" + Good()),
            "gateway.yaml:1: time_scale: must be in [0.001, 1000]");
  EXPECT_EQ(ErrorOf("time_scale: 1001\n" + Good()),
            "gateway.yaml:1: time_scale: must be in [0.001, 1000]");
  EXPECT_EQ(ErrorOf("time_scale: fast\n" + Good()),
            "gateway.yaml:1: time_scale: expected a number");
  EXPECT_EQ(ErrorOf("backend_metrics: {max_kv_usage: 1.5}\n" + Good()),
            "gateway.yaml:1: backend_metrics.max_kv_usage: must be in (0, 1]");
  EXPECT_EQ(ErrorOf("log: {requests: maybe}\n" + Good()),
            "gateway.yaml:1: log.requests: expected true or false");
  EXPECT_EQ(ErrorOf(Replace(Good(), "port: 0}", "port: 0, metrics: \"no\"}")),
            "gateway.yaml:1: listen.metrics: expected true or false");
  EXPECT_EQ(ErrorOf("log: {level: info}\n" + Good()).substr(0, 34),
            "gateway.yaml:1: log.level: unknown");
  // A YAML syntax error carries its line.
  EXPECT_EQ(ErrorOf(Replace(Good(), "models: [m]", "models: [m")).substr(0, 15), "gateway.yaml:3:");
  EXPECT_EQ(ErrorOf(""), "gateway.yaml:1: (top level): the file is empty");
}

// Backend URLs through Boost.URL: http://HOST:PORT only; an IPv6 literal connects without its
// brackets and keeps them in the Host header (before, "[::1]" was kept as the host to resolve,
// and such a backend was never reached).
TEST(GatewayConfigTest, BackendUrls) {
  Result<BackendUrl> u = ParseBackendUrl("http://[::1]:9001");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, 9001);
  EXPECT_EQ(u->authority, "[::1]:9001");
  u = ParseBackendUrl("http://vllm-0.internal:8000/");
  ASSERT_TRUE(u.ok()) << u.status().message();
  EXPECT_EQ(u->host, "vllm-0.internal");
  EXPECT_EQ(u->authority, "vllm-0.internal:8000");
  for (const char* bad : {"https://a:1", "http://a", "http://a:", "http://:80", "a:80",
                          "http://a:1/v1", "http://u@a:1", "http://a:1?x=1", "http://[::1:80"}) {
    EXPECT_FALSE(ParseBackendUrl(bad).ok()) << bad;
  }
  for (const char* port : {"http://a:0", "http://a:65536", "http://a:123456"}) {
    EXPECT_EQ(ParseBackendUrl(port).status().message(),
              "bad port in \"" + std::string(port) + "\"");
  }
}

TEST(GatewayConfigTest, AdminStateFile) {
  const std::string admin = "admin: {port: 0, token_sha256: " + Sha256Hex("a") + ", state_file: ";
  EXPECT_EQ(ErrorOf(admin + "\"\"}\n" + Good()),
            "gateway.yaml:1: admin.state_file: must be a file path, not empty");
  // Relative to the config file's directory when loaded from a file; absolute as it is.
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "state_file_test.yaml";
  std::ofstream(path) << admin << "admin.json}\n" << Good();
  Result<GatewayConfig> c = LoadGatewayConfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->admin_state_file, dir + "admin.json");
  std::ofstream(path) << admin << "/var/lib/tokenpool/admin.json}\n" << Good();
  c = LoadGatewayConfigFile(path);
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->admin_state_file, "/var/lib/tokenpool/admin.json");
  std::remove(path.c_str());
}

TEST(GatewayConfigTest, PoolApiKeyComesFromTheEnvironment) {
  unsetenv("TOKENPOOL_CONFIG_TEST_KEY");
  const std::string yaml = Replace(Good(), "    max_model_len: 8192\n",
                                   "    max_model_len: 8192\n"
                                   "    api_key_env: TOKENPOOL_CONFIG_TEST_KEY\n");
  EXPECT_EQ(ErrorOf(yaml),
            "gateway.yaml:8: pools[0].api_key_env: environment variable "
            "\"TOKENPOOL_CONFIG_TEST_KEY\" is not set or empty");
  setenv("TOKENPOOL_CONFIG_TEST_KEY", "sk-vllm", 1);
  Result<GatewayConfig> c = ParseGatewayConfig(yaml, "gateway.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->pools[0].api_key, "sk-vllm");
  EXPECT_EQ(c->pools[0].api_key_env, "TOKENPOOL_CONFIG_TEST_KEY");
  setenv("TOKENPOOL_CONFIG_TEST_KEY", "sk-a\r\nX-Evil: 1", 1);  // would split the upstream head
  EXPECT_NE(ErrorOf(yaml).find("contains a line break"), std::string::npos) << ErrorOf(yaml);
  unsetenv("TOKENPOOL_CONFIG_TEST_KEY");
  // Without api_key_env: no key.
  Result<GatewayConfig> none = ParseGatewayConfig(Good(), "gateway.yaml");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->pools[0].api_key, "");
}

TEST(GatewayConfigTest, WorkersAndLogging) {
  Result<GatewayConfig> c = ParseGatewayConfig(Good(), "gateway.yaml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->workers, 0);  // one per hardware thread
  EXPECT_TRUE(c->log_requests);
  EXPECT_EQ(c->busy_poll_us, 0);  // blocks at once
  EXPECT_EQ(c->time_scale, 1.0);  // real time
  c = ParseGatewayConfig(
      "workers: 3\nbusy_poll_us: 500\ntime_scale: 2.5\nlog: {requests: false}\n" + Good(),
      "gateway.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  EXPECT_EQ(c->workers, 3);
  EXPECT_EQ(c->busy_poll_us, 500);
  EXPECT_EQ(c->time_scale, 2.5);
  EXPECT_FALSE(c->log_requests);
}

// The admin API's body: one entitlements entry, JSON, the file's rules.
TEST(GatewayConfigTest, EntitlementEntryFromJson) {
  Result<EntitlementEntry> e = ParseEntitlementEntry(
      R"({"tenant":"a","pool":"p","class":"elastic","guarantee":{"token_rate":10,"kv_tokens":512,"concurrency":1}})",
      "body");
  ASSERT_TRUE(e.ok()) << e.status().message();
  EXPECT_EQ(e->tenant, "a");
  EXPECT_EQ(e->spec.cls, EntitlementClass::kElastic);
  EXPECT_EQ(e->spec.burst.concurrency, 1);  // burst defaults to the guarantee
  e = ParseEntitlementEntry(R"({"tenant":"a","pool":"p"})", "body");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("entitlement.class"), std::string::npos)
      << e.status().message();
  EXPECT_FALSE(ParseEntitlementEntry("[1,2]", "body").ok());
  e = ParseEntitlementEntry(R"({"tenant":"a","pool":"p","class":"spot","colour":1})", "body");
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("entitlement.colour: unknown field"), std::string::npos)
      << e.status().message();
}

TEST(GatewayConfigTest, StateRefusesGuaranteesBeyondThePool) {
  Result<GatewayConfig> c = ParseGatewayConfig(
      Replace(Good(), "concurrency: 2}", "concurrency: 100000}"), "gateway.yaml");
  // The burst is smaller than the guarantee now, so the entitlement itself is refused first.
  ASSERT_FALSE(c.ok());
  Result<GatewayConfig> big =
      ParseGatewayConfig(Replace(Replace(Good(), "concurrency: 2}", "concurrency: 100000}"),
                                 "concurrency: 4}", "concurrency: 100000}"),
                         "gateway.yaml");
  ASSERT_TRUE(big.ok()) << big.status().message();
  ManualClock clock;
  Result<std::unique_ptr<GatewayState>> s = GatewayState::Create(*big, clock);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(s.status().message().starts_with(
      "gateway.yaml:14: entitlements[0]: tenant \"acme\" on pool \"short\": sum of guarantees "
      "would exceed pool \"short\""))
      << s.status().message();
}

TEST(GatewayConfigTest, DemoConfigIsValidAndAuthenticates) {
  Result<GatewayConfig> c =
      ParseGatewayConfig(DemoConfigYaml("127.0.0.1", 8080, 8081, 9001, 9002), "demo.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ManualClock clock;
  Result<std::unique_ptr<GatewayState>> s = GatewayState::Create(*c, clock);
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ((*s)->FindTenant("Bearer " + std::string(kDemoKey)), 0);
  EXPECT_EQ((*s)->FindTenant("Bearer " + std::string(kFreeKey)), 1);
  EXPECT_EQ((*s)->FindTenant("Bearer nope"), -1);
  EXPECT_EQ((*s)->FindTenant(""), -1);
}

TEST(GatewayStateTest, ParseVllmMetrics) {
  const BackendLoad l = ParseVllmMetrics(
      "# HELP vllm:kv_cache_usage_perc KV-cache usage.\n"
      "# TYPE vllm:kv_cache_usage_perc gauge\n"
      "vllm:kv_cache_usage_perc{engine=\"0\",model_name=\"m\"} 0.25\n"
      "vllm:kv_cache_usage_perc{engine=\"1\",model_name=\"m\"} 0.75\n"
      "vllm:num_requests_running{engine=\"0\"} 3\n"
      "vllm:num_requests_running{engine=\"1\"} 4\n"
      "vllm:num_requests_waiting 2\n"
      "vllm:num_requests_waiting_by_reason{reason=\"capacity\"} 9\n"
      "garbage line\n");
  EXPECT_TRUE(l.found);
  EXPECT_DOUBLE_EQ(l.kv_usage, 0.75);  // the fullest engine
  EXPECT_DOUBLE_EQ(l.running, 7);
  EXPECT_DOUBLE_EQ(l.waiting, 2);
  const BackendLoad old = ParseVllmMetrics("vllm:gpu_cache_usage_perc{model_name=\"m\"} 0.5\n");
  EXPECT_DOUBLE_EQ(old.kv_usage, 0.5);
  EXPECT_DOUBLE_EQ(old.running, -1);
  EXPECT_FALSE(ParseVllmMetrics("up 1\n").found);
}

// Least outstanding tokens among healthy instances with KV room; a full one only when all are.
TEST(GatewayStateTest, PickBackendPrefersKvRoom) {
  std::string y = Good();
  y = Replace(y, "backends: [\"http://127.0.0.1:9001\"]",
              "backends: [\"http://127.0.0.1:9001\", \"http://127.0.0.1:9002\", "
              "\"http://127.0.0.1:9003\"]");
  y = Replace(y, "replicas: {min: 1, max: 2}", "replicas: {min: 1, max: 3}");
  Result<GatewayConfig> c = ParseGatewayConfig(y, "gateway.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ManualClock clock;
  Result<std::unique_ptr<GatewayState>> r = GatewayState::Create(*c, clock);
  ASSERT_TRUE(r.ok()) << r.status().message();
  GatewayState& s = **r;
  PoolState& ps = s.pool(0);
  ps.AddOutstanding(0, 10);
  ps.AddOutstanding(1, 500);
  ps.AddOutstanding(2, 900);
  EXPECT_EQ(s.PickBackend(0, clock.Now()), 0);  // no load known: least outstanding
  BackendLoad full{.found = true, .kv_usage = 0.99, .running = 8, .waiting = 3};
  BackendLoad roomy{.found = true, .kv_usage = 0.40, .running = 2, .waiting = 0};
  s.RecordBackendMetrics(0, 0, &full, clock.Now());
  s.RecordBackendMetrics(0, 1, &roomy, clock.Now());
  s.RecordBackendMetrics(0, 2, &roomy, clock.Now());
  EXPECT_EQ(s.PickBackend(0, clock.Now()), 1);
  s.RecordBackendMetrics(0, 1, nullptr, clock.Now());  // its /metrics failed: unhealthy
  EXPECT_EQ(s.PickBackend(0, clock.Now()), 2);
  s.RecordBackendMetrics(0, 2, &full, clock.Now());
  EXPECT_EQ(s.PickBackend(0, clock.Now()), 0);  // all healthy ones full: least outstanding
  clock.Advance(GatewayState::kUnhealthyFor);
  EXPECT_EQ(s.PickBackend(0, clock.Now()), 1);  // back after kUnhealthyFor, with room
  s.RecordBackendMetrics(0, 1, &roomy, clock.Now());
  EXPECT_EQ(s.PickBackend(0, clock.Now()), 1);
  s.RecordBackendMetrics(0, 0, &roomy, clock.Now());
  EXPECT_EQ(s.PickBackend(0, clock.Now()), 0);  // 10 < 500
  // Requests taken and let go between recounts move the choice at once.
  ps.AddOutstanding(0, 1000);
  EXPECT_EQ(s.PickBackend(0, clock.Now()), 1);  // 1,010 > 500
  ps.AddOutstanding(1, 600);
  EXPECT_EQ(s.PickBackend(0, clock.Now()), 0);  // 1,010 < 1,100
  ps.AddOutstanding(0, -1010);
  ps.AddOutstanding(1, -1100);
  EXPECT_EQ(s.PickBackend(0, clock.Now()), 0);  // a tie: the lowest index
  s.MarkUnhealthy(0, 0, clock.Now());
  EXPECT_EQ(s.PickBackend(0, clock.Now()), 1);
  s.MarkUnhealthy(0, 1, clock.Now());
  s.MarkUnhealthy(0, 2, clock.Now());
  EXPECT_EQ(s.PickBackend(0, clock.Now()), -1);  // none healthy
}

TEST(GatewayStateTest, ReloadAppliesTenantsAndRefusesTheRest) {
  ManualClock clock;
  Result<GatewayConfig> c = ParseGatewayConfig(Good(), "gateway.yaml");
  ASSERT_TRUE(c.ok()) << c.status().message();
  Result<std::unique_ptr<GatewayState>> s = GatewayState::Create(*c, clock);
  ASSERT_TRUE(s.ok()) << s.status().message();
  GatewayState& state = **s;
  // Listener changes need a restart.
  Result<GatewayConfig> moved = ParseGatewayConfig(Replace(Good(), "port: 0", "port: 1"), "g.yaml");
  ASSERT_TRUE(moved.ok());
  Status r = state.Reload(*moved);
  EXPECT_EQ(r.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.message().find("listen: changed"), std::string::npos) << r.message();
  // So does busy polling (the worker loops read it once, at start).
  Result<GatewayConfig> busy = ParseGatewayConfig("busy_poll_us: 100\n" + Good(), "g.yaml");
  ASSERT_TRUE(busy.ok());
  r = state.Reload(*busy);
  EXPECT_EQ(r.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.message().find("busy_poll_us: changed"), std::string::npos) << r.message();
  // And the pools' clock (its rate windows and deadlines would jump).
  Result<GatewayConfig> scaled = ParseGatewayConfig("time_scale: 4\n" + Good(), "g.yaml");
  ASSERT_TRUE(scaled.ok());
  r = state.Reload(*scaled);
  EXPECT_EQ(r.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(r.message().find("time_scale: changed"), std::string::npos) << r.message();
  // Guarantees beyond the pool are refused; the running entitlements stay.
  Result<GatewayConfig> big =
      ParseGatewayConfig(Replace(Replace(Good(), "concurrency: 2}", "concurrency: 100000}"),
                                 "concurrency: 4}", "concurrency: 100000}"),
                         "g.yaml");
  ASSERT_TRUE(big.ok());
  EXPECT_FALSE(state.Reload(*big).ok());
  // A new tenant with its entitlement.
  const std::string key2 = Sha256Hex("sk-two");
  std::string two = Replace(Good(), "entitlements:\n",
                            "  - name: two\n    keys: [" + key2 +
                                "]\nentitlements:\n  - {tenant: two, pool: short, class: spot, "
                                "burst: {token_rate: 10, kv_tokens: 100, concurrency: 1}}\n");
  Result<GatewayConfig> next = ParseGatewayConfig(two, "g.yaml");
  ASSERT_TRUE(next.ok()) << next.status().message();
  ASSERT_TRUE(state.Reload(*next).ok());
  EXPECT_EQ(state.FindTenant("Bearer sk-two"), 1);
  EXPECT_EQ(state.FindTenant("Bearer sk-test"), 0);
  EXPECT_TRUE(state.Entitlement(0, 1).valid());
  EXPECT_EQ(state.Class(0, 1), EntitlementClass::kSpot);
  // And removed again.
  ASSERT_TRUE(state.Reload(*c).ok());
  EXPECT_EQ(state.FindTenant("Bearer sk-two"), -1);
}

// A reload in which two tenants trade a dimension at the pool's capacity (one more rate and
// less KV, the other the reverse) applies: the new set fits, though either change alone would
// not. Before, the entitlements changed one at a time and the reload was refused half applied:
// the changes before the failing one (here the third tenant's burst) stayed in force while the
// config said otherwise.
TEST(GatewayStateTest, ReloadAppliesATradeBetweenTenantsAsOneChange) {
  ManualClock clock;
  Result<GatewayConfig> base = ParseGatewayConfig(Good(), "gateway.yaml");
  ASSERT_TRUE(base.ok()) << base.status().message();
  Result<std::unique_ptr<GatewayState>> probe = GatewayState::Create(*base, clock);
  ASSERT_TRUE(probe.ok());
  const ResourceVector cap = (*probe)->pool(0).pool->Snapshot().max_capacity;
  // a and b each hold `rate` of the pool's token rate and the rest of its KV.
  const auto config = [&](double a_rate, double b_rate, int c_burst) {
    const auto g = [&](double rate, double kv) {
      return "{token_rate: " + std::to_string(static_cast<int64_t>(cap.token_rate * rate)) +
             ", kv_tokens: " + std::to_string(static_cast<int64_t>(cap.kv_tokens * kv)) +
             ", concurrency: 1}";
    };
    std::string y = Good();
    y = y.substr(0, y.find("tenants:\n"));
    y += "tenants:\n  - {name: a, keys: [" + Sha256Hex("sk-a") + "]}\n  - {name: b, keys: [" +
         Sha256Hex("sk-b") + "]}\n  - {name: c, keys: [" + Sha256Hex("sk-c") + "]}\n";
    y += "entitlements:\n";
    y += "  - {tenant: a, pool: short, class: elastic, guarantee: " + g(a_rate, 1 - a_rate) + "}\n";
    y += "  - {tenant: b, pool: short, class: elastic, guarantee: " +
         g(b_rate, std::max(0.05, 1 - b_rate)) + "}\n";
    y += "  - {tenant: c, pool: short, class: spot, burst: {token_rate: 10, kv_tokens: 100, "
         "concurrency: " +
         std::to_string(c_burst) + "}}\n";
    Result<GatewayConfig> parsed = ParseGatewayConfig(y, "gateway.yaml");
    EXPECT_TRUE(parsed.ok()) << parsed.status().message();
    return *parsed;
  };
  Result<std::unique_ptr<GatewayState>> s = GatewayState::Create(config(0.75, 0.25, 1), clock);
  ASSERT_TRUE(s.ok()) << s.status().message();
  GatewayState& state = **s;
  const EntitlementRef a = state.Entitlement(0, 0);
  ASSERT_TRUE(state.Reload(config(0.25, 0.75, 5)).ok());
  TokenPool& pool = *state.pool(0).pool;
  EXPECT_EQ(state.Entitlement(0, 0), a);  // the same entitlement, its running state kept
  EXPECT_EQ(pool.SnapshotEntitlement(a).value().guarantee.token_rate,
            static_cast<int64_t>(cap.token_rate * 0.25));
  EXPECT_EQ(pool.SnapshotEntitlement(state.Entitlement(0, 1)).value().guarantee.kv_tokens,
            static_cast<int64_t>(cap.kv_tokens * 0.25));
  EXPECT_EQ(pool.SnapshotEntitlement(state.Entitlement(0, 2)).value().burst.concurrency, 5);
  // Over the pool (rate 1.5 of it): refused, and nothing of it applied (c's burst stays 5).
  EXPECT_FALSE(state.Reload(config(0.25, 1.25, 7)).ok());
  EXPECT_EQ(pool.SnapshotEntitlement(state.Entitlement(0, 2)).value().burst.concurrency, 5);
  EXPECT_EQ(pool.SnapshotEntitlement(a).value().guarantee.token_rate,
            static_cast<int64_t>(cap.token_rate * 0.25));
}

TEST(GatewayStateTest, ReloadRetiresAndReusesBackendSlots) {
  ManualClock clock;
  const auto with = [](const std::string& replicas, const std::string& backends) {
    return ParseGatewayConfig(Replace(Replace(Good(), "replicas: {min: 1, max: 2}", replicas),
                                      "[\"http://127.0.0.1:9001\"]", backends),
                              "g.yaml");
  };
  Result<GatewayConfig> c = with("replicas: {min: 1, max: 2}", "[\"http://127.0.0.1:9001\"]");
  ASSERT_TRUE(c.ok());
  Result<std::unique_ptr<GatewayState>> s = GatewayState::Create(*c, clock);
  ASSERT_TRUE(s.ok()) << s.status().message();
  GatewayState& state = **s;
  PoolState& pool = state.pool(0);
  const double one = pool.pool->Capacity().concurrency;
  // 9001 -> 9001 + 9002: a new slot, twice the capacity.
  Result<GatewayConfig> two =
      with("replicas: {min: 1, max: 2}", "[\"http://127.0.0.1:9001\", \"http://127.0.0.1:9002\"]");
  ASSERT_TRUE(two.ok());
  bool changed = false;
  ASSERT_TRUE(state.Reload(*two, &changed).ok());
  EXPECT_TRUE(changed);
  ASSERT_EQ(pool.backends.size(), 2u);
  EXPECT_EQ(pool.backends[1].url.port, 9002);
  EXPECT_EQ(pool.pool->Capacity().concurrency, 2 * one);
  EXPECT_EQ(pool.pool->Snapshot().replicas, 2);
  // 9001 removed while a request runs on it: retired, kept, not picked, not counted.
  pool.backends[0].in_flight = 1;
  Result<GatewayConfig> only2 = with("replicas: {min: 1, max: 2}", "[\"http://127.0.0.1:9002\"]");
  ASSERT_TRUE(only2.ok());
  ASSERT_TRUE(state.Reload(*only2).ok());
  EXPECT_TRUE(pool.backends[0].retired);
  EXPECT_EQ(pool.backends[0].generation, 1u);
  EXPECT_EQ(state.PickBackend(0, clock.Now()), 1);
  EXPECT_EQ(state.ActiveBackends(0), 1);
  EXPECT_EQ(pool.pool->Capacity().concurrency, one);
  // A new URL while 9001's request still runs: a third slot ...
  Result<GatewayConfig> with3 =
      with("replicas: {min: 1, max: 2}", "[\"http://127.0.0.1:9002\", \"http://127.0.0.1:9003\"]");
  ASSERT_TRUE(with3.ok());
  ASSERT_TRUE(state.Reload(*with3).ok());
  ASSERT_EQ(pool.backends.size(), 3u);
  EXPECT_EQ(pool.backends[2].url.port, 9003);
  // ... and once it has finished, the next new URL takes 9001's slot, a new generation.
  pool.backends[0].in_flight = 0;
  Result<GatewayConfig> with4 =
      with("replicas: {min: 1, max: 2}", "[\"http://127.0.0.1:9002\", \"http://127.0.0.1:9004\"]");
  ASSERT_TRUE(with4.ok());
  ASSERT_TRUE(state.Reload(*with4).ok());
  ASSERT_EQ(pool.backends.size(), 3u);
  EXPECT_EQ(pool.backends[0].url.port, 9004);
  EXPECT_FALSE(pool.backends[0].retired);
  EXPECT_EQ(pool.backends[0].generation, 2u);
  EXPECT_TRUE(pool.backends[2].retired);  // 9003
  // 9002 and 9004 retired (nothing in flight), then a new URL listed before the returning one:
  // the returning URL still gets its own slot back, the new one takes another retired slot.
  ASSERT_TRUE(state.Reload(*c).ok());  // 9001 only
  EXPECT_EQ(state.ActiveBackends(0), 1);
  Result<GatewayConfig> back =
      with("replicas: {min: 1, max: 2}", "[\"http://127.0.0.1:9009\", \"http://127.0.0.1:9002\"]");
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(state.Reload(*back).ok());
  ASSERT_EQ(pool.backends.size(), 3u);
  EXPECT_EQ(pool.backends[1].url.port, 9002);  // its own slot
  EXPECT_FALSE(pool.backends[1].retired);
  EXPECT_EQ(state.ActiveBackends(0), 2);
  // A URL listed twice is two replicas (two slots); once again, one of them is retired.
  Result<GatewayConfig> twice =
      with("replicas: {min: 1, max: 2}", "[\"http://127.0.0.1:9002\", \"http://127.0.0.1:9002\"]");
  ASSERT_TRUE(twice.ok());
  ASSERT_TRUE(state.Reload(*twice).ok());
  EXPECT_EQ(state.ActiveBackends(0), 2);
  EXPECT_EQ(pool.pool->Snapshot().replicas, 2);
  for (const Backend& b : pool.backends) EXPECT_TRUE(b.retired || b.url.port == 9002);
  ASSERT_TRUE(state.Reload(*only2).ok());
  EXPECT_EQ(state.ActiveBackends(0), 1);
  EXPECT_EQ(pool.pool->Snapshot().replicas, 1);
  // The replica range reloads too, and the promise follows its maximum: a range whose maximum
  // cannot hold acme's guarantee is refused, and nothing changes.
  Result<GatewayConfig> wide = with("replicas: {min: 1, max: 3}", "[\"http://127.0.0.1:9002\"]");
  ASSERT_TRUE(wide.ok());
  ASSERT_TRUE(state.Reload(*wide).ok());
  EXPECT_EQ(pool.pool->config().max_replicas, 3);
  EXPECT_EQ(state.ActiveBackends(0), 1);
  Result<GatewayConfig> greedy = ParseGatewayConfig(
      Replace(Replace(Replace(Good(), "replicas: {min: 1, max: 2}", "replicas: {min: 1, max: 1}"),
                      "concurrency: 2}", "concurrency: 60}"),
              "concurrency: 4}", "concurrency: 60}"),
      "g.yaml");
  ASSERT_TRUE(greedy.ok());
  const Status refused = state.Reload(*greedy);
  EXPECT_EQ(refused.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(refused.message().find("sum of guarantees would exceed pool \"short\" at "
                                   "max_replicas=1 on concurrency"),
            std::string::npos)
      << refused.message();
  EXPECT_EQ(pool.pool->config().max_replicas, 3);
  EXPECT_EQ(state.ActiveBackends(0), 1);
  EXPECT_EQ(pool.backends[1].url.port, 9002);
}

TEST(GatewayConfigTest, Sha256) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // The per-thread context is reset between digests: the same answers again, and the empty
  // input (FIPS 180-2 vectors).
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  std::string other;
  std::thread t([&] { other = Sha256Hex("abc"); });
  t.join();
  EXPECT_EQ(other, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

}  // namespace
}  // namespace tokenpool::gateway
