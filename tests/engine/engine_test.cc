// Engine model: batching, chunked prefill, paged-KV preemption, max_model_len refusal, and that
// latencies follow the iteration model. All on virtual time (no clock is read).

#include "engine/engine.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <vector>

#include "tokenpool/capacity.h"
#include "tokenpool/profile.h"

namespace tokenpool::engine {
namespace {

// A small, round engine: W = 10 ms, H = 1 ms, K = 1 µs/token, prefill 100K tokens/s, chunk 256.
EngineConfig SmallConfig() {
  EngineConfig c;
  c.max_num_seqs = 8;
  c.max_model_len = 1024;
  c.block_size = 16;
  c.kv_blocks = 256;  // 4,096 tokens
  c.iteration = {.weights_s = 10e-3,
                 .per_seq_s = 1e-3,
                 .per_context_token_s = 1e-6,
                 .prefill_tokens_per_s = 100000,
                 .prefill_chunk_tokens = 256,
                 .prefill_model = PrefillModel::kComputeBound};
  return c;
}

// Runs the engine until idle; returns the timings of the finished requests by id.
std::map<uint64_t, RequestTiming> RunToIdle(Engine& e, Time* now, int64_t max_steps = 100000) {
  std::map<uint64_t, RequestTiming> done;
  StepResult r;
  for (int64_t i = 0; i < max_steps && e.HasWork(); ++i) {
    e.Step(*now, &r);
    *now = r.end;
    for (const RequestTiming& t : r.finished) done[t.id] = t;
  }
  return done;
}

TEST(EngineConfigTest, FromProfileUsesCapacityModel) {
  auto p = FindProfile("llama-3-8b-h100");
  ASSERT_TRUE(p.ok());
  EngineConfig c = EngineConfig::FromProfile(*p);
  EXPECT_EQ(c.kv_blocks, KvBlocks(*p));
  EXPECT_EQ(c.block_size, 16);
  EXPECT_EQ(c.max_num_seqs, p->max_num_seqs);
  EXPECT_TRUE(c.Validate().ok()) << c.Validate().ToString();
}

TEST(EngineConfigTest, ValidateNamesField) {
  EngineConfig c = SmallConfig();
  c.kv_blocks = 0;
  EXPECT_NE(c.Validate().message().find("engine.kv_blocks"), std::string::npos);
  c = SmallConfig();
  c.kv_blocks = 10;  // 160 tokens < max_model_len
  EXPECT_FALSE(c.Validate().ok());
}

TEST(EngineTest, RefusesOverMaxModelLenWithVllmMessage) {
  Engine e(SmallConfig());
  Status s = e.Submit({.id = 1, .prompt_tokens = 1000, .max_tokens = 100}, Time::Zero());
  ASSERT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(),
            "This model's maximum context length is 1024 tokens. However, you requested 1100 "
            "tokens (1000 in the messages, 100 in the completion). Please reduce the length of "
            "the messages or completion.");
  EXPECT_FALSE(e.HasWork());
  EXPECT_EQ(e.Stats().requests_refused_total, 1);
  EXPECT_TRUE(e.Submit({.id = 2, .prompt_tokens = 1000, .max_tokens = 24}, Time::Zero()).ok());
  EXPECT_EQ(e.Submit({.id = 2, .prompt_tokens = 10, .max_tokens = 1}, Time::Zero()).code(),
            StatusCode::kAlreadyExists);
}

TEST(EngineTest, IterationTimeMatchesProfile) {
  EngineConfig c = SmallConfig();
  Engine e(c);
  ASSERT_TRUE(e.Submit({.id = 1, .prompt_tokens = 100, .max_tokens = 3}, Time::Zero()).ok());
  ASSERT_TRUE(e.Submit({.id = 2, .prompt_tokens = 50, .max_tokens = 3}, Time::Zero()).ok());
  StepResult r;
  e.Step(Time::Zero(), &r);
  // Both prompts fit one 256-token chunk: 2 seqs, 150 context tokens, 150 prefill tokens.
  EXPECT_EQ(r.batch_seqs, 2);
  EXPECT_EQ(r.prefill_tokens, 150);
  EXPECT_EQ(r.context_tokens, 150);
  EXPECT_EQ(r.duration, IterationTime(c.iteration, 2, 150, 150));
  ASSERT_EQ(r.outputs.size(), 2u);
  EXPECT_TRUE(r.outputs[0].first_token);
  EXPECT_EQ(r.outputs[0].new_tokens, 1);
  // Next: two decode tokens over 101 + 51 context tokens, no prefill.
  Time t = r.end;
  e.Step(t, &r);
  EXPECT_EQ(r.decode_tokens, 2);
  EXPECT_EQ(r.prefill_tokens, 0);
  EXPECT_EQ(r.context_tokens, 152);
  EXPECT_EQ(r.duration, IterationTime(c.iteration, 2, 152, 0));
}

TEST(EngineTest, ContinuousBatchingAdmitsBetweenIterations) {
  Engine e(SmallConfig());
  ASSERT_TRUE(e.Submit({.id = 1, .prompt_tokens = 20, .max_tokens = 50}, Time::Zero()).ok());
  StepResult r;
  Time now = Time::Zero();
  e.Step(now, &r);
  now = r.end;
  e.Step(now, &r);
  now = r.end;
  EXPECT_EQ(r.batch_seqs, 1);
  // A request arriving mid-way joins the running batch at the next iteration.
  ASSERT_TRUE(e.Submit({.id = 2, .prompt_tokens = 20, .max_tokens = 5}, now).ok());
  e.Step(now, &r);
  EXPECT_EQ(r.batch_seqs, 2);
  EXPECT_EQ(e.Stats().running, 2);
  auto done = RunToIdle(e, &now);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1].output_tokens, 50);
  EXPECT_EQ(done[2].output_tokens, 5);
  EXPECT_LT(done[2].finish, done[1].finish);  // the short one leaves first
  EXPECT_EQ(e.Stats().generation_tokens_total, 55);
  EXPECT_EQ(e.Stats().prompt_tokens_total, 40);
  EXPECT_EQ(e.Stats().kv_blocks_used, 0);
}

