#pragma once
// The capacity model: pure functions from an InstanceProfile (tokenpool/profile.h) and a
// workload shape to what one replica (and a pool of replicas) can carry, in the three
// inference-native dimensions of ResourceVector. Derivation and sources: docs/capacity-model.md.
//
//   KV bytes/token = 2 (K and V) × layers × kv_heads × head_dim × kv_dtype_bytes
//   KV blocks      = floor((gpu_memory × TP × utilization − weights − reserve × TP)
//                          / (KV bytes/token × block_size))            (or the override)
//   slots          = min(max_num_seqs, floor(KV tokens / max_model_len))   worst-case
//   t(n, ctx, p)   = W + H·n + K·ctx + p / prefill_rate
//
//   ReplicaPerformance r = AnalyzeReplica(profile, {.mean_prompt_tokens = 2048,
//                                                   .mean_output_tokens = 28});
//   ResourceVector pool = PoolCapacity(profile, workload, /*replicas=*/4);
//
// Every function requires profile.Validate().ok() and workload.Validate().ok(); they do not
// re-check (callers validate once, at the edge).
//
// Thread-safety: pure functions of their arguments.

#include <cstdint>

#include "tokenpool/profile.h"
#include "tokenpool/resources.h"
#include "tokenpool/status.h"
#include "tokenpool/units.h"

namespace tokenpool {

// The mean request a replica serves. Defaults: the Azure LLM inference 2023 conversation trace
// (means 1,155 prompt and 211 output tokens, ../shared/traces/README.md), the most
// chat-like public production trace we have.
struct WorkloadShape {
  double mean_prompt_tokens = 1155;
  double mean_output_tokens = 211;
  // Mean over requests of ceil(prompt / prefill_chunk_tokens); 0 = ceil(mean prompt / chunk).
  // The planner sets it from a trace, since the mean of the ceilings exceeds the ceiling of
  // the mean.
  double mean_prefill_chunks = 0;

  // OK, or InvalidArgument naming the field: values >= 0 and finite, prompt + output > 0.
  Status Validate() const;
};

int64_t KvBytesPerToken(const ModelShape& shape);
int64_t WeightsBytes(const ModelShape& shape);
// Bytes left for the KV cache over the whole replica (may be <= 0 for an unusable profile).
double KvCacheBytes(const InstanceProfile& profile);
int64_t KvBlocks(const InstanceProfile& profile);
int64_t KvTokens(const InstanceProfile& profile);  // blocks × block_size
int64_t Slots(const InstanceProfile& profile);

// One engine step, in seconds: W + H·seqs + K·context_tokens + prefill_tokens / prefill_rate
// (the last term only for PrefillModel::kComputeBound).
double IterationSeconds(const IterationModel& m, double seqs, double context_tokens,
                        double prefill_tokens);
Duration IterationTime(const IterationModel& m, double seqs, double context_tokens,
                       double prefill_tokens);

// A replica at its capacity point: every slot busy with the mean request of the workload
// (fewer when the chunked-prefill budget binds first, see active_seqs).
struct ReplicaPerformance {
  int64_t slots = 0;      // sequences admitted at max_model_len, worst case
  int64_t kv_tokens = 0;  // KV cache of the replica
  // Sequences in flight at capacity: slots, or fewer when prefill tokens per iteration would
  // exceed prefill_chunk_tokens (compute-bound; the rest wait outside the batch).
  double active_seqs = 0;
  double context_tokens_per_seq = 0;  // prompt + output/2, clamped to max_model_len
  double iterations_per_request = 0;  // prefill chunks + output tokens
  double prefill_chunks = 0;          // iterations a request spends in prefill
  double step_s = 0;                  // iteration time at capacity (≈ TPOT)
  double service_s = 0;               // time a request holds a slot: iterations × step
  double prefill_s = 0;               // prefill chunks × step: TTFT once a slot is free
  double requests_per_s = 0;          // active_seqs / service_s
  double tokens_per_s = 0;            // requests_per_s × (prompt + output)
};

ReplicaPerformance AnalyzeReplica(const InstanceProfile& profile, const WorkloadShape& workload);

// {token_rate = prompt + output tokens/s at capacity, kv_tokens = KV tokens of the replica,
//  concurrency = slots}.
ResourceVector ReplicaCapacity(const InstanceProfile& profile, const WorkloadShape& workload);
// replicas × ReplicaCapacity. Requires replicas >= 0.
ResourceVector PoolCapacity(const InstanceProfile& profile, const WorkloadShape& workload,
                            int64_t replicas);

}  // namespace tokenpool
