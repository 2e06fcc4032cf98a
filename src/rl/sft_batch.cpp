#include "rl/sft_batch.h"

#include <algorithm>
#include <random>
#include <string>

#include "collab/device_run.h"
#include "rl/pure/length_buckets.h"
#include "rl/sft.h"
#include "runtime/data_threads.h"
#include "tasks/task.h"

namespace handoff {

namespace {

// Each row's length, prompt and completion.
std::vector<int64_t> row_lengths(const SftBatch& b) {
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < b.prompts.size(); ++i)
    lengths.push_back(static_cast<int64_t>(b.prompts[i].size() + b.completions[i].size()));
  return lengths;
}

// The rows of `b` regrouped: one part per non-empty list of row indices, rows moved out of `b`.
std::vector<SftBatch> regroup(SftBatch& b, const std::vector<std::vector<size_t>>& groups) {
  const std::vector<int64_t> lengths = row_lengths(b);
  std::vector<SftBatch> parts;
  for (const auto& rows : groups) {
    if (rows.empty()) continue;
    SftBatch& part = parts.emplace_back();
    for (size_t i : rows) {
      part.tokens += lengths[i];
      part.prompts.push_back(std::move(b.prompts[i]));
      part.completions.push_back(std::move(b.completions[i]));
    }
  }
  return parts;
}

}  // namespace

SftBatch make_sft_batch(const Task& task, const DeviceSpeech& io, const SftOptions& o,
                        const std::vector<int>& mix, int64_t step) {
  const Tokenizer& tok = io.tok;
  std::mt19937_64 rng(o.seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(step) * 0xBF58476D1CE4E5B9ull +
                      1);
  std::uniform_int_distribution<size_t> pick(0, mix.size() - 1);
  std::bernoulli_distribution handoff(o.handoff_fraction);
  SftBatch b;
  for (int64_t i = 0; i < o.batch_size; ++i) {
    Problem p = task.sample(rng, mix[pick(rng)], Split::kTrain);
    require_encodable(io, {p});
    require_readable(io, task, {p});
    const std::string target =
        sft_target(io.protocol, task.solution(p), o.handoff_fraction > 0 && handoff(rng), rng);
    b.prompts.push_back(o.role == "cloud" ? tok.encode_chat(io.protocol.cloud_messages(p.prompt))
                                          : io.encode_query(p.prompt));
    auto c = tok.encode(target);
    c.push_back(tok.eos_id());
    b.tokens += static_cast<int64_t>(b.prompts.back().size() + c.size());
    b.completions.push_back(std::move(c));
  }
  return b;
}

int64_t padded_tokens(const SftBatch& b) {
  size_t longest = 0;
  for (size_t i = 0; i < b.prompts.size(); ++i)
    longest = std::max(longest, b.prompts[i].size() + b.completions[i].size());
  return static_cast<int64_t>(longest * b.prompts.size());
}

int64_t real_tokens_of(const SftBatch& b) {
  int64_t n = 0;
  for (size_t i = 0; i < b.prompts.size(); ++i)
    n += static_cast<int64_t>(b.prompts[i].size() + b.completions[i].size());
  return n;
}

std::vector<SftBatch> length_parts(SftBatch b, int64_t max_tokens) {
  if (max_tokens <= 0) return {std::move(b)};
  return regroup(b, length_buckets(row_lengths(b), max_tokens));
}

std::vector<SftBatch> thread_shares(SftBatch b, int threads) {
  return regroup(b, deal_by_cost(row_lengths(b), threads));
}

}  // namespace handoff
