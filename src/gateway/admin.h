#pragma once
// The admin API behind `admin:` in the gateway config (its own listener and bearer token; the
// server checks the token). JSON in and out; errors are OpenAI-shaped
// ({"error":{"message","type","code"}}).
//
//   GET    /admin/pools                         capacity, in use per dimension, queue, desired
//                                               replicas and backends, per pool
//   GET    /admin/tenants                       per tenant and pool: class, usage, burst
//                                               ceiling, debt, quota left, counters
//   GET    /admin/estimator                     the estimator's learned state per category
//   GET    /admin/entitlements                  the entitlements in force
//   POST   /admin/entitlements                  create one (body: an `entitlements` entry of
//                                               the config file, as JSON) -> 201
//   PUT    /admin/entitlements/TENANT/POOL      replace one (same body; tenant and pool from
//                                               the path when the body omits them) -> 200
//   DELETE /admin/entitlements/TENANT/POOL      remove one -> 200
// Changes go through GatewayState::Reload, i.e. the core's entitlement admission over the whole
// new set (promised = provisioned): a change the pools cannot honour is refused with 409 and
// nothing changes. They outlive reloads of the config file: an entitlement the API changed
// (created, replaced, deleted) stays as the API left it until the file changes that same
// entitlement (then the file's wins) or drops its tenant or pool (GatewayState::ReloadFile);
// GET lists each with "source": "file" or "admin". With admin.state_file they outlive a
// restart too (SaveAdminState, LoadAdminState); without it a restart starts from the file.
//
// Thread-safety: the caller holds the lock that guards `state`.

#include <string>
#include <string_view>
#include <vector>

#include "gateway/state.h"

namespace tokenpool::gateway {

struct AdminReply {
  int status = 200;
  std::string body;       // JSON
  bool reloaded = false;  // entitlements changed: the caller dispatches every pool's queue
  std::string_view allow;  // a 405's Allow header: the path's methods
};

// `target` as the request line has it: a query is ignored, TENANT and POOL are percent-decoded
// (a name with a space or a slash is addressed as %20, %2F). HEAD is answered as GET (the
// caller sends no body).
AdminReply HandleAdminRequest(GatewayState& state, std::string_view method, std::string_view target,
                              std::string_view body);

// The admin API's overrides (GatewayState::admin_overrides) as the JSON of admin.state_file:
//   {"version":1,"overrides":[{"tenant","pool","entry":{...}|null,"base":{...}|null}]}
// with entries as GET /admin/entitlements shows them (the config file's fields).
inline constexpr int64_t kAdminStateVersion = 1;
std::string AdminOverridesJson(const GatewayState& state);
// That JSON back; an error names `source`, the field and the rule (a version other than
// kAdminStateVersion, or none, is an error).
Result<GatewayState::AdminOverrides> ParseAdminOverrides(std::string_view text,
                                                         const std::string& source);

// Writes AdminOverridesJson to `path`: a temporary file beside it, synced, renamed over it and
// the directory synced, so that a crash leaves the old file or the new one whole.
Status SaveAdminState(const GatewayState& state, const std::string& path);
// The same with the JSON taken already (AdminOverridesJson): the gateway takes it under its
// lock and writes and syncs the file after, so that no worker waits on the disk.
Status WriteAdminState(std::string_view json_text, const std::string& path);
// At start: the overrides saved in `path` restored (GatewayState::RestoreAdminOverrides); a
// missing file is an empty one. When the config file has overtaken some (dropped, in *notes),
// the state file is written again without them. An unreadable or malformed file, or saved
// changes the pools cannot honour over the config file's, is an error that names the file:
// the caller refuses to start rather than run without the changes made through the API.
Status LoadAdminState(GatewayState& state, const std::string& path,
                      std::vector<std::string>* notes);

}  // namespace tokenpool::gateway
