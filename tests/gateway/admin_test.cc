// The admin API's entitlement changes against reloads of the config file: the API's last word
// on an entitlement stands until the file changes that same entitlement.
#include "gateway/admin.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/config.h"
#include "gateway/sha256.h"
#include "gateway/state.h"
#include "tokenpool/clock.h"

namespace tokenpool::gateway {
namespace {

// Two tenants on one pool; `acme` has an entitlement in the file, `beta` has none.
std::string File(const std::string& acme_guarantee, bool with_beta = true) {
  std::string y =
      "listen: {host: 127.0.0.1, port: 0}\n"
      "models: [m]\n"
      "pools:\n"
      "  - {name: short, model: m, profile: llama-3-8b-h100, max_model_len: 8192,\n"
      "     replicas: {min: 1, max: 2}, backends: [\"http://127.0.0.1:9001\"]}\n"
      "tenants:\n"
      "  - {name: acme, keys: [" +
      Sha256Hex("sk-acme") + "]}\n";
  if (with_beta) y += "  - {name: beta, keys: [" + Sha256Hex("sk-beta") + "]}\n";
  y += "entitlements:\n"
       "  - {tenant: acme, pool: short, class: guaranteed, guarantee: " +
       acme_guarantee + "}\n";
  return y;
}

constexpr const char* kAcme1 = "{token_rate: 100, kv_tokens: 8192, concurrency: 2}";
// A PUT body for acme's entitlement with this guaranteed token rate.
std::string AcmeBody(int token_rate) {
  return R"({"class":"guaranteed","guarantee":{"token_rate":)" + std::to_string(token_rate) +
         R"(,"kv_tokens":8192,"concurrency":2}})";
}
constexpr const char* kAcme2 = "{token_rate: 300, kv_tokens: 8192, concurrency: 2}";

GatewayConfig Parse(const std::string& yaml) {
  Result<GatewayConfig> c = ParseGatewayConfig(yaml, "gateway.yaml");
  EXPECT_TRUE(c.ok()) << c.status().message();
  return *c;
}

struct Listed {
  double token_rate = -1;  // the guarantee's; -1: not listed
  std::string source;
};

// GET /admin/entitlements: the entry of (tenant, short).
Listed Find(GatewayState& s, const std::string& tenant) {
  AdminReply r = HandleAdminRequest(s, "GET", "/admin/entitlements", "");
  EXPECT_EQ(r.status, 200) << r.body;
  const boost::json::value body = boost::json::parse(r.body);
  for (const boost::json::value& v : body.at("entitlements").as_array()) {
    const boost::json::object& o = v.as_object();
    if (o.at("tenant").as_string() == tenant && o.at("pool").as_string() == "short") {
      return {o.at("guarantee").at("token_rate").to_number<double>(),
              std::string(o.at("source").as_string())};
    }
  }
  return {};
}

class AdminOverrideTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Result<std::unique_ptr<GatewayState>> s = GatewayState::Create(Parse(File(kAcme1)), clock_);
    ASSERT_TRUE(s.ok()) << s.status().message();
    state_ = std::move(*s);
  }
  int Admin(const std::string& method, const std::string& target, const std::string& body = "") {
    AdminReply r = HandleAdminRequest(*state_, method, target, body);
    EXPECT_LT(r.status, 300) << method << " " << target << ": " << r.body;
    return r.status;
  }
  Status Reload(const std::string& yaml, std::vector<std::string>* notes = nullptr) {
    return state_->ReloadFile(Parse(yaml), nullptr, notes);
  }
  ManualClock clock_;
  std::unique_ptr<GatewayState> state_;
};

TEST_F(AdminOverrideTest, ChangesOutliveAReloadOfAnUnchangedFile) {
  EXPECT_EQ(Find(*state_, "acme").source, "file");
  Admin("POST", "/admin/entitlements",
        R"({"tenant":"beta","pool":"short","class":"elastic",)"
        R"("guarantee":{"token_rate":50,"kv_tokens":4096,"concurrency":1}})");
  Admin("PUT", "/admin/entitlements/acme/short", AcmeBody(200));
  EXPECT_EQ(state_->admin_override_count(), 2);
  std::vector<std::string> notes;
  ASSERT_TRUE(Reload(File(kAcme1), &notes).ok());  // SIGHUP, or the file touched
  EXPECT_TRUE(notes.empty());
  Listed acme = Find(*state_, "acme");
  EXPECT_EQ(acme.token_rate, 200);
  EXPECT_EQ(acme.source, "admin");
  Listed beta = Find(*state_, "beta");
  EXPECT_EQ(beta.token_rate, 50);
  EXPECT_EQ(beta.source, "admin");
  // Admitted on the pool, not just listed: beta has an entitlement in force.
  EXPECT_TRUE(state_->Entitlement(0, 1).valid());
}

