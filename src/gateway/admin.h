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
// nothing changes. They live in memory: a later reload of the config file replaces them with
// the file's entitlements.
//
// Thread-safety: the caller holds the lock that guards `state`.

#include <string>
#include <string_view>

#include "gateway/state.h"

namespace tokenpool::gateway {

struct AdminReply {
  int status = 200;
  std::string body;       // JSON
  bool reloaded = false;  // entitlements changed: the caller dispatches every pool's queue
};

AdminReply HandleAdminRequest(GatewayState& state, std::string_view method, std::string_view target,
                              std::string_view body);

}  // namespace tokenpool::gateway
