#pragma once
// Requests share the model's forward passes instead of queueing behind one mutex (issue 16, "batched
// decoding across requests"): continuous batching over a SlotDecoder. A request that arrives while others
// decode joins at the next token (after one prefill of every newcomer together), and leaves as soon as its
// own rows finish; up to max_rows rows decode at once, later requests wait in FIFO order.
// No extra thread: whichever waiting request's thread holds the lead runs the steps for everyone, and hands
// the lead on when its own request is done (leader/follower).
// Row i's sample depends only on its prompt and seed (each row has its own RNG), never on its batch-mates
// or on when it joined; rows sampled differently (temperature, top_p, stop ids) share the forward pass and
// are picked by their own rules.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <vector>

#include "model/slot_decoder.h"

namespace handoff {

struct DecodeRequest {
  std::vector<std::vector<int>> prompts;
  SamplingOptions options;
  std::vector<uint64_t> seeds;  // one per prompt
};

struct DecodeBatcherStats {
  int64_t steps = 0;      // forward passes of the decoding rows (prefills not counted)
  int64_t requests = 0;   // requests admitted
  int64_t rows = 0;       // rows admitted
  int64_t row_steps = 0;  // sum over steps of the rows decoding: row_steps / steps = the mean batch
  int64_t peak_rows = 0;  // the most rows decoding in one step
};

class DecodeBatcher {
 public:
  // max_rows: the most rows decoding at once (a request larger than it runs alone). 1 = no batching.
  DecodeBatcher(CausalLM model, int max_rows);

  // Blocks until this request's rows are decoded; rethrows what its admission or a step threw. Thread-safe.
  Generation run(DecodeRequest request);

  DecodeBatcherStats stats() const;

 private:
  struct Job;
  void lead(std::unique_lock<std::mutex>& lock);        // one round: admit, step, hand back finished jobs
  std::vector<std::shared_ptr<Job>> take_admissible();  // under mu_
  void admit(const std::vector<std::shared_ptr<Job>>& jobs, std::vector<std::shared_ptr<Job>>& finished);
  void step(std::vector<std::shared_ptr<Job>>& finished);
  void abandon(std::exception_ptr error);  // under mu_: fails every admitted job, frees every row

  int max_rows_;
  SlotDecoder decoder_;                        // the leader's alone
  std::vector<std::shared_ptr<Job>> joining_;  // taken from pending_, being admitted; the leader's alone
  std::vector<std::shared_ptr<Job>> active_;   // admitted, not finished; the leader's alone
  int64_t active_rows_ = 0;                    // rows of active_; under mu_
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::shared_ptr<Job>> pending_;
  bool leading_ = false;
  DecodeBatcherStats stats_;
};

}  // namespace handoff
