#pragma once
// The mock model server: an OpenAI-compatible vLLM stand-in on Boost.Beast/Asio with C++20
// coroutines and HTTP/1.1 keep-alive, one thread. Timing and capacity come from the engine
// model (engine/engine.h) run on real timers: each Step() is followed by an Asio steady_timer
// that fires after the iteration time / speedup, when that iteration's tokens are delivered.
//
// Endpoints: POST /v1/chat/completions, POST /v1/completions (stream or not), GET /v1/models,
// GET /health, GET /metrics, GET|POST /control/faults, POST /control/restart ({"down_ms": N}:
// drop every in-flight request, reset the engine and the metrics, and close every connection
// that sends a request for N ms). Behaviour and formats: docs/mock.md.
//
//   MockConfig config;
//   config.port = 0;                          // any free port
//   Status s = RunMockServer(config, stdout);  // blocks until SIGINT or SIGTERM
//
// Thread-safety: RunMockServer() runs everything on the calling thread.

#include <cstdio>

#include "mock/config.h"
#include "tokenpool/status.h"

namespace tokenpool::mock {

// Validates the config, binds, prints "tokenpool mock listening on HOST:PORT ..." (one line,
// flushed) to `out`, and serves until SIGINT or SIGTERM. Errors: a bad config or profile
// (InvalidArgument / NotFound naming the flag), or the address cannot be bound (Unavailable).
Status RunMockServer(const MockConfig& config, std::FILE* out);

}  // namespace tokenpool::mock
