#include "gateway/admin.h"

#include <fcntl.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/segments_view.hpp>
#include <boost/url/url_view.hpp>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "gateway/errors.h"
#include "gateway/json_values.h"
#include "gateway/write_all.h"

namespace tokenpool::gateway {
namespace {

namespace json = boost::json;

AdminReply Error(int status, std::string_view message, std::string_view code) {
  const std::string_view type = status == 404   ? "not_found_error"
                                : status == 409 ? "conflict_error"
                                                : "invalid_request_error";
  AdminReply r;
  r.status = status;
  r.body = ErrorJson(message, type, code);
  return r;
}

AdminReply Ok(int status, const json::value& v) {
  AdminReply r;
  r.status = status;
  r.body = json::serialize(v);
  return r;
}

json::object EntryJson(const EntitlementEntry& e) {
  const EntitlementSpec& s = e.spec;
  json::object quotas;
  for (int w = 0; w < kNumQuotaWindows; ++w) {
    if (s.quotas.limit[w] > 0) {
      quotas[QuotaWindowName(static_cast<QuotaWindow>(w))] = s.quotas.limit[w];
    }
  }
  return {{"tenant", e.tenant},
          {"pool", e.pool},
          {"class", EntitlementClassName(s.cls)},
          {"priority", s.priority},
          {"weight", JsonNumber(s.weight)},
          {"guarantee", ResourceVectorJson(s.guarantee)},
          {"burst", ResourceVectorJson(s.burst)},
          {"slo",
           {{"ttft_ms", JsonNumber(ToMilliseconds(s.slo.ttft_target))},
            {"max_queue_wait_ms", JsonNumber(ToMilliseconds(s.slo.max_queue_wait))}}},
          {"quotas", quotas}};
}

json::object CountersJson(const AdmissionCounters& c) {
  json::object outcomes;
  for (int o = 0; o < kNumAdmissionOutcomes; ++o) {
    const uint64_t n = c.outcomes[static_cast<size_t>(o)];
    if (n > 0) outcomes[AdmissionOutcomeName(static_cast<AdmissionOutcome>(o))] = n;
  }
  return {{"outcomes", outcomes},
          {"settled", c.settled},
          {"released", c.released},
          {"prompt_tokens", c.prompt_tokens},
          {"completion_tokens", c.completion_tokens}};
}

// Each tenant's entitlements: the one in force per pool, and removed ones still draining
// (their reservations not all closed; "draining": true), those of a tenant that a reload
// removed from the file included (listed after the file's tenants).
AdminReply Tenants(GatewayState& state) {
  std::vector<std::string> names;
  std::set<std::string, std::less<>> known;
  for (const TenantSpec& t : state.config().tenants) {
    names.push_back(t.name);
    known.insert(t.name);
  }
  for (int p = 0; p < state.pool_count(); ++p) {
    PoolState& ps = state.pool(p);
    for (const EntitlementRef ref : ps.pool->DrainingEntitlements()) {
      Result<EntitlementSnapshot> e = ps.pool->SnapshotEntitlement(ref);
      if (e.ok() && known.insert(e->tenant).second) names.push_back(e->tenant);
    }
  }
  json::array tenants;
  for (const std::string& name : names) {
    json::array ents;
    for (int p = 0; p < state.pool_count(); ++p) {
      PoolState& ps = state.pool(p);
      std::vector<EntitlementRef> refs;
      if (auto it = ps.by_tenant.find(name); it != ps.by_tenant.end())
        refs.push_back(it->second.ref);
      for (const EntitlementRef ref : ps.pool->DrainingEntitlements()) refs.push_back(ref);
      for (const EntitlementRef ref : refs) {
        Result<EntitlementSnapshot> e = ps.pool->SnapshotEntitlement(ref);
        if (!e.ok() || e->tenant != name) continue;
        json::object quota;
        for (int w = 0; w < kNumQuotaWindows; ++w) {
          const int64_t left = e->quota_remaining[static_cast<size_t>(w)];
          if (left >= 0) quota[QuotaWindowName(static_cast<QuotaWindow>(w))] = left;
        }
        ents.push_back(json::object{{"pool", ps.spec.name},
                                    {"class", EntitlementClassName(e->cls)},
                                    {"guarantee", ResourceVectorJson(e->guarantee)},
                                    {"burst", ResourceVectorJson(e->burst)},
                                    {"in_use", ResourceVectorJson(e->in_use)},
                                    {"burst_ceiling", ResourceVectorJson(e->burst_ceiling)},
                                    {"debt_tokens", JsonNumber(e->debt_tokens)},
                                    {"queued", e->queued},
                                    {"served_tokens", e->served_tokens},
                                    {"quota_remaining", quota},
                                    {"counters", CountersJson(e->counters)},
                                    {"draining", e->draining}});
      }
    }
    tenants.push_back(json::object{{"name", name}, {"entitlements", ents}});
  }
  return Ok(200, json::object{{"tenants", tenants}});
}

AdminReply Estimator(GatewayState& state) {
  json::array cats;
  for (const EstimatorCategoryState& c : state.estimator().Categories()) {
    cats.push_back(json::object{{"name", c.name},
                                {"samples", c.samples},
                                {"learned", c.learned},
                                {"trusted", c.trusted},
                                {"bytes_per_token", JsonNumber(c.bytes_per_token)},
                                {"model_bytes_per_token", JsonNumber(c.model_bytes_per_token)},
                                {"spread", JsonNumber(c.spread)}});
  }
  return Ok(200, json::object{{"mode", state.estimator().Name()}, {"categories", cats}});
}

AdminReply Entitlements(GatewayState& state) {
  json::array out;
  for (const EntitlementEntry& e : state.config().entitlements) {
    json::object o = EntryJson(e);
    o["source"] = std::string_view(state.IsAdminOverride(e.tenant, e.pool) ? "admin" : "file");
    out.push_back(std::move(o));
  }
  return Ok(200, json::object{{"entitlements", out}});
}

// GET /admin/entitlements/TENANT/POOL: the entry as the list shows it, or 404.
AdminReply OneEntitlement(GatewayState& state, const std::string& tenant, const std::string& pool) {
  const std::vector<EntitlementEntry>& list = state.config().entitlements;
  const size_t at = EntitlementIndex(list, tenant, pool);
  if (at == list.size()) {
    return Error(404, "no entitlement of tenant \"" + tenant + "\" on pool \"" + pool + "\"",
                 "not_found");
  }
  json::object o = EntryJson(list[at]);
  o["source"] = std::string_view(state.IsAdminOverride(tenant, pool) ? "admin" : "file");
  return Ok(200, std::move(o));
}

// Applies `next` (the running config with the entitlement of (tenant, pool) changed to
// `changed`, or deleted: nullptr) through the core, and remembers it over file reloads.
AdminReply Apply(GatewayState& state, const GatewayConfig& next, int status,
                 const std::string& tenant, const std::string& pool,
                 const EntitlementEntry* changed) {
  if (Status s = state.Reload(next); !s.ok()) {
    // "<config file>: entitlements[i]: tenant ... on pool ...: why": the file and the entry's
    // index mean nothing to an API caller.
    // ("<config file>:<line>: entitlements[i]: ..." where the entry is the file's.)
    std::string m = s.message();
    if (m.starts_with(next.source)) {
      if (const size_t at = m.find(": entitlements[", next.source.size());
          at != std::string::npos) {
        if (const size_t end = m.find("]: ", at); end != std::string::npos) m.erase(0, end + 3);
      }
    }
    return Error(409, m, "refused");
  }
  state.RecordAdminChange(tenant, pool, changed);
  AdminReply r = changed != nullptr ? Ok(status, EntryJson(*changed))
                                    : Ok(status, json::object{{"deleted", true}});
  r.reloaded = true;
  return r;
}

// Whole doubles (2.0, 1e3) as integers, everywhere in `v`: the body is read as YAML after
// Boost.JSON writes it, which writes 2.0 as 2E0, a float to YAML ("priority: expected an
// integer", where the request path takes whole floats as vLLM's pydantic does).
void WholeNumbersAsIntegers(json::value& v) {
  if (v.is_double()) {
    const double d = v.get_double();
    if (std::trunc(d) == d && std::fabs(d) < 9.2e18) v = static_cast<int64_t>(d);
  } else if (v.is_object()) {
    for (auto& kv : v.get_object()) WholeNumbersAsIntegers(kv.value());
  } else if (v.is_array()) {
    for (json::value& e : v.get_array()) WholeNumbersAsIntegers(e);
  }
}

// The body as an entitlement entry; tenant and pool default to the path's (PUT).
Result<EntitlementEntry> ReadEntry(std::string_view body, const std::string& tenant,
                                   const std::string& pool) {
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec) return InvalidArgument("request body: malformed JSON: " + ec.message());
  if (!v.is_object()) {
    return InvalidArgument("request body: expected a JSON object (an entitlements entry)");
  }
  json::object& o = v.as_object();
  // Names are JSON strings ("tenant":123 was read, through YAML, as the tenant "123").
  for (const char* key : {"tenant", "pool", "class"}) {
    if (const json::value* f = o.if_contains(key); f != nullptr && !f->is_string()) {
      return InvalidArgument(std::string("request body: entitlement.") + key +
                             ": expected a string");
    }
  }
  if (!tenant.empty() && !o.contains("tenant")) o["tenant"] = tenant;
  if (!pool.empty() && !o.contains("pool")) o["pool"] = pool;
  WholeNumbersAsIntegers(v);
  return ParseEntitlementEntry(json::serialize(v), "request body");
}

AdminReply Create(GatewayState& state, std::string_view body) {
  Result<EntitlementEntry> e = ReadEntry(body, "", "");
  if (!e.ok()) return Error(400, e.status().message(), "invalid_entitlement");
  const GatewayConfig& c = state.config();
  if (!HasTenant(c, e->tenant)) {
    return Error(400, "tenant: unknown tenant \"" + e->tenant + "\"", "invalid_entitlement");
  }
  if (!HasPool(c, e->pool)) {
    return Error(400, "pool: unknown pool \"" + e->pool + "\"", "invalid_entitlement");
  }
  if (EntitlementIndex(c.entitlements, e->tenant, e->pool) != c.entitlements.size()) {
    return Error(409,
                 "tenant \"" + e->tenant + "\" already has an entitlement on pool \"" + e->pool +
                     "\"; use PUT /admin/entitlements/" + e->tenant + "/" + e->pool,
                 "already_exists");
  }
  GatewayConfig next = c;
  next.entitlements.push_back(*e);
  return Apply(state, next, 201, e->tenant, e->pool, &*e);
}

AdminReply Change(GatewayState& state, std::string_view method, const std::string& tenant,
                  const std::string& pool, std::string_view body) {
  const GatewayConfig& c = state.config();
  const size_t at = EntitlementIndex(c.entitlements, tenant, pool);
  if (at == c.entitlements.size()) {
    return Error(404, "no entitlement of tenant \"" + tenant + "\" on pool \"" + pool + "\"",
                 "not_found");
  }
  GatewayConfig next = c;
  if (method == "DELETE") {
    next.entitlements.erase(next.entitlements.begin() + static_cast<std::ptrdiff_t>(at));
    return Apply(state, next, 200, tenant, pool, nullptr);
  }
  Result<EntitlementEntry> e = ReadEntry(body, tenant, pool);
  if (!e.ok()) return Error(400, e.status().message(), "invalid_entitlement");
  if (e->tenant != tenant || e->pool != pool) {
    return Error(400,
                 "tenant and pool in the body must match the path (" + tenant + "/" + pool + ")",
                 "invalid_entitlement");
  }
  next.entitlements[at] = *e;
  return Apply(state, next, 200, tenant, pool, &*e);
}

json::value OptionalEntryJson(const std::optional<EntitlementEntry>& e) {
  if (!e.has_value()) return nullptr;
  return EntryJson(*e);
}

}  // namespace

