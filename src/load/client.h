#pragma once
// RunLoad: sends a LoadPlan to an OpenAI-compatible server, open loop, and measures every
// request. One io_context on the calling thread: a dispatcher coroutine wakes at each due time
// and spawns one coroutine per request, which never waits for earlier requests. Requests go
// over a pool of keep-alive HTTP/1.1 connections that grows on demand up to
// --max-connections; a request due while every connection is busy at the cap is recorded as
// dropped instead of waiting (waiting would turn the generator into a closed loop and hide
// the server's latency), and one written more than --late-ms after its due time as late.
//
// Per request it records the status, x-tokenpool-class, x-tokenpool-queue-ms, TTFT (the first
// SSE event with content), TPOT, end-to-end time, and the usage of the stream's last event.
// Before the run it connects once (--connect-timeout) and, without --model, asks GET
// /v1/models: a server that is not there fails here with a clear Status, not a hang. Requests
// still running --drain seconds after the last arrival are cut and recorded as timeouts.
//
//   Result<LoadPlan> plan = BuildPlan(config);
//   Result<LoadResult> r = RunLoad(config, *plan, isatty(2) ? stderr : nullptr);
//
// Thread-safety: RunLoad is reentrant (each call owns its io_context); it blocks the caller.

#include <cstdio>

#include "load/config.h"
#include "load/plan.h"
#include "load/report.h"
#include "tokenpool/status.h"

namespace tokenpool::load {

// `progress`: where the live line goes, redrawn once a second ("\r"); null for none.
// Errors: Unavailable when the target cannot be reached; FailedPrecondition when the model
// cannot be learned from /v1/models.
Result<LoadResult> RunLoad(const LoadConfig& config, const LoadPlan& plan, std::FILE* progress);

}  // namespace tokenpool::load
