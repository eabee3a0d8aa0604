#pragma once
// Engine: a model of one vLLM-like serving replica, driven by its caller. The simulator drives
// it on virtual time, the mock server (src/mock/) on real timers; the engine itself never reads
// a clock: every call takes `now`.
//
//   Engine engine(EngineConfig::FromProfile(profile));
//   engine.Submit({.id = 7, .prompt_tokens = 900, .max_tokens = 64}, now);  // may refuse
//   StepResult r;
//   while (engine.HasWork()) {
//     engine.Step(now, &r);        // one iteration that starts at `now`
//     now = r.end;                  // its tokens exist at r.end = now + r.duration
//     for (const SeqOutput& o : r.outputs) Deliver(o);
//   }
//
// What it models (vLLM V1's scheduler, simplified):
//   - Continuous batching at iteration level: every Step() runs the running sequences first,
//     then admits waiting ones (FCFS) while the batch has room.
//   - Chunked prefill: at most `iteration.prefill_chunk_tokens` new tokens per iteration across
//     the batch (vLLM's max_num_batched_tokens); a decoding sequence takes one of them, a
//     prefilling one takes what is left. With PrefillModel::kSlotIterations (fleet-sim) the
//     budget is per sequence instead and prefill adds no time.
//   - The iteration that computes the last prompt token also samples the first output token;
//     each later iteration adds one token per running sequence.
//   - Paged KV: blocks of `block_size` tokens; a sequence holds ceil(computed tokens /
//     block_size) blocks. When the next iteration's tokens do not fit, the newest running
//     sequence is preempted by recompute (its blocks are freed; it goes to the front of the
//     waiting queue and later prefills its prompt and its output so far again).
//   - max_num_seqs caps the batch; a request whose prompt + max_tokens exceeds max_model_len
//     is refused at Submit() with vLLM's message.
//   - Iteration time: IterationTime(iteration, seqs, context tokens, prefill tokens) from the
//     capacity model (tokenpool/capacity.h); context tokens = KV tokens the batch attends over.
//
// Thread-safety: not synchronized; one owner (the simulator loop or the mock's I/O thread).

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenpool/profile.h"
#include "tokenpool/status.h"
#include "tokenpool/units.h"

namespace tokenpool::engine {

struct EngineConfig {
  int64_t max_num_seqs = 256;  // vLLM's default
  int64_t max_model_len = 8192;
  int64_t block_size = 16;  // vLLM's default paged-KV block, tokens
  int64_t kv_blocks = 0;    // KV blocks of the replica (capacity model's KvBlocks)
  IterationModel iteration;

  // From a profile: its max_num_seqs, max_model_len, block_size, iteration model and
  // KvBlocks(profile). Requires profile.Validate().ok().
  static EngineConfig FromProfile(const InstanceProfile& profile);

