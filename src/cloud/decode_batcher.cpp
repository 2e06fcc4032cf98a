#include "cloud/decode_batcher.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <exception>

#include "common/error.h"

namespace handoff {

struct DecodeBatcher::Job {
  DecodeRequest request;
  std::vector<int64_t> rows;  // the decoder's rows, one per prompt
  Generation result;
  std::exception_ptr error;
  bool done = false;
};

DecodeBatcher::DecodeBatcher(CausalLM model, int max_rows) : max_rows_(max_rows), decoder_(std::move(model)) {
  if (max_rows_ < 1) throw Error("DecodeBatcher: max_rows must be at least 1");
}

// Pending jobs in arrival order while their rows fit beside the decoding ones; a job larger than max_rows
// runs when nothing else decodes. FIFO: a large job is not overtaken by smaller ones behind it.
std::vector<std::shared_ptr<DecodeBatcher::Job>> DecodeBatcher::take_admissible() {
  std::vector<std::shared_ptr<Job>> out;
  while (!pending_.empty()) {
    const auto rows = static_cast<int64_t>(pending_.front()->request.prompts.size());
    if (active_rows_ > 0 && active_rows_ + rows > max_rows_) break;
    active_rows_ += rows;
    out.push_back(pending_.front());
    pending_.pop_front();
  }
  return out;
}

// A job its admission refuses (bad prompt or options) fails alone; the others decode.
void DecodeBatcher::admit(const std::vector<std::shared_ptr<Job>>& jobs,
                          std::vector<std::shared_ptr<Job>>& finished) {
  for (const auto& job : jobs) {
    try {
      job->rows = decoder_.admit(job->request.prompts, job->request.options, job->request.seeds);
      active_.push_back(job);
    } catch (...) {
      job->error = std::current_exception();
      finished.push_back(job);
    }
  }
}

// One step for every decoding row; a step that throws fails every job in it and frees every row.
void DecodeBatcher::step(std::vector<std::shared_ptr<Job>>& finished) {
  try {
    decoder_.step();
  } catch (...) {
    for (const auto& job : active_) {
      job->error = std::current_exception();
      finished.push_back(job);
    }
    active_.clear();
    decoder_.reset();
    return;
  }
  for (auto it = active_.begin(); it != active_.end();) {
    const auto& job = *it;
    bool all = true;
    for (int64_t r : job->rows) all = all && decoder_.finished(r);
    if (!all) {
      ++it;
      continue;
    }
    for (int64_t r : job->rows) {
      RowOutput out = decoder_.release(r);
      job->result.tokens.push_back(std::move(out.tokens));
      job->result.logprobs.push_back(std::move(out.logprobs));
      job->result.stopped.push_back(out.stopped);
      if (job->request.options.boost_token >= 0) job->result.boost_peak.push_back(out.boost_peak);
    }
    finished.push_back(job);
    it = active_.erase(it);
  }
}

void DecodeBatcher::lead(std::unique_lock<std::mutex>& lock) {
  joining_ = take_admissible();
  const auto admitted = joining_;
  lock.unlock();
  // The OpenMP thread count is thread-local and the lead moves between worker threads.
  static thread_local const bool threads_ready = [] {
    at::init_num_threads();
    return true;
  }();
  (void)threads_ready;
  std::vector<std::shared_ptr<Job>> finished;
  admit(admitted, finished);
  const int64_t decoding = decoder_.decoding();
  step(finished);
  lock.lock();
  joining_.clear();
  stats_.requests += static_cast<int64_t>(admitted.size());
  for (const auto& job : admitted) stats_.rows += static_cast<int64_t>(job->request.prompts.size());
  if (decoding > 0) {
    ++stats_.steps;
    stats_.row_steps += decoding;
    stats_.peak_rows = std::max(stats_.peak_rows, decoding);
  }
  for (const auto& job : finished) {
    job->done = true;
    active_rows_ -= static_cast<int64_t>(job->request.prompts.size());
  }
  if (!finished.empty()) cv_.notify_all();
}

Generation DecodeBatcher::run(DecodeRequest request) {
  if (request.prompts.size() != request.seeds.size())
    throw Error("DecodeBatcher: " + std::to_string(request.prompts.size()) + " prompts but " +
                std::to_string(request.seeds.size()) + " seeds");
  auto job = std::make_shared<Job>();
  job->request = std::move(request);
  std::unique_lock<std::mutex> lock(mu_);
  pending_.push_back(job);
  while (!job->done) {
    if (leading_) {
      cv_.wait(lock);
      continue;
    }
    leading_ = true;
    try {
      while (!job->done) lead(lock);
    } catch (...) {  // outside admit/step (an allocation failing): fail what is in flight, never hang
      if (!lock.owns_lock()) lock.lock();
      abandon(std::current_exception());
    }
    leading_ = false;
    cv_.notify_all();  // the lead passes to a waiting job, if any
  }
  if (job->error) std::rethrow_exception(job->error);
  return std::move(job->result);
}

void DecodeBatcher::abandon(std::exception_ptr error) {
  for (auto* jobs : {&joining_, &active_})
    for (const auto& job : *jobs)
      if (!job->done) {
        job->error = error;
        job->done = true;
      }
  joining_.clear();
  active_.clear();
  active_rows_ = 0;  // every admitted job is done; pending ones were never counted
  decoder_.reset();
}

DecodeBatcherStats DecodeBatcher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace handoff
