#include "cloud/decode_batcher.h"

#include <algorithm>
#include <exception>

#include "common/error.h"

namespace handoff {

struct DecodeBatcher::Slot {
  DecodeRequest request;
  Generation result;
  std::exception_ptr error;
  bool done = false;
};

namespace {

// Rows can share a decode only when they are sampled alike; max_new_tokens may differ (rows are cut).
bool same_sampling(const SamplingOptions& a, const SamplingOptions& b) {
  return a.temperature == b.temperature && a.top_p == b.top_p && a.stop_ids == b.stop_ids &&
         a.use_cache == b.use_cache && a.boost_token == b.boost_token &&
         a.boost_threshold == b.boost_threshold && a.banned_ids == b.banned_ids;
}

}  // namespace

DecodeBatcher::DecodeBatcher(Decode decode, int max_rows) : decode_(std::move(decode)), max_rows_(max_rows) {
  if (!decode_) throw Error("DecodeBatcher needs a decode function");
  if (max_rows_ < 1) throw Error("DecodeBatcher: max_rows must be at least 1");
}

// The oldest pending request and every later one that samples alike, while the rows fit (FIFO otherwise).
std::vector<std::shared_ptr<DecodeBatcher::Slot>> DecodeBatcher::take_batch() {
  std::vector<std::shared_ptr<Slot>> batch{pending_.front()};
  pending_.pop_front();
  size_t rows = batch[0]->request.prompts.size();
  for (auto it = pending_.begin(); it != pending_.end();) {
    const size_t r = (*it)->request.prompts.size();
    if (same_sampling((*it)->request.options, batch[0]->request.options) &&
        rows + r <= static_cast<size_t>(max_rows_)) {
      rows += r;
      batch.push_back(*it);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  return batch;
}

void DecodeBatcher::execute(const std::vector<std::shared_ptr<Slot>>& batch) const {
  std::vector<std::vector<int>> prompts;
  std::vector<uint64_t> seeds;
  SamplingOptions options = batch[0]->request.options;
  options.max_new_tokens = 0;
  for (const auto& s : batch) {
    prompts.insert(prompts.end(), s->request.prompts.begin(), s->request.prompts.end());
    seeds.insert(seeds.end(), s->request.seeds.begin(), s->request.seeds.end());
    options.max_new_tokens = std::max(options.max_new_tokens, s->request.options.max_new_tokens);
  }
  Generation all;
  try {
    all = decode_(prompts, options, seeds);
  } catch (...) {
    for (const auto& s : batch) s->error = std::current_exception();
    return;
  }
  size_t row = 0;
  for (const auto& s : batch) {
    const auto cap = static_cast<size_t>(s->request.options.max_new_tokens);
    for (size_t i = 0; i < s->request.prompts.size(); ++i, ++row) {
      std::vector<int> tokens = std::move(all.tokens[row]);
      std::vector<float> logprobs =
          row < all.logprobs.size() ? std::move(all.logprobs[row]) : std::vector<float>{};
      bool stopped = all.stopped[row];
      if (tokens.size() > cap) {  // decoded further for a longer request in the batch
        tokens.resize(cap);
        if (logprobs.size() > cap) logprobs.resize(cap);
        stopped = false;
      }
      s->result.tokens.push_back(std::move(tokens));
      s->result.logprobs.push_back(std::move(logprobs));
      s->result.stopped.push_back(stopped);
    }
  }
}

Generation DecodeBatcher::run(DecodeRequest request) {
  if (request.prompts.size() != request.seeds.size())
    throw Error("DecodeBatcher: " + std::to_string(request.prompts.size()) + " prompts but " +
                std::to_string(request.seeds.size()) + " seeds");
  auto slot = std::make_shared<Slot>();
  slot->request = std::move(request);
  std::unique_lock<std::mutex> lock(mu_);
  pending_.push_back(slot);
  while (!slot->done) {
    if (running_) {
      cv_.wait(lock);
      continue;
    }
    running_ = true;
    const auto batch = take_batch();
    ++stats_.decodes;
    stats_.requests += static_cast<int64_t>(batch.size());
    for (const auto& s : batch) stats_.rows += static_cast<int64_t>(s->request.prompts.size());
    lock.unlock();
    execute(batch);
    lock.lock();
    running_ = false;
    for (const auto& s : batch) s->done = true;
    cv_.notify_all();
  }
  if (slot->error) std::rethrow_exception(slot->error);
  return std::move(slot->result);
}

DecodeBatcherStats DecodeBatcher::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

}  // namespace handoff