TEST_F(AdminOverrideTest, TheFilesOwnChangeOfTheSameEntitlementWins) {
  Admin("PUT", "/admin/entitlements/acme/short", AcmeBody(200));
  std::vector<std::string> notes;
  ASSERT_TRUE(Reload(File(kAcme2), &notes).ok());
  Listed acme = Find(*state_, "acme");
  EXPECT_EQ(acme.token_rate, 300);
  EXPECT_EQ(acme.source, "file");
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("tenant \"acme\" on pool \"short\""), std::string::npos) << notes[0];
  EXPECT_NE(notes[0].find("the file changed it"), std::string::npos) << notes[0];
  EXPECT_EQ(state_->admin_override_count(), 0);
  // The file's new value is the base from now on: an unchanged reload keeps it.
  ASSERT_TRUE(Reload(File(kAcme2)).ok());
  EXPECT_EQ(Find(*state_, "acme").token_rate, 300);
  // The API's change written into the file: the override goes, with a note that says so (a
  // half-written file that agreed with a deletion dropped it without a word).
  Admin("PUT", "/admin/entitlements/acme/short", AcmeBody(100));
  notes.clear();
  ASSERT_TRUE(Reload(File(kAcme1), &notes).ok());
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("the file now says what the admin API's change did"), std::string::npos)
      << notes[0];
  EXPECT_EQ(state_->admin_override_count(), 0);
  EXPECT_EQ(Find(*state_, "acme").token_rate, 100);
}

TEST_F(AdminOverrideTest, ADeletionStandsUntilTheFileChangesTheEntitlement) {
  Admin("DELETE", "/admin/entitlements/acme/short");
  ASSERT_TRUE(Reload(File(kAcme1)).ok());
  EXPECT_EQ(Find(*state_, "acme").token_rate, -1);  // still deleted
  EXPECT_FALSE(state_->Entitlement(0, 0).valid());
  ASSERT_TRUE(Reload(File(kAcme2)).ok());  // the file's new one
  EXPECT_EQ(Find(*state_, "acme").token_rate, 300);
  EXPECT_TRUE(state_->Entitlement(0, 0).valid());
}

TEST_F(AdminOverrideTest, ChangingBackToTheFilesValueForgetsTheOverride) {
  Admin("PUT", "/admin/entitlements/acme/short", AcmeBody(200));
  EXPECT_TRUE(state_->IsAdminOverride("acme", "short"));
  Admin("PUT", "/admin/entitlements/acme/short", AcmeBody(100));
  EXPECT_FALSE(state_->IsAdminOverride("acme", "short"));
  EXPECT_EQ(Find(*state_, "acme").source, "file");
  // Created and deleted through the API: nothing left to remember either.
  Admin("POST", "/admin/entitlements",
        R"({"tenant":"beta","pool":"short","class":"spot",)"
        R"("burst":{"token_rate":10,"kv_tokens":512,"concurrency":1}})");
  Admin("DELETE", "/admin/entitlements/beta/short");
  EXPECT_EQ(state_->admin_override_count(), 0);
}

TEST_F(AdminOverrideTest, AnOverrideOfATenantTheFileDropsGoesWithIt) {
  Admin("POST", "/admin/entitlements",
        R"({"tenant":"beta","pool":"short","class":"spot",)"
        R"("burst":{"token_rate":10,"kv_tokens":512,"concurrency":1}})");
  std::vector<std::string> notes;
  const Status s = Reload(File(kAcme1, /*with_beta=*/false), &notes);
  ASSERT_TRUE(s.ok()) << s.message();  // not refused for an unknown tenant
  EXPECT_EQ(Find(*state_, "beta").token_rate, -1);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("no longer has the tenant or the pool"), std::string::npos) << notes[0];
  EXPECT_EQ(state_->admin_override_count(), 0);
}

