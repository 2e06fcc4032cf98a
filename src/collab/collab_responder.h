#pragma once
// The collaborative endpoint behind `handoff serve --device DIR --cloud URL`: the same OpenAI API as any
// model, answered by the device model where it answers and by the cloud where it hands off. Each choice
// carries a "handoff" object (who answered, tokens and latency of each side); the server adds the
// `x-handoff-by` header. A cloud failure is HTTP 502 unless the Collaborator falls back to the device.
#include <memory>
#include <random>

#include "cloud/responder.h"
#include "collab/collaborator.h"

namespace handoff {

class CollabResponder : public Responder {
 public:
  CollabResponder(std::shared_ptr<Collaborator> collab, std::string name);

  std::vector<std::string> models() const override { return {name_}; }
  // The request's temperature, top_p, max_tokens and seed steer the device's decoding; the cloud is asked
  // deterministically with the Collaborator's cloud_max_tokens. n choices are n device samples, each handed
  // off on its own.
  GenerationResult respond(const ChatCompletionRequest& request) override;
  GenerationResult respond(const CompletionRequest& request) override;

 private:
  GenerationResult run(const std::vector<ChatMessage>& messages, const GenerationParams& params,
                       const std::string& param);
  // The device's prompt for `messages`; ApiError 400 when its tokenizer cannot encode them or they do not
  // fit its context (`param` names the request field).
  std::vector<int> device_prompt(const std::vector<ChatMessage>& messages, const std::string& param) const;
  std::shared_ptr<Collaborator> collab_;
  std::string name_;
  std::mutex seed_mutex_;
  std::mt19937_64 seed_rng_;
};

}  // namespace handoff
