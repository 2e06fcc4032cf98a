#include "collab/collab_responder.h"

#include "common/error.h"

namespace handoff {

CollabResponder::CollabResponder(std::shared_ptr<Collaborator> collab, std::string name)
    : collab_(std::move(collab)), name_(std::move(name)), seed_rng_(std::random_device{}()) {
  if (!collab_) throw Error("CollabResponder needs a Collaborator");
}

GenerationResult CollabResponder::respond(const ChatCompletionRequest& request) {
  return run(request.messages, request.params, "messages");
}

GenerationResult CollabResponder::respond(const CompletionRequest& request) {
  // The prompt is the query: the device reads it through its chat template, the cloud as a user message.
  return run({{"user", request.prompt}}, request.params, "prompt");
}

std::vector<int> CollabResponder::device_prompt(const std::vector<ChatMessage>& messages,
                                                const std::string& param) const {
  // Can its tokenizer read the query, does it fit the context.
  std::vector<int> prompt;
  try {
    const DeviceSpeech io = collab_->speech();
    prompt = io.tok.encode_chat(io.protocol.device_conversation(messages));
  } catch (const Error& e) {
    throw ApiError(400, "the " + param + " cannot be encoded for the device model: " + e.what(), param);
  }
  const int64_t context = collab_->device_context();
  if (static_cast<int64_t>(prompt.size()) >= context)
    throw ApiError(400,
                   "The device model's maximum context length is " + std::to_string(context) +
                       " tokens; the prompt has " + std::to_string(prompt.size()) + " tokens. Shorten the " +
                       param + ".",
                   param, "context_length_exceeded");

  return prompt;
}

GenerationResult CollabResponder::run(const std::vector<ChatMessage>& messages,
                                      const GenerationParams& params, const std::string& param) {
  // Two models answer here, with two vocabularies: a token id names nothing.
  if (!params.banned_ids.empty())
    throw ApiError(400,
                   "'logit_bias' is not supported by the collaborative endpoint (its device and cloud "
                   "have their own vocabularies)",
                   "logit_bias");
  // What only the device can judge (a device server judges it itself, and its 4xx is a 502 here).
  std::vector<int> prompt;
  if (!collab_->remote_device()) prompt = device_prompt(messages, param);

  CollabOptions o = collab_->options();
  o.temperature = params.temperature;
  o.top_p = params.top_p;
  o.max_new_tokens = params.max_tokens;
  uint64_t base = 0;
  if (params.seed) {
    base = *params.seed;
  } else {
    std::lock_guard<std::mutex> lock(seed_mutex_);
    base = seed_rng_();
  }
  const std::vector<std::vector<ChatMessage>> queries(static_cast<size_t>(params.n), messages);
  std::vector<uint64_t> seeds(queries.size());
  for (size_t i = 0; i < seeds.size(); ++i) seeds[i] = base + i;

  std::vector<CollabResult> results;
  try {
    results = collab_->answer(queries, seeds, o);
  } catch (const CloudBusy& e) {
    throw ApiError(503, e.what(), "", "cloud_busy", "server_error");
  } catch (const DeviceUnavailable& e) {
    throw ApiError(502, e.what(), "", "device_unavailable", "upstream_error");
  } catch (const Error& e) {
    // The device handed off and the cloud could not answer (fallback off): a gateway error, never a silent
    // drop and never the device's hand-off passed off as an answer.
    throw ApiError(502, e.what(), "", "cloud_unavailable", "upstream_error");
  }

  GenerationResult out;
  out.prompt_tokens = results.empty() || !collab_->remote_device() ? static_cast<int64_t>(prompt.size())
                                                                   : results.front().device_prompt_tokens;
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    Choice c;
    c.index = static_cast<int>(i);
    c.text = r.text;
    c.finish_reason = r.finish_reason;
    c.completion_tokens = r.device_tokens + r.cloud_tokens;  // usage counts both sides' generated tokens
    size_t cut = std::string::npos;
    for (const auto& s : params.stop) cut = std::min(cut, c.text.find(s));
    if (cut != std::string::npos) {
      c.text.resize(cut);
      c.finish_reason = "stop";
    }
    HandoffInfo h;
    h.answered_by = answered_by_name(r.answered_by);
    h.called_cloud = r.called_cloud;
    h.device_text = r.device_text;
    h.device_tokens = r.device_tokens;
    h.cloud_tokens = r.cloud_tokens;
    h.device_ms = r.device_ms;
    h.cloud_ms = r.cloud_ms;
    h.cloud_error = r.cloud_error;
    h.threshold = r.handoff_threshold;
    h.score = r.handoff_score;
    if (r.guarded) h.guard_changed = r.guard_changed;
    c.handoff = std::move(h);
    out.choices.push_back(std::move(c));
  }
  return out;
}

}  // namespace handoff