TEST_F(AdminOverrideTest, ARefusedReloadKeepsEverything) {
  Admin("POST", "/admin/entitlements",
        R"({"tenant":"beta","pool":"short","class":"elastic",)"
        R"("guarantee":{"token_rate":50,"kv_tokens":4096,"concurrency":1}})");
  // The file's acme and the API's beta fit together; acme's new guarantee with beta's does not.
  const std::string huge = "{token_rate: 1000000000, kv_tokens: 8192, concurrency: 2}";
  const Status s = Reload(File(huge));
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("admin API"), std::string::npos) << s.message();
  EXPECT_EQ(Find(*state_, "acme").token_rate, 100);
  EXPECT_EQ(Find(*state_, "beta").source, "admin");
  EXPECT_EQ(state_->admin_override_count(), 1);
  // A good file afterwards: the override is still measured against the file it was made on.
  ASSERT_TRUE(Reload(File(kAcme1)).ok());
  EXPECT_EQ(Find(*state_, "beta").token_rate, 50);
}

// admin.state_file: what the API changed is saved, and a new gateway on the same config file
// starts with it (three-way merge as at a reload).
TEST_F(AdminOverrideTest, SavedChangesAreRestoredAtStart) {
  Admin("POST", "/admin/entitlements",
        R"({"tenant":"beta","pool":"short","class":"elastic","priority":2,"weight":1.5,)"
        R"("guarantee":{"token_rate":50.25,"kv_tokens":4096,"concurrency":1},)"
        R"("slo":{"ttft_ms":750,"max_queue_wait_ms":125.5},"quotas":{"day":1000000}})");
  Admin("DELETE", "/admin/entitlements/acme/short");
  // The JSON form round-trips exactly.
  Result<GatewayState::AdminOverrides> parsed =
      ParseAdminOverrides(AdminOverridesJson(*state_), "state.json");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  EXPECT_EQ(*parsed, state_->admin_overrides());

  const std::string path = ::testing::TempDir() + "admin_state_test.json";
  std::remove(path.c_str());
  ASSERT_TRUE(SaveAdminState(*state_, path).ok());
  // A fresh gateway on the same file: the API's changes are back, as the API left them.
  Result<std::unique_ptr<GatewayState>> next = GatewayState::Create(Parse(File(kAcme1)), clock_);
  ASSERT_TRUE(next.ok());
  std::vector<std::string> notes;
  ASSERT_TRUE(LoadAdminState(**next, path, &notes).ok());
  EXPECT_TRUE(notes.empty());
  EXPECT_EQ((*next)->admin_overrides(), state_->admin_overrides());
  EXPECT_EQ((*next)->config().entitlements, state_->config().entitlements);
  EXPECT_EQ(Find(**next, "beta").source, "admin");
  EXPECT_EQ(Find(**next, "acme").token_rate, -1);  // still deleted
  // On a file that has changed acme's entitlement since, that one goes to the file.
  Result<std::unique_ptr<GatewayState>> changed =
      GatewayState::Create(Parse(File(kAcme2)), clock_);
  ASSERT_TRUE(changed.ok());
  notes.clear();
  ASSERT_TRUE(LoadAdminState(**changed, path, &notes).ok());
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_EQ(Find(**changed, "acme").token_rate, 300);
  EXPECT_EQ(Find(**changed, "beta").token_rate, 50.25);
  // ... and the state file no longer has it: a later config that says again what the API's
  // change was made against must not bring it back.
  std::stringstream again;
  again << std::ifstream(path).rdbuf();
  Result<GatewayState::AdminOverrides> left = ParseAdminOverrides(again.str(), path);
  ASSERT_TRUE(left.ok()) << left.status().message();
  EXPECT_EQ(left->size(), 1u);
  EXPECT_EQ(left->count({"acme", "short"}), 0u);
  std::remove(path.c_str());
  // No file yet: nothing to restore.
  ASSERT_TRUE(LoadAdminState(**changed, path, nullptr).ok());
}

