#pragma once
// Rows that join and leave a running decode between tokens (continuous batching, as llama.cpp's slots and
// vLLM's scheduler do; issue 16): each row owns one row of a shared KV cache and its own length, position
// and RNG; every step() runs one forward for all rows still decoding, whatever their lengths, by writing
// each row's new key at its own column (KVCache::write_cols) and masking the columns past it.
// A row decodes what generate() decodes for the same prompt and seed, up to the order of float sums
// (both attend as multiply-sums; GEMM instead of GEMV in a batch, masked columns): logits can differ in the
// last bits, so a token can differ only where two candidates tie to ~1e-6.
// Not thread-safe: one caller drives it (DecodeBatcher's leader).
#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "model/kv_cache.h"
#include "model/sampler.h"

namespace handoff {

struct RowOutput {
  std::vector<int> tokens;
  std::vector<float> logprobs;
  bool stopped = false;  // ended on a stop id (false: its max_new_tokens or the context's end)
  float boost_peak = 0;  // the highest P(boost_token) at its steps (Generation::boost_peak); 0 when off
};

class SlotDecoder {
 public:
  explicit SlotDecoder(CausalLM model);

  // Prefills the prompts (one batch) into free rows and picks each row's first token; returns the rows.
  // Throws Error, with nothing admitted, on a request the model cannot honour (empty or too long prompt,
  // bad sampling options, one seed per prompt missing).
  std::vector<int64_t> admit(const std::vector<std::vector<int>>& prompts, const SamplingOptions& opts,
                             const std::vector<uint64_t>& seeds);
  // One forward of every row still decoding: each gains one token. Nothing to do when none is.
  void step();

  int64_t decoding() const;          // rows still decoding
  bool finished(int64_t row) const;  // done (stop id or length) and not yet released
  RowOutput release(int64_t row);    // the row's output; the row is free for a later admit
  void reset();                      // frees every row (after a failed step)
  int64_t cache_rows() const { return static_cast<int64_t>(rows_.size()); }
  int64_t cache_columns() const { return cache_.capacity; }

 private:
  struct Row {
    bool used = false, done = false;
    int64_t len = 0;    // tokens in the cache (prompt + generated, the last pick excluded)
    int64_t limit = 0;  // most tokens this row may generate
    int last = 0;       // the last pick, fed by the next step
    std::shared_ptr<const SamplingOptions> opts;
    std::mt19937_64 rng;
    RowOutput out;
  };
  void reserve(int64_t rows, int64_t columns);
  std::vector<int64_t> free_rows(int64_t n);
  void record(const std::vector<int64_t>& rows, const at::Tensor& logits);
  at::Tensor step_logits(const std::vector<int64_t>& active);

  CausalLM model_;
  KVCache cache_;  // [rows_.size(), n_kv, capacity, head_dim] per layer
  std::vector<Row> rows_;
};

}  // namespace handoff
