#pragma once
// A Responder backed by one model in this process: chat template → batched KV-cache sampling of the n
// choices in one decode → text without EOS, cut at the first stop string.
#include <mutex>
#include <random>

#include "cloud/responder.h"
#include "io/checkpoint.h"

namespace handoff {

class LocalModelResponder : public Responder {
 public:
  // `name` is the model id clients send ("model": name).
  LocalModelResponder(LoadedModel model, std::string name);

  std::vector<std::string> models() const override { return {name_}; }
  GenerationResult respond(const ChatCompletionRequest& request) override;
  GenerationResult respond(const CompletionRequest& request) override;

  const Tokenizer& tokenizer() const { return *loaded_.tokenizer; }
  int64_t context_length() const;

 private:
  GenerationResult generate_choices(const std::vector<int>& prompt, const GenerationParams& params,
                                    const std::string& prompt_param);

  LoadedModel loaded_;
  std::string name_;
  // One CPU model: its forward passes run one request at a time (a second concurrent forward would only
  // split the same cores and double the activation memory). Batching concurrent requests into one decode
  // is future work; the n choices of one request already share one batched decode.
  std::mutex model_mutex_;
  std::mt19937_64 seed_rng_;  // seeds for requests without "seed"; guarded by model_mutex_
};

}  // namespace handoff
