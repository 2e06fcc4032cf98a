#pragma once
// What answers a completion request behind `handoff serve`: the HTTP layer (ModelServer) validates and
// parses, a Responder generates. Today: LocalModelResponder (one loaded model). The collaborative endpoint
// (`handoff serve --device DIR --cloud URL`) is another Responder: the device model answers or hands the
// query to a CloudClient, behind the same HTTP layer.
#include <string>
#include <vector>

#include "cloud/openai_types.h"

namespace handoff {

class Responder {
 public:
  virtual ~Responder() = default;
  // Model ids this responder serves (listed by /v1/models; a request naming another one gets 404).
  virtual std::vector<std::string> models() const = 0;
  // Called concurrently from HTTP worker threads: an implementation serialises what it must itself.
  // Requests arrive validated against RequestLimits; throw ApiError for what only the responder can
  // judge (a prompt longer than the context, text the tokenizer cannot encode).
  virtual GenerationResult respond(const ChatCompletionRequest& request) = 0;
  virtual GenerationResult respond(const CompletionRequest& request) = 0;
  // POST /tokenize: `text` as this model's token ids. ApiError 404 where there is no one model's tokenizer
  // (the collaborative endpoint).
  virtual std::vector<int> tokenize(const std::string& /*text*/) const {
    throw ApiError(404, "this endpoint has no tokenizer of its own: ask the model's own server", "",
                   "unknown_url");
  }
};

}  // namespace handoff
