#pragma once
// Configuration of the mock model server (`tokenpool mock`): what it serves, how fast, and the
// faults it injects. Faults can also be changed at run time through POST /control/faults with a
// JSON object of the same field names (fields left out keep their value).
//
//   MockConfig c;
//   c.port = 8000;
//   c.faults.fail_rate = 0.1;                  // 10% of completions answer 503
//   if (Status s = c.Validate(); !s.ok()) ...  // "faults.fail_status: must be 500 or 503"
//
// Thread-safety: plain values.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "tokenpool/status.h"

namespace tokenpool::mock {

struct FaultConfig {
  double fail_rate = 0;             // share of completion requests answered with fail_status
  int fail_status = 503;            // 500 or 503
  double added_latency_ms = 0;      // delay before a completion request is looked at
  double first_token_stall_ms = 0;  // stall after the response starts, before the first token
  double drop_rate = 0;             // share of completions whose connection is dropped mid-way
                                    // (streaming: after half the chunks; else before the reply)

  Status Validate() const;  // names the field: "faults.fail_rate: must be in [0, 1]"
};

// Replaces the fields present in `json` (an object) and validates the result; on error *faults
// is unchanged.
Status ApplyFaultsJson(std::string_view json, FaultConfig* faults);
std::string FaultsJson(const FaultConfig& faults);

struct MockConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 8000;  // 0: any free port (printed on start)
  std::string profile = "llama-3-8b-h100";
  std::string model;                    // served model name; empty: the profile's name
  // Unset: the profile's (KV blocks: from the capacity model). Set, each must be > 0: a 0 is
  // an error, not "the default" (it was silently replaced by the profile's value).
  std::optional<int64_t> max_model_len;
  std::optional<int64_t> max_num_seqs;
  std::optional<int64_t> num_gpu_blocks_override;  // vLLM's flag
  double speedup = 1;                   // simulated time runs this many times faster than real time
  uint64_t seed = 0;                    // seeds generated text and fault draws
  bool instant = false;                 // no simulated compute: answer at once (throughput mode)
  // Output length when a request gives no max_tokens (it then ends with finish_reason "stop",
  // as a model emitting EOS): 256, a typical chat answer length (Azure conversation trace mean
  // output is 211 tokens).
  int64_t default_max_tokens = 256;
  // vLLM's --api-key: when set, /v1 requests need "Authorization: Bearer <key>" (else 401
  // {"error": "Unauthorized"}, as vLLM answers); /health and /metrics stay open, as in vLLM.
  std::string api_key;
  FaultConfig faults;

  Status Validate() const;
};

}  // namespace tokenpool::mock
