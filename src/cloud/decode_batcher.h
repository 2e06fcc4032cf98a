#pragma once
// Requests share the model's forward passes instead of queueing behind one mutex (issue 16, "batched
// decoding across requests"): requests that arrive while a decode runs wait, and the next decode runs all
// of them that sample alike (same temperature, top_p, stop ids) as one batch, up to max_rows rows. No extra
// thread: the first waiting request's thread runs the decode for everyone (leader/follower).
// Joining happens between decodes, not between tokens (llama.cpp's slots and vLLM join every step); a
// request therefore waits at most one decode before it starts.
// Row i's sample depends only on its prompt and seed (generate() seeds rows independently), so a reply
// does not depend on which requests shared its batch; a shorter max_new_tokens is applied by cutting the
// row, which is what decoding it alone would have produced.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "model/sampler.h"

namespace handoff {

struct DecodeRequest {
  std::vector<std::vector<int>> prompts;
  SamplingOptions options;
  std::vector<uint64_t> seeds;  // one per prompt
};

struct DecodeBatcherStats {
  int64_t decodes = 0, requests = 0, rows = 0;  // rows / decodes = the mean batch
};

class DecodeBatcher {
 public:
  using Decode = std::function<Generation(const std::vector<std::vector<int>>&, const SamplingOptions&,
                                          const std::vector<uint64_t>&)>;
  // max_rows: the most rows one decode runs (a request larger than it runs alone). 1 = no batching.
  DecodeBatcher(Decode decode, int max_rows);

  // Blocks until this request's rows are decoded; rethrows what the decode threw. Thread-safe.
  Generation run(DecodeRequest request);

  DecodeBatcherStats stats() const;

 private:
  struct Slot;
  std::vector<std::shared_ptr<Slot>> take_batch();  // under mu_
  void execute(const std::vector<std::shared_ptr<Slot>>& batch) const;

  Decode decode_;
  int max_rows_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Slot>> pending_;
  bool running_ = false;
  DecodeBatcherStats stats_;
};

}  // namespace handoff