std::string AdminOverridesJson(const GatewayState& state) {
  json::array out;
  for (const auto& [key, o] : state.admin_overrides()) {
    out.push_back(json::object{{"tenant", key.first},
                               {"pool", key.second},
                               {"entry", OptionalEntryJson(o.entry)},
                               {"base", OptionalEntryJson(o.base)}});
  }
  return json::serialize(
      json::object{{"version", kAdminStateVersion}, {"overrides", std::move(out)}});
}

Result<GatewayState::AdminOverrides> ParseAdminOverrides(std::string_view text,
                                                         const std::string& source) {
  json::error_code ec;
  const json::value v = json::parse(text, ec);
  if (ec) return InvalidArgument(source + ": not JSON (" + ec.message() + ")");
  const json::object* root = v.if_object();
  // The format this build writes; a file from a build with another one is refused rather than
  // read as something it is not.
  const json::value* version = root != nullptr ? root->if_contains("version") : nullptr;
  if (version == nullptr || !version->is_int64() || version->as_int64() != kAdminStateVersion) {
    return InvalidArgument(source + ": version: expected " + std::to_string(kAdminStateVersion) +
                           " (the admin state format this build reads and writes)");
  }
  const json::value* list = root != nullptr ? root->if_contains("overrides") : nullptr;
  if (list == nullptr || !list->is_array()) {
    return InvalidArgument(source + ": overrides: expected an array");
  }
  GatewayState::AdminOverrides out;
  size_t i = 0;
  for (const json::value& item : list->as_array()) {
    const std::string at = source + ": overrides[" + std::to_string(i++) + "]";
    const json::object* o = item.if_object();
    const json::value* tenant = o != nullptr ? o->if_contains("tenant") : nullptr;
    const json::value* pool = o != nullptr ? o->if_contains("pool") : nullptr;
    if (tenant == nullptr || !tenant->is_string() || pool == nullptr || !pool->is_string()) {
      return InvalidArgument(at + ": expected an object with the strings tenant and pool");
    }
    const GatewayState::EntitlementKey key{std::string(tenant->as_string()),
                                           std::string(pool->as_string())};
    GatewayState::AdminOverride ov;
    for (const char* field : {"entry", "base"}) {
      const json::value* e = o->if_contains(field);
      if (e == nullptr || (!e->is_null() && !e->is_object())) {
        return InvalidArgument(at + "." + field + ": expected an entitlement (object) or null");
      }
      if (e->is_null()) continue;
      Result<EntitlementEntry> entry = ParseEntitlementEntry(json::serialize(*e), at + "." + field);
      if (!entry.ok()) return entry.status();
      if (entry->tenant != key.first || entry->pool != key.second) {
        return InvalidArgument(at + "." + field + ": tenant and pool must be the override's (" +
                               key.first + "/" + key.second + ")");
      }
      (std::string_view(field) == "entry" ? ov.entry : ov.base) = std::move(*entry);
    }
    if (ov.entry == ov.base) {
      return InvalidArgument(at + ": entry and base are the same: not an override");
    }
    if (!out.emplace(key, std::move(ov)).second) {
      return InvalidArgument(at + ": " + key.first + "/" + key.second + " listed twice");
    }
  }
  return out;
}

