#pragma once
// InstanceProfile: one serving replica (a vLLM-like engine on `tensor_parallel` GPUs) described
// by what fixes its capacity: the model's shape, the GPU memory, vLLM's memory settings and an
// iteration-time model. The capacity model (tokenpool/capacity.h) turns a profile into slots,
// KV tokens and token throughput; the planner, the simulator, the mock and the gateway all use
// that one model.
//
//   Result<InstanceProfile> p = FindProfile("llama-3-70b-a100");
//   if (!p.ok()) return p.status();        // lists the known names
//   InstanceProfile short_pool = WithMaxModelLen(*p, 8192);
//
// Every built-in figure carries its source in profile.cc and in docs/capacity-model.md.
//
// Thread-safety: plain values; the built-in table is immutable and safe to read from any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tokenpool/status.h"

namespace tokenpool {

// The part of a model's architecture that sizes its weights and its KV cache.
struct ModelShape {
  int64_t layers = 0;
  int64_t kv_heads = 0;  // grouped-query attention: KV heads, not query heads
  int64_t head_dim = 0;
  int64_t kv_dtype_bytes = 2;  // bf16/fp16 KV cache
  int64_t parameter_count = 0;
  int64_t weight_dtype_bytes = 2;  // bf16 weights
};

// How a replica spends prefill work.
enum class PrefillModel {
  // vLLM with chunked prefill: at most `prefill_chunk_tokens` prompt tokens per iteration
  // (max_num_batched_tokens) across the whole batch, and every prompt token costs compute time
  // at `prefill_tokens_per_s`. A prefill-heavy workload becomes compute-bound.
  kComputeBound,
  // fleet-sim's model: each sequence prefills `prefill_chunk_tokens` per iteration and the
  // iteration time does not grow with them (prefill costs slot time only). Used to reproduce
  // fleet-sim's published figures.
  kSlotIterations,
};

std::string_view PrefillModelName(PrefillModel m);

// Iteration (engine step) time: t = W + H·n + K·context + prefill_tokens / prefill_rate,
// n = sequences in the batch, context = KV tokens they attend over, all in seconds.
struct IterationModel {
  double weights_s = 0;              // W: weight read per step
  double per_seq_s = 0;              // H: per sequence in the batch
  double per_context_token_s = 0;    // K: per context token in the batch (KV read)
  double prefill_tokens_per_s = 0;   // prefill compute rate; used by kComputeBound only
  int64_t prefill_chunk_tokens = 0;  // chunked-prefill budget per iteration
  PrefillModel prefill_model = PrefillModel::kComputeBound;
};

struct InstanceProfile {
  std::string name;              // table key, e.g. "llama-3-70b-a100"
  std::string model;             // e.g. "meta-llama/Meta-Llama-3-70B"
  std::string gpu;               // e.g. "A100-SXM4-80GB"
  int64_t tensor_parallel = 1;   // GPUs per replica
  int64_t gpu_memory_bytes = 0;  // per GPU, as the driver reports it
  ModelShape shape;
  double gpu_memory_utilization = 0.9;  // vLLM's default
  int64_t reserve_bytes_per_gpu = 0;    // activations, CUDA graphs, NCCL buffers
  int64_t block_size = 16;              // vLLM's default paged-KV block, tokens
  int64_t max_num_seqs = 256;           // vLLM's cap on sequences in a batch
  int64_t max_model_len = 0;            // context (prompt + output) a replica accepts
  // KV blocks stated directly (fleet-sim's profiles give 65,536); when set, the memory
  // arithmetic is not used and not checked.
  std::optional<int64_t> kv_blocks_override;
  IterationModel iteration;
  double usd_per_gpu_hour = 0;

  // OK, or InvalidArgument naming the field and the rule:
  //   "profiles[llama-3-70b-a100].shape.kv_heads: must be > 0".
  // Checks ranges, that the weights fit the usable memory, and that at least one sequence of
  // max_model_len fits the KV cache (zero capacity is an error).
  Status Validate() const;
};

// A copy with max_model_len = n: a short pool is the same replica with a shorter context.
InstanceProfile WithMaxModelLen(InstanceProfile profile, int64_t n);

// The built-in profiles, by name. Unknown name: NotFound listing the known names.
Result<InstanceProfile> FindProfile(std::string_view name);
std::vector<std::string> BuiltinProfileNames();

}  // namespace tokenpool
