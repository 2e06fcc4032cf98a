// Continuous batching (issue 16): SlotDecoder rows that join and leave between tokens decode what
// generate() decodes for each of them alone, and DecodeBatcher shares forward passes across concurrent
// requests, each getting exactly its own rows, with max_rows held and bad requests failing alone.
#include <gtest/gtest.h>

#include <thread>

#include "cloud/decode_batcher.h"
#include "model/slot_decoder.h"

using namespace handoff;

namespace {

CausalLM make_model() {
  ModelConfig c;
  c.model_type = "qwen2";  // q/k/v biases
  c.vocab_size = 100;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.num_key_value_heads = 2;  // grouped-query heads: the per-row cache write spans n_kv heads
  c.max_position_embeddings = 96;
  torch::manual_seed(7);
  CausalLM m(c);
  m->eval();
  return m;
}

SamplingOptions sampling(double temperature, int64_t max_new, std::vector<int> stops = {}) {
  SamplingOptions o;
  o.temperature = temperature;
  o.top_p = temperature > 0 ? 0.9 : 1.0;
  o.max_new_tokens = max_new;
  o.stop_ids = std::move(stops);
  return o;
}

std::vector<int> prompt(int id, int len) {
  std::vector<int> p;
  for (int t = 0; t < len; ++t) p.push_back(1 + (id * 7 + t * 3) % 90);
  return p;
}

void run_to_end(SlotDecoder& d) {
  for (int guard = 0; d.decoding() > 0 && guard < 1000; ++guard) d.step();
}

}  // namespace

TEST(SlotDecoderTest, ARowDecodedAloneMatchesGenerate) {
  CausalLM m = make_model();
  for (double temperature : {0.0, 1.0}) {
    SCOPED_TRACE(temperature);
    const auto o = sampling(temperature, 20);
    const auto want = generate(m, {prompt(1, 7)}, o, {42});
    SlotDecoder d(m);
    const auto rows = d.admit({prompt(1, 7)}, o, {42});
    run_to_end(d);
    const RowOutput got = d.release(rows.at(0));
    EXPECT_EQ(got.tokens, want.tokens[0]);
    ASSERT_EQ(got.logprobs.size(), want.logprobs[0].size());
    for (size_t t = 0; t < got.logprobs.size(); ++t) EXPECT_NEAR(got.logprobs[t], want.logprobs[0][t], 1e-5);
    EXPECT_EQ(got.stopped, want.stopped[0]);
  }
}