  // OK, or InvalidArgument naming the field and the rule ("engine.kv_blocks: must be > 0").
  // Also requires that one max_model_len sequence fits the KV cache.
  Status Validate() const;
};

struct EngineRequest {
  uint64_t id = 0;            // caller's id; unique among requests in the engine
  int64_t prompt_tokens = 0;  // >= 1
  int64_t max_tokens = 1;     // output tokens to generate, >= 1 (the request ends there)
};

// One sequence's part of an iteration.
struct SeqOutput {
  uint64_t id = 0;
  int64_t new_tokens = 0;     // output tokens sampled this iteration (0 or 1)
  int64_t output_tokens = 0;  // output tokens so far, including these
  bool first_token = false;   // this iteration sampled the request's first token
  bool finished = false;      // max_tokens reached; the request has left the engine
};

// Per-request latencies, known once a request finishes.
struct RequestTiming {
  uint64_t id = 0;
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  int64_t preemptions = 0;  // times this request was preempted
  Time arrival;
  Time first_token;
  Time finish;
  Duration ttft() const { return first_token - arrival; }
  Duration e2e() const { return finish - arrival; }
  // Mean time per output token after the first; zero for a single-token output.
  Duration tpot() const {
    return output_tokens > 1 ? (finish - first_token) / (output_tokens - 1) : Duration::zero();
  }
};

struct StepResult {
  Time start;
  Duration duration{};                  // from the iteration model; zero when the batch was empty
  Time end;                             // start + duration: when this step's tokens exist
  int64_t batch_seqs = 0;               // sequences in the iteration
  int64_t prefill_tokens = 0;           // prompt (and recompute) tokens computed
  int64_t decode_tokens = 0;            // decode tokens computed (one per decoding sequence)
  int64_t context_tokens = 0;           // KV tokens attended over by the batch
  std::vector<SeqOutput> outputs;       // sequences in the batch, in batch order
  std::vector<RequestTiming> finished;  // requests that finished in this iteration
  std::vector<uint64_t> preempted;      // ids preempted while forming this batch
  bool empty() const { return batch_seqs == 0; }
};

// vLLM's exported figures (vllm:num_requests_running, ..._waiting, kv_cache_usage_perc,
// num_preemptions_total, prompt_tokens_total, generation_tokens_total).
struct EngineStats {
  int64_t running = 0;
  int64_t waiting = 0;
  int64_t kv_blocks_used = 0;
  int64_t kv_blocks_total = 0;
  double kv_usage = 0;  // used / total blocks, in [0, 1]
  int64_t preemptions_total = 0;
  int64_t prompt_tokens_total = 0;      // prompt tokens of requests admitted
  int64_t generation_tokens_total = 0;  // output tokens sampled
  int64_t requests_submitted_total = 0;
  int64_t requests_refused_total = 0;
  int64_t requests_finished_total = 0;
  int64_t requests_aborted_total = 0;
  int64_t iterations_total = 0;
};

// vLLM's refusal for prompt + max_tokens over max_model_len (serving_engine.py,
// _validate_input), kept word for word so that clients parse it alike:
// "This model's maximum context length is N tokens. However, you requested M tokens (P in the
// messages, C in the completion). Please reduce the length of the messages or completion."
std::string ContextLengthError(int64_t max_model_len, int64_t prompt_tokens, int64_t max_tokens);

class Engine {
 public:
  // Requires config.Validate().ok() (callers validate once, at the edge).
  explicit Engine(EngineConfig config);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineConfig& config() const { return config_; }

  // Queues a request at `now`. InvalidArgument when prompt + max_tokens > max_model_len (the
  // message is vLLM's: "This model's maximum context length is N tokens. However, you requested
  // M tokens (P in the messages, C in the completion). ..."), or when a field is out of range;
  // AlreadyExists for an id in use. A refused request leaves no trace but the refusal count.
  Status Submit(const EngineRequest& request, Time now);

  // Removes a request (client gone). NotFound when the id is not in the engine. Its blocks are
  // freed at once; if it is in the iteration in progress, that iteration's time is unchanged.
  Status Abort(uint64_t id);

  // Drops every request (a restart): running and waiting become empty, all blocks free.
  // Counters are kept; the caller resets them by building a new Engine if it wants to.
  void AbortAll();

  // True when a Step() would do something.
  bool HasWork() const { return !running_.empty() || !waiting_.empty(); }

  // Runs one iteration starting at `now` and writes it into *out (cleared first; its vectors
  // keep their capacity). The iteration's tokens are timestamped at out->end. With no work,
  // out->empty() and duration is zero. Requires now >= the previous step's end.
  void Step(Time now, StepResult* out);

  EngineStats Stats() const;

 private:
  struct Seq;
  int64_t BlocksFor(int64_t tokens) const;
  void Preempt(Seq* seq, StepResult* out);
  void Release(Seq* seq);

  EngineConfig config_;
  std::unordered_map<uint64_t, std::unique_ptr<Seq>> seqs_;
  std::vector<Seq*> running_;  // admission order: the back is the newest
  std::deque<Seq*> waiting_;   // FCFS; preempted sequences go to the front
  int64_t free_blocks_ = 0;
  EngineStats stats_;
  // Scratch for Step(), kept to avoid allocation.
  std::vector<Seq*> scheduled_;
  std::vector<int64_t> scheduled_tokens_;
};

}  // namespace tokenpool::engine
