#include "gateway/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <boost/url/parse.hpp>
#include <boost/url/url_view.hpp>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <map>
#include <set>
#include <sstream>
#include <type_traits>
#include <vector>

#include "tokenpool/profile.h"
#include "tokenpool/text_file.h"
#include "tokenpool/units.h"

namespace tokenpool::gateway {
namespace {

std::string Join(const std::string& path, const std::string& key) {
  return path.empty() ? key : path + "." + key;
}
std::string Index(const std::string& path, size_t i) {
  return path + "[" + std::to_string(i) + "]";
}

class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  Status Error(const YAML::Node& n, const std::string& field, const std::string& rule) const {
    return InvalidArgument(source_ + ":" + std::to_string(LineOf(n)) + ": " + field + ": " + rule);
  }
  static int LineOf(const YAML::Node& n) {
    return n.IsDefined() && n.Mark().line >= 0 ? n.Mark().line + 1 : 1;
  }

  Status CheckKeys(const YAML::Node& map, const std::string& path,
                   std::initializer_list<const char*> allowed) const {
    if (!map.IsMap()) return Error(map, path.empty() ? "(top level)" : path, "expected a mapping");
    std::vector<std::string> seen;
    for (const auto& kv : map) {
      const std::string key = kv.first.as<std::string>();
      // yaml-cpp keeps a repeated key and lookups find the first one: a second `port:` would
      // be silently ignored.
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return Error(kv.first, Join(path, key), "appears twice in this mapping");
      }
      seen.push_back(key);
      if (std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return key == a; })) {
        std::string list;
        for (const char* a : allowed) list += std::string(list.empty() ? "" : ", ") + a;
        return Error(kv.first, Join(path, key), "unknown field (known: " + list + ")");
      }
    }
    return Status::Ok();
  }
  Status Require(const YAML::Node& map, const char* key, const std::string& path) const {
    if (!map[key].IsDefined() || map[key].IsNull()) {
      return Error(map, Join(path, key), "required field is missing");
    }
    return Status::Ok();
  }
  template <typename T>
  Status Get(const YAML::Node& map, const char* key, const std::string& path, T* out,
             const char* type_name) const {
    const YAML::Node n = map[key];
    if (!n.IsDefined() || n.IsNull()) return Status::Ok();
    // A quoted scalar is a string (yaml-cpp tags it "!"): "10" is no number, in a file or in an
    // admin API body (JSON, read as YAML), where "priority":"0x10" was read as 16.
    if constexpr (!std::is_same_v<T, std::string>) {
      if (n.IsScalar() && n.Tag() == "!") {
        return Error(n, Join(path, key), std::string("expected ") + type_name + ", got a string");
      }
    }
    try {
      if (!n.IsScalar()) throw YAML::Exception(n.Mark(), "not a scalar");
      *out = n.as<T>();
    } catch (const YAML::Exception&) {
      return Error(n, Join(path, key), std::string("expected ") + type_name);
    }
    return Status::Ok();
  }
  Status GetS(const YAML::Node& m, const char* k, const std::string& p, std::string* o) const {
    return Get(m, k, p, o, "a string");
  }
  Status GetD(const YAML::Node& m, const char* k, const std::string& p, double* o) const {
    return Get(m, k, p, o, "a number");
  }
  Status GetI(const YAML::Node& m, const char* k, const std::string& p, int64_t* o) const {
    return Get(m, k, p, o, "an integer");
  }
  Status GetI32(const YAML::Node& m, const char* k, const std::string& p, int32_t* o) const {
    return Get(m, k, p, o, "an integer");
  }
  // YAML's booleans (true/false, yes/no, on/off); a quoted one is a string.
  Status GetB(const YAML::Node& m, const char* k, const std::string& p, bool* o) const {
    const YAML::Node n = m[k];
    if (!n.IsDefined() || n.IsNull()) return Status::Ok();
    bool v = *o;
    if (!n.IsScalar() || n.Tag() == "!" || !YAML::convert<bool>::decode(n, v)) {
      return Error(n, Join(p, k), "expected true or false");
    }
    *o = v;
    return Status::Ok();
  }
  Status GetPort(const YAML::Node& m, const std::string& p, uint16_t* o) const {
    int64_t v = *o;
    if (Status s = GetI(m, "port", p, &v); !s.ok()) return s;
    if (v < 0 || v > 65535) return Error(m["port"], Join(p, "port"), "must be in [0, 65535]");
    *o = static_cast<uint16_t>(v);
    return Status::Ok();
  }

  Status ReadListener(const YAML::Node& n, const std::string& path, Listener* l) const {
    if (Status s = CheckKeys(n, path, {"host", "port", "metrics"}); !s.ok()) return s;
    if (Status s = GetS(n, "host", path, &l->host); !s.ok()) return s;
    if (Status s = GetB(n, "metrics", path, &l->metrics); !s.ok()) return s;
    return GetPort(n, path, &l->port);
  }

  Status ReadVector(const YAML::Node& n, const std::string& path, ResourceVector* v) const {
    if (Status s = CheckKeys(n, path, {"token_rate", "kv_tokens", "concurrency"}); !s.ok()) {
      return s;
    }
    if (Status s = GetD(n, "token_rate", path, &v->token_rate); !s.ok()) return s;
    if (Status s = GetD(n, "kv_tokens", path, &v->kv_tokens); !s.ok()) return s;
    return GetD(n, "concurrency", path, &v->concurrency);
  }

  Status ReadPool(const YAML::Node& n, const std::string& path, PoolSpec* p) const {
    if (Status s = CheckKeys(
            n, path,
            {"name", "model", "profile", "max_model_len", "replicas", "backends", "api_key_env"});
        !s.ok()) {
      return s;
    }
    for (const char* k : {"name", "model", "profile", "backends"}) {
      if (Status s = Require(n, k, path); !s.ok()) return s;
    }
    if (Status s = GetS(n, "name", path, &p->name); !s.ok()) return s;
    if (Status s = GetS(n, "model", path, &p->model); !s.ok()) return s;
    if (Status s = GetS(n, "profile", path, &p->profile); !s.ok()) return s;
    if (Status s = GetS(n, "api_key_env", path, &p->api_key_env); !s.ok()) return s;
    if (const YAML::Node k = n["api_key_env"]; k.IsDefined()) {
      const char* v = p->api_key_env.empty() ? nullptr : std::getenv(p->api_key_env.c_str());
      if (v == nullptr || *v == '\0') {
        return Error(k, Join(path, "api_key_env"),
                     "environment variable \"" + p->api_key_env + "\" is not set or empty");
      }
      p->api_key = v;
      if (p->api_key.find_first_of("\r\n") != std::string::npos) {
        return Error(k, Join(path, "api_key_env"),
                     "the key in \"" + p->api_key_env + "\" contains a line break");
      }
    }
    if (Status s = GetI(n, "max_model_len", path, &p->max_model_len); !s.ok()) return s;
    if (p->max_model_len < 0) {
      return Error(n["max_model_len"], Join(path, "max_model_len"), "must be >= 0");
    }
    Result<InstanceProfile> prof = FindProfile(p->profile);
    if (!prof.ok()) return Error(n["profile"], Join(path, "profile"), prof.status().message());
    const YAML::Node b = n["backends"];
    const std::string bpath = Join(path, "backends");
    if (!b.IsSequence() || b.size() == 0) return Error(b, bpath, "expected a non-empty list");
    for (size_t i = 0; i < b.size(); ++i) {
      if (!b[i].IsScalar()) return Error(b[i], Index(bpath, i), "expected a URL");
      Result<BackendUrl> u = ParseBackendUrl(b[i].Scalar());
      if (!u.ok()) return Error(b[i], Index(bpath, i), u.status().message());
      p->backends.push_back(*u);
    }
    p->min_replicas = p->max_replicas = static_cast<int32_t>(p->backends.size());
    if (const YAML::Node r = n["replicas"]; r.IsDefined() && !r.IsNull()) {
      const std::string rpath = Join(path, "replicas");
      if (Status s = CheckKeys(r, rpath, {"min", "max"}); !s.ok()) return s;
      if (Status s = GetI32(r, "min", rpath, &p->min_replicas); !s.ok()) return s;
      if (Status s = GetI32(r, "max", rpath, &p->max_replicas); !s.ok()) return s;
      if (p->min_replicas < 0) return Error(r, Join(rpath, "min"), "must be >= 0");
      if (p->max_replicas < p->min_replicas) {
        return Error(r, Join(rpath, "max"), "must be >= min");
      }
    }
    const auto n_backends = static_cast<int32_t>(p->backends.size());
    if (n_backends < p->min_replicas || n_backends > p->max_replicas) {
      return Error(b, bpath,
                   "the number of backends (" + std::to_string(n_backends) +
                       ") must be within replicas.min..max (" + std::to_string(p->min_replicas) +
                       ".." + std::to_string(p->max_replicas) + ")");
    }
    return Status::Ok();
  }

  Status ReadTenant(const YAML::Node& n, const std::string& path, TenantSpec* t) const {
    if (Status s = CheckKeys(n, path, {"name", "keys"}); !s.ok()) return s;
    if (Status s = Require(n, "name", path); !s.ok()) return s;
    if (Status s = Require(n, "keys", path); !s.ok()) return s;
    if (Status s = GetS(n, "name", path, &t->name); !s.ok()) return s;
    // The name is a path segment of the admin API, a metrics label and a log field.
    if (t->name.empty() || std::any_of(t->name.begin(), t->name.end(), [](char c) {
          return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        })) {
      return Error(n["name"], Join(path, "name"), "must be non-empty, without control characters");
    }
    const YAML::Node k = n["keys"];
    const std::string kpath = Join(path, "keys");
    if (!k.IsSequence()) return Error(k, kpath, "expected a list of sha256 hex digests");
    for (size_t i = 0; i < k.size(); ++i) {
      std::string h = k[i].IsScalar() ? k[i].Scalar() : std::string();
      const bool hex = h.size() == 64 && std::all_of(h.begin(), h.end(), [](char c) {
                         return std::isxdigit(static_cast<unsigned char>(c)) != 0;
                       });
      if (!hex) return Error(k[i], Index(kpath, i), "must be 64 hex characters (sha256)");
      for (char& c : h) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      t->key_sha256.push_back(h);
    }
    return Status::Ok();
  }

  Status ReadEntitlement(const YAML::Node& n, const std::string& path, EntitlementEntry* e) const {
    if (Status s = CheckKeys(n, path,
                             {"tenant", "pool", "class", "priority", "guarantee", "burst", "weight",
                              "slo", "quotas"});
        !s.ok()) {
      return s;
    }
    for (const char* k : {"tenant", "pool", "class"}) {
      if (Status s = Require(n, k, path); !s.ok()) return s;
    }
    if (Status s = GetS(n, "tenant", path, &e->tenant); !s.ok()) return s;
    if (Status s = GetS(n, "pool", path, &e->pool); !s.ok()) return s;
    for (const auto& [key, value] :
         {std::pair{"tenant", &e->tenant}, std::pair{"pool", &e->pool}}) {
      if (value->empty()) return Error(n[key], Join(path, key), "must not be empty");
    }
    EntitlementSpec& spec = e->spec;
    spec.name = spec.tenant = e->tenant;
    std::string cls;
    if (Status s = GetS(n, "class", path, &cls); !s.ok()) return s;
    Result<EntitlementClass> c = ParseEntitlementClass(cls);
    if (!c.ok()) return Error(n["class"], Join(path, "class"), c.status().message());
    spec.cls = *c;
    if (Status s = GetI32(n, "priority", path, &spec.priority); !s.ok()) return s;
    if (Status s = GetD(n, "weight", path, &spec.weight); !s.ok()) return s;
    if (n["guarantee"].IsDefined()) {
      if (Status s = ReadVector(n["guarantee"], Join(path, "guarantee"), &spec.guarantee);
          !s.ok()) {
        return s;
      }
    }
    spec.burst = spec.guarantee;
    if (n["burst"].IsDefined()) {
      if (Status s = ReadVector(n["burst"], Join(path, "burst"), &spec.burst); !s.ok()) return s;
    }
    if (const YAML::Node s = n["slo"]; s.IsDefined()) {
      const std::string spath = Join(path, "slo");
      if (Status st = CheckKeys(s, spath, {"ttft_ms", "max_queue_wait_ms"}); !st.ok()) return st;
      double ttft = ToMilliseconds(spec.slo.ttft_target);
      double wait = ToMilliseconds(spec.slo.max_queue_wait);
      if (Status st = GetD(s, "ttft_ms", spath, &ttft); !st.ok()) return st;
      if (Status st = GetD(s, "max_queue_wait_ms", spath, &wait); !st.ok()) return st;
      constexpr double kMaxMs = 1e12;  // 31 years: keeps the nanoseconds in an int64
      // A target of 0 is none at all: at least a microsecond.
      if (!(ttft >= 1e-3 && ttft <= kMaxMs)) {
        return Error(s, Join(spath, "ttft_ms"), "must be in [0.001, 1e12]");
      }
      if (!(wait >= 0 && wait <= kMaxMs)) {
        return Error(s, Join(spath, "max_queue_wait_ms"), "must be in [0, 1e12]");
      }
      // Rounded to the nanosecond, not truncated: the admin API writes these back as
      // milliseconds (a double), and 99.9 ms must read back as the 99,900,000 ns it came from.
      spec.slo.ttft_target = Duration(std::llround(ttft * 1e6));
      spec.slo.max_queue_wait = Duration(std::llround(wait * 1e6));
    }
    if (const YAML::Node q = n["quotas"]; q.IsDefined()) {
      const std::string qpath = Join(path, "quotas");
      if (Status st = CheckKeys(q, qpath, {"minute", "hour", "day", "month"}); !st.ok()) return st;
      for (int w = 0; w < kNumQuotaWindows; ++w) {
        const std::string name(QuotaWindowName(static_cast<QuotaWindow>(w)));
        if (Status st = GetI(q, name.c_str(), qpath, &spec.quotas.limit[w]); !st.ok()) return st;
      }
    }
    if (Status s = spec.Validate(); !s.ok()) {
      // The core names "entitlements[<name>]..."; point at this entry instead.
      std::string m = s.message();
      if (const size_t dot = m.find("]."); m.starts_with("entitlements[") && dot != m.npos) {
        m = path + m.substr(dot + 1);
      }
      const int line = n.Mark().line >= 0 ? n.Mark().line + 1 : 1;
      return InvalidArgument(source_ + ":" + std::to_string(line) + ": " + m);
    }
    return Status::Ok();
  }

  Result<GatewayConfig> Read(const YAML::Node& root) const {
    GatewayConfig c;
    c.source = source_;
    if (Status s = CheckKeys(root, "",
                             {"listen", "workers", "busy_poll_us", "time_scale", "log", "admin",
                              "models", "pools", "tenants", "entitlements", "estimator", "router",
                              "limits", "backend_metrics"});
        !s.ok()) {
      return s;
    }
    for (const char* k : {"models", "pools", "tenants", "entitlements"}) {
      if (Status s = Require(root, k, ""); !s.ok()) return s;
    }
    if (root["listen"].IsDefined()) {
      if (Status s = ReadListener(root["listen"], "listen", &c.listen); !s.ok()) return s;
    }
    if (root["workers"].IsDefined()) {
      int64_t w = 0;
      if (Status s = GetI(root, "workers", "", &w); !s.ok()) return s;
      if (w < 0 || w > 256) return Error(root["workers"], "workers", "must be in [0, 256]");
      c.workers = static_cast<int32_t>(w);
    }
    if (root["busy_poll_us"].IsDefined()) {
      int64_t v = 0;
      if (Status s = GetI(root, "busy_poll_us", "", &v); !s.ok()) return s;
      if (v < 0 || v > 1000000) {
        return Error(root["busy_poll_us"], "busy_poll_us", "must be in [0, 1000000]");
      }
      c.busy_poll_us = v;
    }
    if (root["time_scale"].IsDefined()) {
      double v = 1;
      if (Status s = GetD(root, "time_scale", "", &v); !s.ok()) return s;
      if (!(v >= 0.001 && v <= 1000)) {
        return Error(root["time_scale"], "time_scale", "must be in [0.001, 1000]");
      }
      c.time_scale = v;
    }
    if (const YAML::Node lg = root["log"]; lg.IsDefined()) {
      if (Status s = CheckKeys(lg, "log", {"requests"}); !s.ok()) return s;
      if (Status s = GetB(lg, "requests", "log", &c.log_requests); !s.ok()) return s;
    }
    if (const YAML::Node a = root["admin"]; a.IsDefined()) {
      if (Status s = CheckKeys(a, "admin", {"host", "port", "token_sha256", "state_file"});
          !s.ok()) {
        return s;
      }
      if (Status s = Require(a, "token_sha256", "admin"); !s.ok()) return s;
      if (Status s = GetS(a, "host", "admin", &c.admin.host); !s.ok()) return s;
      if (Status s = GetPort(a, "admin", &c.admin.port); !s.ok()) return s;
      if (Status s = GetS(a, "token_sha256", "admin", &c.admin_token_sha256); !s.ok()) return s;
      std::string& h = c.admin_token_sha256;
      if (h.size() != 64 || !std::all_of(h.begin(), h.end(), [](char ch) {
            return std::isxdigit(static_cast<unsigned char>(ch)) != 0;
          })) {
        return Error(a["token_sha256"], "admin.token_sha256", "must be 64 hex characters (sha256)");
      }
      for (char& ch : h) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      if (a["state_file"].IsDefined()) {
        if (Status s = GetS(a, "state_file", "admin", &c.admin_state_file); !s.ok()) return s;
        if (c.admin_state_file.empty()) {
          return Error(a["state_file"], "admin.state_file", "must be a file path, not empty");
        }
      }
      c.admin_enabled = true;
    }
    const YAML::Node models = root["models"];
    if (!models.IsSequence() || models.size() == 0) {
      return Error(models, "models", "expected a non-empty list of model names");
    }
    std::set<std::string> model_names;
    for (size_t i = 0; i < models.size(); ++i) {
      if (!models[i].IsScalar() || models[i].Scalar().empty()) {
        return Error(models[i], Index("models", i), "expected a model name");
      }
      if (!model_names.insert(models[i].Scalar()).second) {
        return Error(models[i], Index("models", i),
                     "duplicate model \"" + models[i].Scalar() + "\"");
      }
      c.models.push_back(models[i].Scalar());
    }
    const YAML::Node pools = root["pools"];
    if (!pools.IsSequence() || pools.size() == 0) {
      return Error(pools, "pools", "expected a non-empty list");
    }
    std::set<std::string> pool_names;
    for (size_t i = 0; i < pools.size(); ++i) {
      PoolSpec p;
      const std::string path = Index("pools", i);
      if (Status s = ReadPool(pools[i], path, &p); !s.ok()) return s;
      if (!pool_names.insert(p.name).second) {
        return Error(pools[i]["name"], path + ".name", "duplicate pool \"" + p.name + "\"");
      }
      if (model_names.count(p.model) == 0) {
        return Error(pools[i]["model"], path + ".model",
                     "unknown model \"" + p.model + "\" (not in models)");
      }
      p.line = LineOf(pools[i]);
      c.pools.push_back(std::move(p));
    }
    for (const std::string& m : c.models) {
      if (std::none_of(c.pools.begin(), c.pools.end(),
                       [&](const PoolSpec& p) { return p.model == m; })) {
        return Error(models, "models", "model \"" + m + "\" has no pool");
      }
    }
    const YAML::Node tenants = root["tenants"];
    if (!tenants.IsSequence()) return Error(tenants, "tenants", "expected a list");
    std::set<std::string> tenant_names;
    std::map<std::string, size_t> key_holder;  // key -> the tenant it was first given to
    for (size_t i = 0; i < tenants.size(); ++i) {
      TenantSpec t;
      const std::string path = Index("tenants", i);
      if (Status s = ReadTenant(tenants[i], path, &t); !s.ok()) return s;
      if (!tenant_names.insert(t.name).second) {
        return Error(tenants[i]["name"], path + ".name", "duplicate tenant \"" + t.name + "\"");
      }
      for (size_t k = 0; k < t.key_sha256.size(); ++k) {
        const auto [at, fresh] = key_holder.emplace(t.key_sha256[k], i);
        if (!fresh) {
          return Error(tenants[i]["keys"][k], Index(path + ".keys", k),
                       at->second == i ? "this key is listed twice"
                                       : "this key is already given to another tenant");
        }
      }
      c.tenants.push_back(std::move(t));
    }
    const YAML::Node ents = root["entitlements"];
    if (!ents.IsSequence()) return Error(ents, "entitlements", "expected a list");
    std::set<std::pair<std::string, std::string>> pairs;
    for (size_t i = 0; i < ents.size(); ++i) {
      EntitlementEntry e;
      const std::string path = Index("entitlements", i);
      if (Status s = ReadEntitlement(ents[i], path, &e); !s.ok()) return s;
      if (tenant_names.count(e.tenant) == 0) {
        return Error(ents[i]["tenant"], path + ".tenant", "unknown tenant \"" + e.tenant + "\"");
      }
      if (pool_names.count(e.pool) == 0) {
        return Error(ents[i]["pool"], path + ".pool", "unknown pool \"" + e.pool + "\"");
      }
      if (!pairs.insert({e.tenant, e.pool}).second) {
        return Error(
            ents[i], path,
            "a second entitlement of tenant \"" + e.tenant + "\" on pool \"" + e.pool + "\"");
      }
      e.line = LineOf(ents[i]);
      c.entitlements.push_back(std::move(e));
    }
    if (const YAML::Node e = root["estimator"]; e.IsDefined()) {
      if (Status s = CheckKeys(e, "estimator", {"mode", "default_output_reserve", "linear"});
          !s.ok()) {
        return s;
      }
      if (const YAML::Node l = e["linear"]; l.IsDefined()) {
        const std::string lp = "estimator.linear";
        if (Status s = CheckKeys(l, lp, {"sample_after", "sample_every"}); !s.ok()) return s;
        if (Status s = GetI(l, "sample_after", lp, &c.estimator.linear.sample_after); !s.ok()) {
          return s;
        }
        if (Status s = GetI(l, "sample_every", lp, &c.estimator.linear.sample_every); !s.ok()) {
          return s;
        }
      }
      if (Status s = GetS(e, "mode", "estimator", &c.estimator_mode); !s.ok()) return s;
      if (Status s =
              GetI(e, "default_output_reserve", "estimator", &c.estimator.default_output_reserve);
          !s.ok()) {
        return s;
      }
      if (Result<std::unique_ptr<TokenEstimator>> m = MakeEstimator(c.estimator_mode, c.estimator);
          !m.ok()) {
        return Error(e, "estimator", m.status().message());
      }
    }
    if (const YAML::Node r = root["router"]; r.IsDefined()) {
      if (Status s = CheckKeys(r, "router", {"mode", "spill_utilization"}); !s.ok()) return s;
      if (Status s = GetS(r, "mode", "router", &c.router_mode); !s.ok()) return s;
      if (Status s = GetD(r, "spill_utilization", "router", &c.router.spill_utilization); !s.ok()) {
        return s;
      }
      if (Result<std::unique_ptr<Router>> m = MakeRouter(c.router_mode, c.router); !m.ok()) {
        // The router's message names its field ("router.mode: ..."): not prefixed again.
        return InvalidArgument(source_ + ":" + std::to_string(LineOf(r)) + ": " +
                               m.status().message());
      }
    }
    if (const YAML::Node b = root["backend_metrics"]; b.IsDefined()) {
      if (Status s = CheckKeys(b, "backend_metrics", {"interval_s", "max_kv_usage"}); !s.ok()) {
        return s;
      }
      BackendMetrics& m = c.backend_metrics;
      if (Status s = GetD(b, "interval_s", "backend_metrics", &m.interval_s); !s.ok()) return s;
      if (Status s = GetD(b, "max_kv_usage", "backend_metrics", &m.max_kv_usage); !s.ok()) {
        return s;
      }
      if (!(m.interval_s >= 0 && m.interval_s <= 3600)) {
        return Error(b, "backend_metrics.interval_s", "must be in [0, 3600] (0: off)");
      }
      if (!(m.max_kv_usage > 0 && m.max_kv_usage <= 1)) {
        return Error(b, "backend_metrics.max_kv_usage", "must be in (0, 1]");
      }
    }
    if (const YAML::Node l = root["limits"]; l.IsDefined()) {
      if (Status s = CheckKeys(l, "limits",
                               {"max_header_bytes", "max_body_bytes", "upstream_timeout_s",
                                "client_idle_timeout_s", "send_timeout_s", "drain_timeout_s"});
          !s.ok()) {
        return s;
      }
      int64_t header = c.limits.max_header_bytes;
      int64_t body = static_cast<int64_t>(c.limits.max_body_bytes);
      if (Status s = GetI(l, "max_header_bytes", "limits", &header); !s.ok()) return s;
      if (Status s = GetI(l, "max_body_bytes", "limits", &body); !s.ok()) return s;
      if (Status s = GetD(l, "upstream_timeout_s", "limits", &c.limits.upstream_timeout_s);
          !s.ok()) {
        return s;
      }
      if (header < 1024 || header > (int64_t{1} << 20)) {
        return Error(l, "limits.max_header_bytes", "must be in [1024, 1048576]");
      }
      if (body < 1024 || body > (int64_t{1} << 30)) {
        return Error(l, "limits.max_body_bytes", "must be in [1024, 1073741824]");
      }
      if (Status s = GetD(l, "client_idle_timeout_s", "limits", &c.limits.client_idle_timeout_s);
          !s.ok()) {
        return s;
      }
      if (Status s = GetD(l, "send_timeout_s", "limits", &c.limits.send_timeout_s); !s.ok()) {
        return s;
      }
      if (Status s = GetD(l, "drain_timeout_s", "limits", &c.limits.drain_timeout_s); !s.ok()) {
        return s;
      }
      // At most kMaxDurationSeconds (1e9): a deadline past Time's range would overflow.
      if (!IsDurationSeconds(c.limits.drain_timeout_s, true)) {
        return Error(l, "limits.drain_timeout_s", "must be in [0, 1e9] seconds");
      }
      if (!IsDurationSeconds(c.limits.client_idle_timeout_s, false)) {
        return Error(l, "limits.client_idle_timeout_s", "must be in (0, 1e9] seconds");
      }
      if (!IsDurationSeconds(c.limits.send_timeout_s, false)) {
        return Error(l, "limits.send_timeout_s", "must be in (0, 1e9] seconds");
      }
      if (!IsDurationSeconds(c.limits.upstream_timeout_s, false)) {
        return Error(l, "limits.upstream_timeout_s", "must be in (0, 1e9] seconds");
      }
      c.limits.max_header_bytes = static_cast<uint32_t>(header);
      c.limits.max_body_bytes = static_cast<uint64_t>(body);
    }
    return c;
  }

 private:
  std::string source_;
};

}  // namespace