// Fractional milliseconds survive GET then PUT (and the state file) to the nanosecond: the
// same entry put back is the file's, not an override. (0.9 and 2.2 ms came back 1 ns short
// when the milliseconds were truncated to nanoseconds.)
TEST_F(AdminOverrideTest, FractionalMillisecondsRoundTrip) {
  std::string y = File(kAcme1);
  const std::string g = "guarantee: " + std::string(kAcme1);
  y.replace(y.find(g), g.size(), g + ", slo: {ttft_ms: 2.2, max_queue_wait_ms: 0.9}");
  Result<std::unique_ptr<GatewayState>> s = GatewayState::Create(Parse(y), clock_);
  ASSERT_TRUE(s.ok()) << s.status().message();
  GatewayState& st = **s;
  EXPECT_EQ(st.config().entitlements[0].spec.slo.max_queue_wait, Duration(900'000));
  EXPECT_EQ(st.config().entitlements[0].spec.slo.ttft_target, Duration(2'200'000));
  const AdminReply listed = HandleAdminRequest(st, "GET", "/admin/entitlements", "");
  const boost::json::value body = boost::json::parse(listed.body);
  boost::json::object entry = body.at("entitlements").at(0).as_object();
  entry.erase("source");
  const AdminReply put = HandleAdminRequest(st, "PUT", "/admin/entitlements/acme/short",
                                            boost::json::serialize(entry));
  ASSERT_EQ(put.status, 200) << put.body;
  EXPECT_FALSE(st.IsAdminOverride("acme", "short"));
  EXPECT_EQ(st.config().entitlements[0].spec.slo.max_queue_wait, Duration(900'000));
}

TEST_F(AdminOverrideTest, ABadStateFileIsAnErrorNamingIt) {
  const std::string path = ::testing::TempDir() + "admin_state_bad.json";
  const auto load = [&](const std::string& text) {
    std::ofstream(path) << text;
    Result<std::unique_ptr<GatewayState>> s = GatewayState::Create(Parse(File(kAcme1)), clock_);
    EXPECT_TRUE(s.ok());
    Status st = LoadAdminState(**s, path, nullptr);
    EXPECT_EQ((*s)->admin_override_count(), 0);
    return st.message();
  };
  EXPECT_NE(load("{not json").find(path + ": not JSON"), std::string::npos);
  // A file of another format version (or of none) is not read as this one.
  EXPECT_NE(load(R"({"overrides":[]})").find(path + ": version: expected 1"), std::string::npos);
  EXPECT_NE(load(R"({"version":2,"overrides":[]})").find("version: expected 1"),
            std::string::npos);
  EXPECT_NE(load(R"({"version":"1","overrides":[]})").find("version: expected 1"),
            std::string::npos);
  EXPECT_EQ(load(R"({"version":1,"overrides":[]})"), "");
  EXPECT_NE(load(R"({"version":1,"overrides":{}})").find("overrides: expected an array"),
            std::string::npos);
  EXPECT_NE(load(R"({"version":1,"overrides":[{"tenant":"beta"}]})")
                .find("overrides[0]: expected an object"),
            std::string::npos);
  std::string m = load(
      R"({"version":1,"overrides":[{"tenant":"beta","pool":"short","base":null,"entry":)"
      R"({"tenant":"beta","pool":"short","class":"elastic","guarantee":{"concurrency":4},)"
      R"("burst":{"concurrency":2}}}]})");
  EXPECT_NE(m.find("overrides[0].entry"), std::string::npos) << m;
  EXPECT_NE(m.find("burst.concurrency"), std::string::npos) << m;
  // Valid, but more than the pool can promise over the file's entitlements.
  m = load(
      R"({"version":1,"overrides":[{"tenant":"beta","pool":"short","base":null,"entry":)"
      R"({"tenant":"beta","pool":"short","class":"guaranteed",)"
      R"("guarantee":{"token_rate":1e12,"kv_tokens":8192,"concurrency":1}}}]})");
  EXPECT_NE(m.find("cannot be applied"), std::string::npos) << m;
  std::remove(path.c_str());
}

// HTTP around the routes: HEAD as GET, a query ignored, a 405 with its Allow, and TENANT /
// POOL percent-decoded (a tenant with a space could not be changed or deleted before).
TEST_F(AdminOverrideTest, MethodsQueriesAndEncodedNames) {
  EXPECT_EQ(HandleAdminRequest(*state_, "HEAD", "/admin/pools", "").status, 200);
  EXPECT_EQ(HandleAdminRequest(*state_, "GET", "/admin/tenants?verbose=1", "").status, 200);
  AdminReply r = HandleAdminRequest(*state_, "DELETE", "/admin/pools", "");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "GET, HEAD");
  r = HandleAdminRequest(*state_, "PATCH", "/admin/entitlements/acme/short", "");
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.allow, "GET, HEAD, PUT, DELETE");
  // One entitlement by its path (it was a 405), as the list shows it; 404 for a missing one.
  r = HandleAdminRequest(*state_, "GET", "/admin/entitlements/acme/short", "");
  EXPECT_EQ(r.status, 200) << r.body;
  const boost::json::value one = boost::json::parse(r.body);
  EXPECT_EQ(one.at("tenant").as_string(), "acme");
  EXPECT_EQ(one.at("pool").as_string(), "short");
  EXPECT_EQ(one.at("source").as_string(), "file");
  EXPECT_EQ(HandleAdminRequest(*state_, "GET", "/admin/entitlements/acme/long", "").status, 404);
  EXPECT_EQ(HandleAdminRequest(*state_, "PUT", "/admin/entitlements", "").allow, "GET, HEAD, POST");
  // A tenant named "b x": the file's YAML, then the API's path.
  std::string yaml = File(kAcme1);
  yaml.replace(yaml.find("entitlements:"), 0,
               "  - {name: \"b x\", keys: [" + Sha256Hex("sk-bx") + "]}\n");
  yaml +=
      "  - {tenant: \"b x\", pool: short, class: elastic, guarantee: {token_rate: 10, "
      "kv_tokens: 1024, concurrency: 1}}\n";
  ASSERT_TRUE(Reload(yaml).ok());
  EXPECT_EQ(Find(*state_, "b x").token_rate, 10);
  r = HandleAdminRequest(*state_, "DELETE", "/admin/entitlements/b%20x/short", "");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(Find(*state_, "b x").token_rate, -1);
  EXPECT_EQ(HandleAdminRequest(*state_, "GET", "/admin/entitlements/a/b/c", "").status, 404);
}

// Bodies are typed JSON: a string where a number or a name belongs is a 400 naming the field
// (the body is read through the config's YAML reader, which took "3" as 3 and 123 as "123"),
// and malformed JSON says so.
TEST_F(AdminOverrideTest, BodiesAreTypedJson) {
  const auto post = [&](const std::string& body) {
    return HandleAdminRequest(*state_, "POST", "/admin/entitlements", body);
  };
  const std::string beta = R"({"tenant":"beta","pool":"short","class":"spot",)"
                           R"("burst":{"token_rate":10,"kv_tokens":100,"concurrency":1})";
  AdminReply r = post(beta + R"(,"priority":"0x10"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("entitlement.priority: expected an integer, got a string"),
            std::string::npos)
      << r.body;
  r = post(R"({"tenant":"beta","pool":"short","class":"spot",)"
           R"("burst":{"token_rate":"10","kv_tokens":100,"concurrency":1}})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("entitlement.burst.token_rate: expected a number, got a string"),
            std::string::npos)
      << r.body;
  r = post(R"({"tenant":123,"pool":"short","class":"spot"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("entitlement.tenant: expected a string"), std::string::npos) << r.body;
  r = post(beta + "} trailing");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("request body: malformed JSON"), std::string::npos) << r.body;
  // A whole number written as a float is the integer, as on the request path (it was
  // "expected an integer": Boost.JSON wrote 2.0 as 2E0 for the YAML reader); 2.5 is not.
  r = post(beta + R"(,"priority":2.5})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("entitlement.priority: expected an integer"), std::string::npos)
      << r.body;
  EXPECT_EQ(post(beta + R"(,"priority":2.0,"quotas":{"minute":1e3}})").status, 201);
  EXPECT_EQ(HandleAdminRequest(*state_, "DELETE", "/admin/entitlements/beta/short", "").status,
            200);
  EXPECT_EQ(post(beta + "}").status, 201);
  // Over the pool: 409 naming the tenant, the pool and the reason, not the config file.
  r = HandleAdminRequest(*state_, "PUT", "/admin/entitlements/acme/short", AcmeBody(1000000));
  EXPECT_EQ(r.status, 409);
  const std::string message(boost::json::parse(r.body).at("error").at("message").as_string());
  EXPECT_TRUE(message.starts_with(
      "tenant \"acme\" on pool \"short\": sum of guarantees would exceed pool \"short\""))
      << message;
}

}  // namespace
}  // namespace tokenpool::gateway