Status SaveAdminState(const GatewayState& state, const std::string& path) {
  return WriteAdminState(AdminOverridesJson(state), path);
}

Status WriteAdminState(std::string_view json_text, const std::string& path) {
  const std::string text = std::string(json_text) + "\n";
  const std::string tmp = path + ".tmp";
  // `err`: the errno of the failed call, taken before anything else can change it.
  const auto fail = [&](const std::string& what, int err, int fd) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    return Status(StatusCode::kUnavailable, path + ": " + what + ": " + std::strerror(err));
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return fail("cannot create " + tmp, errno, -1);
  if (const int err = WriteAllFd(fd, text); err != 0) return fail("cannot write " + tmp, err, fd);
  if (::fsync(fd) != 0) return fail("cannot sync " + tmp, errno, fd);
  ::close(fd);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot replace it", errno, -1);
  // The rename itself made durable: the directory's entry synced too.
  const size_t slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  if (const int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); d >= 0) {
    ::fsync(d);
    ::close(d);
  }
  return Status::Ok();
}

Status LoadAdminState(GatewayState& state, const std::string& path,
                      std::vector<std::string>* notes) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec) && !ec) return Status::Ok();  // nothing saved yet
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status(StatusCode::kUnavailable, path + ": cannot read the admin state file");
  }
  std::ostringstream text;
  text << in.rdbuf();
  Result<GatewayState::AdminOverrides> saved = ParseAdminOverrides(text.str(), path);
  if (!saved.ok()) return saved.status();
  const size_t read = saved->size();
  if (Status s = state.RestoreAdminOverrides(std::move(*saved), notes); !s.ok()) {
    return Status(s.code(), path + ": the entitlement changes saved there cannot be applied over "
                                   "the config file's: " +
                                s.message() + " (remove or edit the file to start without them)");
  }
  // Those the config file has overtaken go from the state file too, or a later config that
  // says again what they were made against would bring them back.
  if (static_cast<size_t>(state.admin_override_count()) != read) return SaveAdminState(state, path);
  return Status::Ok();
}