Result<BackendUrl> ParseBackendUrl(std::string_view url) {
  const auto bad = [&](std::string_view why) {
    return InvalidArgument("expected http://HOST:PORT, got \"" + std::string(url) + "\"" +
                           (why.empty() ? "" : " (" + std::string(why) + ")"));
  };
  boost::system::result<boost::urls::url_view> parsed = boost::urls::parse_absolute_uri(url);
  if (!parsed) return bad("");
  const boost::urls::url_view& u = *parsed;
  if (u.scheme_id() != boost::urls::scheme::http) return bad("");
  if (u.has_userinfo() || u.has_query() || (!u.encoded_path().empty() && u.encoded_path() != "/")) {
    return bad("no user, path or query");
  }
  if (u.encoded_host().empty() || !u.has_port()) return bad("");
  const std::string_view port = u.port();  // digits only (the URI grammar)
  const int64_t number = !port.empty() && port.size() <= 5 ? std::stoll(std::string(port)) : 0;
  if (number < 1 || number > 65535) {
    return InvalidArgument("bad port in \"" + std::string(url) + "\"");
  }
  BackendUrl b;
  b.host = u.host_address();  // an IPv6 address without its brackets, a name decoded
  b.port = static_cast<uint16_t>(number);
  b.authority = std::string(u.encoded_host_and_port());  // "[::1]:8000" for the Host header
  return b;
}

