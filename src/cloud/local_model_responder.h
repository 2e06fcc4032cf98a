#pragma once
// A Responder backed by one model in this process: chat template → batched KV-cache sampling of the n
// choices → text without EOS, cut at the first stop string. Concurrent requests share forward passes
// (DecodeBatcher: continuous batching, up to max_batch_rows rows decoding at once).
#include <mutex>
#include <random>

#include "cloud/decode_batcher.h"
#include "cloud/responder.h"
#include "io/checkpoint.h"

namespace handoff {

class LocalModelResponder : public Responder {
 public:
  // `name` is the model id clients send ("model": name).
  LocalModelResponder(LoadedModel model, std::string name, int max_batch_rows = 16);

  std::vector<std::string> models() const override { return {name_}; }
  GenerationResult respond(const ChatCompletionRequest& request) override;
  GenerationResult respond(const CompletionRequest& request) override;
  std::vector<int> tokenize(const std::string& text) const override;

  const Tokenizer& tokenizer() const { return *loaded_.tokenizer; }
  int64_t context_length() const;
  DecodeBatcherStats batch_stats() const { return batcher_.stats(); }

 private:
  GenerationResult generate_choices(const std::vector<int>& prompt, const GenerationParams& params,
                                    const std::string& prompt_param);

  LoadedModel loaded_;
  std::string name_;
  // One CPU model: one forward at a time (a second concurrent forward would only split the same cores and
  // double the activation memory), but each carries every request decoding, joined between tokens.
  DecodeBatcher batcher_;
  std::mutex seed_mutex_;
  std::mt19937_64 seed_rng_;  // seeds for requests without "seed"; guarded by seed_mutex_
};

}  // namespace handoff