TEST(EngineTest, MaxNumSeqsCapsTheBatch) {
  EngineConfig c = SmallConfig();
  c.max_num_seqs = 3;
  Engine e(c);
  for (uint64_t id = 1; id <= 5; ++id) {
    ASSERT_TRUE(e.Submit({.id = id, .prompt_tokens = 10, .max_tokens = 4}, Time::Zero()).ok());
  }
  StepResult r;
  e.Step(Time::Zero(), &r);
  EXPECT_EQ(r.batch_seqs, 3);
  EXPECT_EQ(e.Stats().running, 3);
  EXPECT_EQ(e.Stats().waiting, 2);
  Time now = r.end;
  EXPECT_EQ(RunToIdle(e, &now).size(), 5u);
}

TEST(EngineTest, ChunkedPrefillSplitsLongPromptsAndSharesTheBudget) {
  Engine e(SmallConfig());  // chunk 256
  ASSERT_TRUE(e.Submit({.id = 1, .prompt_tokens = 600, .max_tokens = 2}, Time::Zero()).ok());
  StepResult r;
  Time now = Time::Zero();
  std::vector<int64_t> prefill;
  int64_t first_token_step = -1;
  for (int step = 0; step < 10 && e.HasWork(); ++step) {
    e.Step(now, &r);
    now = r.end;
    prefill.push_back(r.prefill_tokens);
    if (!r.outputs.empty() && r.outputs[0].first_token) first_token_step = step;
  }
  // 600 = 256 + 256 + 88; the first token comes with the last chunk.
  ASSERT_GE(prefill.size(), 3u);
  EXPECT_EQ(prefill[0], 256);
  EXPECT_EQ(prefill[1], 256);
  EXPECT_EQ(prefill[2], 88);
  EXPECT_EQ(first_token_step, 2);

  // Decoding sequences take their token from the budget first.
  Engine e2(SmallConfig());
  ASSERT_TRUE(e2.Submit({.id = 1, .prompt_tokens = 10, .max_tokens = 100}, Time::Zero()).ok());
  e2.Step(Time::Zero(), &r);
  ASSERT_TRUE(e2.Submit({.id = 2, .prompt_tokens = 500, .max_tokens = 2}, r.end).ok());
  e2.Step(r.end, &r);
  EXPECT_EQ(r.decode_tokens, 1);
  EXPECT_EQ(r.prefill_tokens, 255);
}

TEST(EngineTest, SlotIterationPrefillIsPerSequenceAndFree) {
  EngineConfig c = SmallConfig();
  c.iteration.prefill_model = PrefillModel::kSlotIterations;
  Engine e(c);
  ASSERT_TRUE(e.Submit({.id = 1, .prompt_tokens = 300, .max_tokens = 2}, Time::Zero()).ok());
  ASSERT_TRUE(e.Submit({.id = 2, .prompt_tokens = 300, .max_tokens = 2}, Time::Zero()).ok());
  StepResult r;
  e.Step(Time::Zero(), &r);
  EXPECT_EQ(r.prefill_tokens, 512);  // 256 each: no shared budget
  EXPECT_EQ(r.duration, IterationTime(c.iteration, 2, 512, 512));
  EXPECT_EQ(r.duration, IterationTime(c.iteration, 2, 512, 0));  // prefill adds no time
}