Result<GatewayConfig> ParseGatewayConfig(std::string_view yaml_text, const std::string& source) {
  Reader reader(source);
  try {
    const YAML::Node root = YAML::Load(std::string(yaml_text));
    if (!root.IsDefined() || root.IsNull()) {
      return InvalidArgument(source + ":1: (top level): the file is empty");
    }
    return reader.Read(root);
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

Result<EntitlementEntry> ParseEntitlementEntry(std::string_view text, const std::string& source) {
  Reader reader(source);
  try {
    const YAML::Node n = YAML::Load(std::string(text));
    if (!n.IsMap()) return InvalidArgument(source + ":1: (top level): expected an object");
    EntitlementEntry e;
    if (Status s = reader.ReadEntitlement(n, "entitlement", &e); !s.ok()) return s;
    return e;
  } catch (const YAML::Exception& e) {
    return InvalidArgument(source + ":" + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

size_t EntitlementIndex(const std::vector<EntitlementEntry>& list, std::string_view tenant,
                        std::string_view pool) {
  for (size_t i = 0; i < list.size(); ++i) {
    if (list[i].tenant == tenant && list[i].pool == pool) return i;
  }
  return list.size();
}

bool HasTenant(const GatewayConfig& c, std::string_view name) {
  return std::any_of(c.tenants.begin(), c.tenants.end(),
                     [&](const TenantSpec& t) { return t.name == name; });
}

bool HasPool(const GatewayConfig& c, std::string_view name) {
  return std::any_of(c.pools.begin(), c.pools.end(),
                     [&](const PoolSpec& p) { return p.name == name; });
}

Result<GatewayConfig> LoadGatewayConfigFile(const std::string& path) {
  Result<std::string> text = ReadTextFile(path);
  if (!text.ok()) {
    return Status(text.status().code(),
                  path + ": cannot read the config file: " + text.status().message());
  }
  const size_t slash = path.find_last_of('/');
  Result<GatewayConfig> c =
      ParseGatewayConfig(*text, slash == std::string::npos ? path : path.substr(slash + 1));
  // A relative admin.state_file is the config file's neighbour, wherever the gateway runs.
  if (c.ok() && !c->admin_state_file.empty() && c->admin_state_file.front() != '/' &&
      slash != std::string::npos) {
    c->admin_state_file = path.substr(0, slash + 1) + c->admin_state_file;
  }
  return c;
}

}  // namespace tokenpool::gateway