TEST(SlotDecoderTest, RowsJoiningMidDecodeGetWhatTheyWouldAlone) {
  CausalLM m = make_model();
  SlotDecoder d(m);
  const auto oa = sampling(1.0, 24), ob = sampling(0.0, 10), oc = sampling(0.7, 16, {5, 9, 13});
  const auto a = d.admit({prompt(1, 4), prompt(2, 11)}, oa, {1, 2});
  for (int i = 0; i < 3; ++i) d.step();
  const auto b = d.admit({prompt(3, 9)}, ob, {3});
  d.step();
  const auto c = d.admit({prompt(4, 2), prompt(4, 2)}, oc, {4, 5});  // one prompt, two seeds
  int steps = 5;
  for (; d.decoding() > 0 && steps < 1000; ++steps) d.step();
  EXPECT_LT(steps, 3 + 1 + 24);  // everyone shared the steps: the longest row's count, not the sum

  auto check = [&](const std::vector<int64_t>& rows, const std::vector<std::vector<int>>& prompts,
                   const SamplingOptions& o, const std::vector<uint64_t>& seeds) {
    const auto want = generate(m, prompts, o, seeds);
    for (size_t i = 0; i < rows.size(); ++i) {
      ASSERT_TRUE(d.finished(rows[i]));
      const RowOutput got = d.release(rows[i]);
      EXPECT_EQ(got.tokens, want.tokens[i]) << "row " << rows[i];
      ASSERT_EQ(got.logprobs.size(), want.logprobs[i].size());
      for (size_t t = 0; t < got.logprobs.size(); ++t)
        EXPECT_NEAR(got.logprobs[t], want.logprobs[i][t], 1e-4);
      EXPECT_EQ(got.stopped, want.stopped[i]);
    }
  };
  EXPECT_EQ(d.cache_rows(), 5);  // five rows were in use at once
  check(a, {prompt(1, 4), prompt(2, 11)}, oa, {1, 2});
  check(b, {prompt(3, 9)}, ob, {3});
  // Freed rows are reused while others are held: three more rows take rows 0-2 of the same cache.
  const auto again = d.admit({prompt(5, 3), prompt(6, 3), prompt(7, 3)}, ob, {1, 2, 3});
  EXPECT_EQ(again, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(d.cache_rows(), 5);
  check(c, {prompt(4, 2), prompt(4, 2)}, oc, {4, 5});
  run_to_end(d);
  for (int64_t r : again) d.release(r);
  EXPECT_EQ(d.cache_rows(), 0);  // idle: the KV memory is given back
  EXPECT_EQ(d.cache_columns(), 0);
}

// Under bf16 autocast the projections are bf16 and the cache fp32: the per-row write converts (scatter_
// would throw on the dtype), and rows still decode what generate() decodes under the same autocast.
TEST(SlotDecoderTest, Bf16AutocastRowsDecode) {
  CausalLM m = make_model();
  m->autocast_bf16 = true;
  SlotDecoder d(m);
  const auto o = sampling(0.0, 12);
  const auto rows = d.admit({prompt(1, 5), prompt(2, 8)}, o, {1, 2});
  run_to_end(d);
  const auto want = generate(m, {prompt(1, 5), prompt(2, 8)}, o, {1, 2});
  for (size_t i = 0; i < rows.size(); ++i) {
    const RowOutput got = d.release(rows[i]);
    EXPECT_EQ(got.tokens.size(), 12u);
    // bf16 sums in another order can flip a near-tie; the first tokens agree.
    EXPECT_EQ(got.tokens.at(0), want.tokens[i].at(0));
  }
}

TEST(SlotDecoderTest, BadRequestsAreRefusedWithNothingAdmitted) {
  CausalLM m = make_model();
  SlotDecoder d(m);
  d.admit({prompt(1, 5)}, sampling(0.0, 8), {1});
  EXPECT_THROW(d.admit({prompt(2, 96)}, sampling(0.0, 8), {1}), std::exception);  // fills the context
  EXPECT_THROW(d.admit({{}}, sampling(0.0, 8), {1}), std::exception);             // empty prompt
  EXPECT_THROW(d.admit({prompt(2, 3)}, sampling(0.0, 8), {}), std::exception);    // no seed
  EXPECT_THROW(d.admit({prompt(2, 3)}, sampling(-1.0, 8), {1}), std::exception);
  auto banned = sampling(0.0, 8);
  banned.banned_ids = {100};
  EXPECT_THROW(d.admit({prompt(2, 3)}, banned, {1}), std::exception);
  EXPECT_EQ(d.decoding(), 1);
  EXPECT_EQ(d.cache_rows(), 1);
  run_to_end(d);
  EXPECT_EQ(d.release(0).tokens.size(), 8u);
  EXPECT_THROW(d.release(0), std::exception);  // already released
  // A row near the end of the context stops there, as generate() does.
  const auto rows = d.admit({prompt(3, 90)}, sampling(0.0, 50), {1});
  run_to_end(d);
  EXPECT_EQ(d.release(rows[0]).tokens.size(), 6u);
  EXPECT_LE(d.cache_columns(), 96);
}

TEST(DecodeBatcherTest, ConcurrentRequestsShareStepsAndGetTheirOwnRows) {
  CausalLM m = make_model();
  DecodeBatcher b(m, 8);
  const int n = 12;
  std::vector<DecodeRequest> reqs(n);
  for (int i = 0; i < n; ++i) {
    const int rows = 1 + i % 2;
    for (int r = 0; r < rows; ++r) {
      reqs[i].prompts.push_back(prompt(i, 2 + (i * 5) % 13));
      reqs[i].seeds.push_back(static_cast<uint64_t>(100 * i + r));
    }
    reqs[i].options = sampling(i % 3 == 0 ? 0.0 : 1.0, 6 + (i * 7) % 17,
                               i % 4 == 0 ? std::vector<int>{3, 4, 5} : std::vector<int>{});
  }
  std::vector<Generation> got(n);
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i) ts.emplace_back([&, i] { got[i] = b.run(reqs[i]); });
  for (auto& t : ts) t.join();
  int64_t tokens = 0;
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE(i);
    const auto want = generate(m, reqs[i].prompts, reqs[i].options, reqs[i].seeds);
    EXPECT_EQ(got[i].tokens, want.tokens);
    EXPECT_EQ(got[i].stopped, want.stopped);
    for (const auto& t : got[i].tokens) tokens += static_cast<int64_t>(t.size());
  }
  const auto st = b.stats();
  EXPECT_EQ(st.requests, n);
  EXPECT_EQ(st.rows, 18);
  EXPECT_LE(st.peak_rows, 8);
  EXPECT_GT(st.peak_rows, 2);
  EXPECT_LT(st.steps * 2, tokens);  // the rows shared the forward passes
}

TEST(DecodeBatcherTest, ABadRequestFailsAloneAndALargeOneRunsAlone) {
  CausalLM m = make_model();
  DecodeBatcher b(m, 3);
  std::vector<std::thread> ts;
  std::vector<int> ok(6, -1);
  for (int i = 0; i < 6; ++i)
    ts.emplace_back([&, i] {
      DecodeRequest r{{prompt(i, i == 2 ? 200 : 5)}, sampling(0.0, 12), {1}};
      try {
        ok[i] = static_cast<int>(b.run(r).tokens.at(0).size());
      } catch (const std::exception&) {
        ok[i] = 0;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(ok, (std::vector<int>{12, 12, 0, 12, 12, 12}));  // the 200-token prompt fails, alone
  EXPECT_LE(b.stats().peak_rows, 3);
  DecodeRequest big{std::vector<std::vector<int>>(5, prompt(9, 4)), sampling(1.0, 4), {1, 2, 3, 4, 5}};
  EXPECT_EQ(b.run(big).tokens.size(), 5u);  // larger than max_rows: runs alone rather than being refused
  DecodeRequest bad{{prompt(1, 3), prompt(2, 3)}, sampling(0.0, 3), {1}};
  EXPECT_THROW(b.run(bad), std::exception);
  EXPECT_THROW(DecodeBatcher(m, 0), std::exception);
}
