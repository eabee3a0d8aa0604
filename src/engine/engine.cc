#include "engine/engine.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "tokenpool/capacity.h"

namespace tokenpool::engine {

struct Engine::Seq {
  uint64_t id = 0;
  int64_t prompt_tokens = 0;
  int64_t max_tokens = 0;
  int64_t output_tokens = 0;    // sampled so far
  int64_t computed_tokens = 0;  // tokens whose KV exists (0 after a preemption)
  int64_t blocks = 0;
  int64_t preemptions = 0;
  bool running = false;
  Time arrival;
  Time first_token;
  // Tokens the model knows: the prompt and the output so far. The newest sampled token's KV is
  // computed in the next iteration, so a decoding sequence has known - computed == 1.
  int64_t known() const { return prompt_tokens + output_tokens; }
};

EngineConfig EngineConfig::FromProfile(const InstanceProfile& profile) {
  EngineConfig c;
  c.max_num_seqs = profile.max_num_seqs;
  c.max_model_len = profile.max_model_len;
  c.block_size = profile.block_size;
  c.kv_blocks = KvBlocks(profile);
  c.iteration = profile.iteration;
  return c;
}

Status EngineConfig::Validate() const {
  if (max_num_seqs <= 0) return InvalidArgument("engine.max_num_seqs: must be > 0");
  if (max_model_len <= 0) return InvalidArgument("engine.max_model_len: must be > 0");
  if (block_size <= 0) return InvalidArgument("engine.block_size: must be > 0");
  if (kv_blocks <= 0) return InvalidArgument("engine.kv_blocks: must be > 0");
  if (iteration.prefill_chunk_tokens <= 0) {
    return InvalidArgument("engine.iteration.prefill_chunk_tokens: must be > 0");
  }
  if (iteration.weights_s < 0 || iteration.per_seq_s < 0 || iteration.per_context_token_s < 0 ||
      iteration.prefill_tokens_per_s < 0) {
    return InvalidArgument("engine.iteration: time terms must be >= 0");
  }
  if (kv_blocks > std::numeric_limits<int64_t>::max() / block_size ||
      kv_blocks * block_size < max_model_len) {
    return InvalidArgument("engine.kv_blocks: must hold one sequence of max_model_len (" +
                           std::to_string(max_model_len) + " tokens)");
  }
  return Status::Ok();
}

std::string ContextLengthError(int64_t max_model_len, int64_t prompt_tokens, int64_t max_tokens) {
  return "This model's maximum context length is " + std::to_string(max_model_len) +
         " tokens. However, you requested " + std::to_string(prompt_tokens + max_tokens) +
         " tokens (" + std::to_string(prompt_tokens) + " in the messages, " +
         std::to_string(max_tokens) +
         " in the completion). Please reduce the length of the messages or completion.";
}

Engine::Engine(EngineConfig config) : config_(std::move(config)), free_blocks_(config_.kv_blocks) {
  stats_.kv_blocks_total = config_.kv_blocks;
}

Engine::~Engine() = default;

int64_t Engine::BlocksFor(int64_t tokens) const {
  return (tokens + config_.block_size - 1) / config_.block_size;
}

Status Engine::Submit(const EngineRequest& request, Time now) {
  if (request.prompt_tokens < 1 || request.max_tokens < 1) {
    ++stats_.requests_refused_total;
    return InvalidArgument(request.prompt_tokens < 1 ? "prompt_tokens: must be >= 1"
                                                     : "max_tokens: must be >= 1");
  }
  const int64_t total = request.prompt_tokens + request.max_tokens;
  if (total > config_.max_model_len) {
    ++stats_.requests_refused_total;
    return InvalidArgument(
        ContextLengthError(config_.max_model_len, request.prompt_tokens, request.max_tokens));
  }
  if (seqs_.contains(request.id)) {
    ++stats_.requests_refused_total;
    return AlreadyExists("request id " + std::to_string(request.id) + " is in the engine");
  }
  auto seq = std::make_unique<Seq>();
  seq->id = request.id;
  seq->prompt_tokens = request.prompt_tokens;
  seq->max_tokens = request.max_tokens;
  seq->arrival = now;
  waiting_.push_back(seq.get());
  seqs_.emplace(request.id, std::move(seq));
  ++stats_.requests_submitted_total;
  return Status::Ok();
}

void Engine::Release(Seq* seq) {
  free_blocks_ += seq->blocks;
  seq->blocks = 0;
  if (seq->running) {
    running_.erase(std::find(running_.begin(), running_.end(), seq));
  } else {
    auto it = std::find(waiting_.begin(), waiting_.end(), seq);
    if (it != waiting_.end()) waiting_.erase(it);
  }
  seqs_.erase(seq->id);  // destroys *seq
}

Status Engine::Abort(uint64_t id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return NotFound("request id " + std::to_string(id) + " not in engine");
  ++stats_.requests_aborted_total;
  Release(it->second.get());
  return Status::Ok();
}

void Engine::AbortAll() {
  stats_.requests_aborted_total += static_cast<int64_t>(seqs_.size());
  running_.clear();
  waiting_.clear();
  seqs_.clear();
  free_blocks_ = config_.kv_blocks;
}

void Engine::Preempt(Seq* seq, StepResult* out) {
  // Recompute: drop the KV; the prompt and the output so far are prefilled again later.
  free_blocks_ += seq->blocks;
  seq->blocks = 0;
  seq->computed_tokens = 0;
  seq->running = false;
  ++seq->preemptions;
  ++stats_.preemptions_total;
  waiting_.push_front(seq);
  out->preempted.push_back(seq->id);
}

void Engine::Step(Time now, StepResult* out) {
  out->start = now;
  out->duration = Duration::zero();
  out->end = now;
  out->batch_seqs = out->prefill_tokens = out->decode_tokens = out->context_tokens = 0;
  out->outputs.clear();
  out->finished.clear();
  out->preempted.clear();
  scheduled_.clear();
  scheduled_tokens_.clear();

  const IterationModel& m = config_.iteration;
  const bool shared_budget = m.prefill_model == PrefillModel::kComputeBound;
  const int64_t chunk = m.prefill_chunk_tokens;
  int64_t budget = chunk;  // shared across the batch (kComputeBound only)
  auto take_for = [&](const Seq* s) {
    const int64_t need = s->known() - s->computed_tokens;
    return shared_budget ? std::min(need, budget) : std::min(need, chunk);
  };

  // 1. Running sequences, oldest first. Preemption takes the newest, which sits at the back
  // and so has not been scheduled yet in this pass.
  bool preempted_any = false;
  for (size_t i = 0; i < running_.size(); ++i) {
    Seq* s = running_[i];
    const int64_t take = take_for(s);
    if (take <= 0) continue;  // budget spent: it keeps its place and runs next iteration
    const int64_t need_blocks = BlocksFor(s->computed_tokens + take) - s->blocks;
    bool self_preempted = false;
    while (need_blocks > free_blocks_) {
      Seq* victim = running_.back();
      running_.pop_back();
      Preempt(victim, out);
      preempted_any = true;
      if (victim == s) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) break;  // s was the newest: nothing after it remains
    free_blocks_ -= need_blocks;
    s->blocks += need_blocks;
    scheduled_.push_back(s);
    scheduled_tokens_.push_back(take);
    if (shared_budget) budget -= take;
  }

  // 2. Waiting requests, FCFS, while the batch has room and blocks. As vLLM, none are admitted
  // in an iteration that had to preempt.
  while (!preempted_any && !waiting_.empty() &&
         static_cast<int64_t>(running_.size()) < config_.max_num_seqs &&
         (!shared_budget || budget > 0)) {
    Seq* s = waiting_.front();
    const int64_t take = take_for(s);
    const int64_t need_blocks = BlocksFor(take);
    if (need_blocks > free_blocks_) break;  // head-of-line: FCFS
    waiting_.pop_front();
    free_blocks_ -= need_blocks;
    s->blocks = need_blocks;
    s->running = true;
    running_.push_back(s);
    scheduled_.push_back(s);
    scheduled_tokens_.push_back(take);
    if (shared_budget) budget -= take;
  }

  if (scheduled_.empty()) return;

  // 3. Time of the iteration from the capacity model's iteration model.
  for (size_t i = 0; i < scheduled_.size(); ++i) {
    const Seq* s = scheduled_[i];
    const int64_t take = scheduled_tokens_[i];
    out->context_tokens += s->computed_tokens + take;
    // Decoding: the only token to compute is the last one sampled. Anything else is prompt
    // prefill or the recompute of a preempted sequence.
    const bool decoding = s->output_tokens > 0 && s->known() - s->computed_tokens == 1;
    (decoding ? out->decode_tokens : out->prefill_tokens) += take;
  }
  out->batch_seqs = static_cast<int64_t>(scheduled_.size());
  out->duration = IterationTime(m, static_cast<double>(out->batch_seqs),
                                static_cast<double>(out->context_tokens),
                                static_cast<double>(out->prefill_tokens));
  out->end = now + out->duration;
  ++stats_.iterations_total;

  // 4. Apply: tokens computed; a sequence whose known tokens are all computed samples one.
  for (size_t i = 0; i < scheduled_.size(); ++i) {
    Seq* s = scheduled_[i];
    s->computed_tokens += scheduled_tokens_[i];
    SeqOutput o;
    o.id = s->id;
    if (s->computed_tokens == s->known()) {
      ++s->output_tokens;
      ++stats_.generation_tokens_total;
      o.new_tokens = 1;
      if (s->output_tokens == 1) {
        o.first_token = true;
        s->first_token = out->end;
        stats_.prompt_tokens_total += s->prompt_tokens;
      }
    }
    o.output_tokens = s->output_tokens;
    if (s->output_tokens >= s->max_tokens) {
      o.finished = true;
      RequestTiming t;
      t.id = s->id;
      t.prompt_tokens = s->prompt_tokens;
      t.output_tokens = s->output_tokens;
      t.preemptions = s->preemptions;
      t.arrival = s->arrival;
      t.first_token = s->first_token;
      t.finish = out->end;
      out->finished.push_back(t);
      ++stats_.requests_finished_total;
      Release(s);
    }
    out->outputs.push_back(o);
  }
}

EngineStats Engine::Stats() const {
  EngineStats s = stats_;
  s.running = static_cast<int64_t>(running_.size());
  s.waiting = static_cast<int64_t>(waiting_.size());
  s.kv_blocks_used = config_.kv_blocks - free_blocks_;
  s.kv_usage = static_cast<double>(s.kv_blocks_used) / static_cast<double>(config_.kv_blocks);
  return s;
}

}  // namespace tokenpool::engine
