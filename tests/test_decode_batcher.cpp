// DecodeBatcher with a stand-in decode that records its batches: concurrent requests share decodes, each
// gets exactly its own rows, unlike sampling is never mixed, rows are cut to their request's
// max_new_tokens, max_rows holds, and a failed decode fails every request in it.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "cloud/decode_batcher.h"

using namespace handoff;

namespace {

// Row r of a decode: tokens prompt[0]*100 + seed, then 1, 2, ... up to max_new_tokens; stops (on 7) when
// the prompt's second id says so. Slow enough that requests pile up behind the first decode.
struct Recorder {
  std::mutex mu;
  std::vector<size_t> batch_rows;
  std::vector<double> temperatures;
  std::vector<std::vector<int>> ids;  // prompt ids per decode
  std::atomic<bool> fail{false};
  DecodeBatcher::Decode fn() {
    return [this](const std::vector<std::vector<int>>& prompts, const SamplingOptions& o,
                  const std::vector<uint64_t>& seeds) {
      std::this_thread::sleep_for(std::chrono::milliseconds(60));
      {
        std::lock_guard<std::mutex> lock(mu);
        batch_rows.push_back(prompts.size());
        temperatures.push_back(o.temperature);
        ids.emplace_back();
        for (const auto& p : prompts) ids.back().push_back(p[0]);
      }
      if (fail) throw std::runtime_error("decode failed");
      Generation g;
      for (size_t r = 0; r < prompts.size(); ++r) {
        std::vector<int> t{prompts[r][0] * 100 + static_cast<int>(seeds[r])};
        const bool stops = prompts[r].size() > 1 && prompts[r][1] == 1;
        for (int k = 1; static_cast<int64_t>(t.size()) < o.max_new_tokens; ++k) {
          if (stops && k == 3) {
            t.push_back(7);
            break;
          }
          t.push_back(k);
        }
        g.stopped.push_back(stops && t.back() == 7);
        g.logprobs.emplace_back(t.size(), -0.5f);
        g.tokens.push_back(std::move(t));
      }
      return g;
    };
  }
};

DecodeRequest request(int id, int rows, int64_t max_new, double temperature = 0.0, bool stops = false) {
  DecodeRequest r;
  for (int i = 0; i < rows; ++i) {
    r.prompts.push_back(stops ? std::vector<int>{id, 1} : std::vector<int>{id});
    r.seeds.push_back(static_cast<uint64_t>(i));
  }
  r.options.temperature = temperature;
  r.options.max_new_tokens = max_new;
  return r;
}

}  // namespace

TEST(DecodeBatcherTest, ConcurrentRequestsShareDecodesAndGetTheirOwnRows) {
  Recorder rec;
  DecodeBatcher b(rec.fn(), 16);
  const int n = 12;
  std::vector<Generation> got(n);
  std::vector<std::thread> ts;
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&, i] { got[i] = b.run(request(i + 1, 1 + i % 2, 4 + i % 3, 0.0, i % 4 == 0)); });
  for (auto& t : ts) t.join();
  for (int i = 0; i < n; ++i) {
    SCOPED_TRACE(i);
    const size_t rows = 1 + i % 2;
    ASSERT_EQ(got[i].tokens.size(), rows);
    for (size_t r = 0; r < rows; ++r) {
      EXPECT_EQ(got[i].tokens[r][0], (i + 1) * 100 + static_cast<int>(r));  // its own prompt and seed
      const bool stops = i % 4 == 0;
      const size_t cap = 4 + i % 3;
      // Cut to its own max_new_tokens even when a longer request shared the decode.
      EXPECT_EQ(got[i].tokens[r].size(), stops ? std::min<size_t>(4, cap) : cap);
      EXPECT_EQ(got[i].logprobs[r].size(), got[i].tokens[r].size());
      EXPECT_EQ(got[i].stopped[r], stops && cap >= 4);
    }
  }
  const auto st = b.stats();
  EXPECT_EQ(st.requests, n);
  EXPECT_EQ(st.rows, 18);
  EXPECT_LT(st.decodes, n / 2);  // 12 requests arriving together: the first alone, the rest in one or two
}

TEST(DecodeBatcherTest, UnlikeSamplingIsNeverMixedAndMaxRowsHolds) {
  Recorder rec;
  DecodeBatcher b(rec.fn(), 3);
  std::vector<std::thread> ts;
  for (int i = 0; i < 10; ++i) ts.emplace_back([&, i] { b.run(request(i + 1, 1, 3, i % 2 ? 0.7 : 0.0)); });
  for (auto& t : ts) t.join();
  // A request larger than max_rows runs alone rather than being refused.
  EXPECT_EQ(b.run(request(50, 5, 2)).tokens.size(), 5u);
  size_t total = 0;
  for (size_t k = 0; k + 1 < rec.batch_rows.size(); ++k) {
    EXPECT_LE(rec.batch_rows[k], 3u);
    total += rec.batch_rows[k];
  }
  EXPECT_EQ(total, 10u);
  EXPECT_EQ(rec.batch_rows.back(), 5u);
  EXPECT_EQ(b.stats().decodes, static_cast<int64_t>(rec.batch_rows.size()));
  // Request i+1 asked for temperature 0.7 when i is odd: every decode holds one parity of id, run at the
  // temperature that parity asked for.
  for (size_t k = 0; k + 1 < rec.ids.size(); ++k)
    for (int id : rec.ids[k]) EXPECT_EQ(rec.temperatures[k], id % 2 == 0 ? 0.7 : 0.0) << "decode " << k;
  EXPECT_GE(rec.batch_rows.size(), 5u);  // 10 rows, at most 3 per decode, two temperatures, + the lone one
}

TEST(DecodeBatcherTest, AFailedDecodeFailsEveryRequestInItAndTheNextOnesStillRun) {
  Recorder rec;
  DecodeBatcher b(rec.fn(), 16);
  rec.fail = true;
  std::atomic<int> errors{0};
  std::vector<std::thread> ts;
  for (int i = 0; i < 6; ++i)
    ts.emplace_back([&, i] {
      try {
        b.run(request(i + 1, 1, 3));
      } catch (const std::runtime_error& e) {
        if (std::string(e.what()) == "decode failed") ++errors;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(errors, 6);
  rec.fail = false;
  EXPECT_EQ(b.run(request(9, 2, 3)).tokens.size(), 2u);
  DecodeRequest bad = request(1, 2, 3);
  bad.seeds.pop_back();
  EXPECT_THROW(b.run(bad), std::exception);
  EXPECT_THROW(DecodeBatcher(rec.fn(), 0), std::exception);
}