AdminReply HandleAdminRequest(GatewayState& state, std::string_view method, std::string_view target,
                              std::string_view body) {
  const boost::system::result<boost::urls::url_view> url = boost::urls::parse_origin_form(target);
  if (!url) return Error(400, "bad request target: " + std::string(target), "bad_request_target");
  const std::string_view path = url->encoded_path();
  const bool get = method == "GET" || method == "HEAD";
  const auto not_allowed = [](std::string_view allow) {
    AdminReply r = Error(405, "use " + std::string(allow), "method_not_allowed");
    r.allow = allow;
    return r;
  };
  if (path == "/admin/pools") {
    if (!get) return not_allowed("GET, HEAD");
    AdminReply r;
    r.body = state.PoolsJson();
    return r;
  }
  if (path == "/admin/tenants") {
    if (!get) return not_allowed("GET, HEAD");
    return Tenants(state);
  }
  if (path == "/admin/estimator") {
    if (!get) return not_allowed("GET, HEAD");
    return Estimator(state);
  }
  if (path == "/admin/entitlements") {
    if (get) return Entitlements(state);
    if (method == "POST") return Create(state, body);
    return not_allowed("GET, HEAD, POST");
  }
  if (path.starts_with("/admin/entitlements/")) {
    const boost::urls::segments_view segs = url->segments();  // decoded
    std::vector<std::string> parts(segs.begin(), segs.end());
    if (parts.size() != 4 || parts[2].empty() || parts[3].empty()) {
      return Error(404, "expected /admin/entitlements/TENANT/POOL", "not_found");
    }
    if (method == "PUT" || method == "DELETE")
      return Change(state, method, parts[2], parts[3], body);
    if (get) return OneEntitlement(state, parts[2], parts[3]);
    return not_allowed("GET, HEAD, PUT, DELETE");
  }
  return Error(404, "Not Found: " + std::string(path), "not_found");
}

}  // namespace tokenpool::gateway
