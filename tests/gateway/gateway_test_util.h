#pragma once
// Test helpers for the gateway: the shared blocking HTTP/1.1 client (tests/common/http_client.h:
// request headers, keep-alive, Content-Length and chunked bodies, SSE event splitting) and free
// ports. Child processes (mocks, the gateway) are gateway::ChildProcess, stopped by PID.
//
// Thread-safety: one test thread.

#include "../common/http_client.h"
#include "../common/test_util.h"

namespace tokenpool::gateway::testing {

using ::tokenpool::test::Client;
using ::tokenpool::test::Response;
using ::tokenpool::test::SseEvents;
using ::tokenpool::test::UnusedPort;

}  // namespace tokenpool::gateway::testing