TEST(EngineTest, PreemptsNewestByRecomputeUnderKvPressure) {
  EngineConfig c = SmallConfig();
  c.kv_blocks = 64;  // 1,024 tokens
  c.max_model_len = 1024;
  Engine e(c);
  // Three requests of 300-token prompts that grow to 600 tokens each: they cannot all stay.
  for (uint64_t id = 1; id <= 3; ++id) {
    ASSERT_TRUE(e.Submit({.id = id, .prompt_tokens = 300, .max_tokens = 300}, Time::Zero()).ok());
  }
  Time now = Time::Zero();
  StepResult r;
  std::vector<uint64_t> preempted;
  std::map<uint64_t, RequestTiming> done;
  for (int i = 0; i < 100000 && e.HasWork(); ++i) {
    e.Step(now, &r);
    now = r.end;
    preempted.insert(preempted.end(), r.preempted.begin(), r.preempted.end());
    for (const RequestTiming& t : r.finished) done[t.id] = t;
    EXPECT_LE(e.Stats().kv_blocks_used, c.kv_blocks);
  }
  ASSERT_FALSE(preempted.empty());
  EXPECT_EQ(preempted.front(), 3u);  // the newest goes first
  EXPECT_GT(e.Stats().preemptions_total, 0);
  ASSERT_EQ(done.size(), 3u);
  for (auto& [id, t] : done) EXPECT_EQ(t.output_tokens, 300) << id;
  EXPECT_GT(done[3].preemptions, 0);
  EXPECT_EQ(done[1].preemptions, 0);  // the oldest is never the victim while others run
  EXPECT_EQ(e.Stats().generation_tokens_total, 900);  // recompute samples nothing twice
  EXPECT_EQ(e.Stats().kv_blocks_used, 0);
}

TEST(EngineTest, KvUsageAndAbort) {
  Engine e(SmallConfig());
  ASSERT_TRUE(e.Submit({.id = 1, .prompt_tokens = 160, .max_tokens = 10}, Time::Zero()).ok());
  StepResult r;
  e.Step(Time::Zero(), &r);
  EXPECT_EQ(e.Stats().kv_blocks_used, 10);
  EXPECT_DOUBLE_EQ(e.Stats().kv_usage, 10.0 / 256.0);
  EXPECT_TRUE(e.Abort(1).ok());
  EXPECT_EQ(e.Abort(1).code(), StatusCode::kNotFound);
  EXPECT_FALSE(e.HasWork());
  EXPECT_EQ(e.Stats().kv_blocks_used, 0);
  EXPECT_EQ(e.Stats().requests_aborted_total, 1);
  ASSERT_TRUE(e.Submit({.id = 2, .prompt_tokens = 10, .max_tokens = 10}, r.end).ok());
  e.AbortAll();
  EXPECT_FALSE(e.HasWork());
}

Duration TtftAlone(int64_t prompt) {
  Engine e(SmallConfig());
  Time now = Time::Zero();
  EXPECT_TRUE(e.Submit({.id = 1, .prompt_tokens = prompt, .max_tokens = 2}, now).ok());
  return RunToIdle(e, &now)[1].ttft();
}

TEST(EngineTest, TtftGrowsWithPromptLength) {
  Duration a = TtftAlone(100), b = TtftAlone(500), c = TtftAlone(1000);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST(EngineTest, TtftGrowsWithLoad) {
  auto ttft_of_last = [](int n) {
    EngineConfig c = SmallConfig();
    c.max_num_seqs = 4;
    c.max_model_len = 512;
    Engine e(c);
    Time now = Time::Zero();
    for (int i = 0; i < n; ++i) {
      EXPECT_TRUE(
          e.Submit({.id = static_cast<uint64_t>(i), .prompt_tokens = 200, .max_tokens = 20}, now)
              .ok());
    }
    auto done = RunToIdle(e, &now);
    return done[static_cast<uint64_t>(n - 1)].ttft();
  };
  Duration one = ttft_of_last(1), four = ttft_of_last(4), twelve = ttft_of_last(12);
  EXPECT_LT(one, four);
  EXPECT_LT(four, twelve);
}

TEST(EngineTest, TpotFollowsDecodeStep) {
  EngineConfig c = SmallConfig();
  Engine e(c);
  Time now = Time::Zero();
  ASSERT_TRUE(e.Submit({.id = 1, .prompt_tokens = 16, .max_tokens = 11}, now).ok());
  auto done = RunToIdle(e, &now);
  // Ten decode steps over contexts 17..26: mean context 21.5 tokens.
  const double expect =
      (IterationSeconds(c.iteration, 1, 17, 0) + IterationSeconds(c.iteration, 1, 26, 0)) / 2;
  EXPECT_NEAR(ToSeconds(done[1].tpot()), expect, 1e-8);
  EXPECT_NEAR(ToSeconds(done[1].e2e()), ToSeconds(done[1].ttft() + done[1].tpot() * 10), 1e-8);
}

}  // namespace
}  // namespace tokenpool::engine
