#include "cloud/local_model_responder.h"

#include "common/error.h"
#include "model/sampler.h"
#include "protocol/response.h"

namespace handoff {

LocalModelResponder::LocalModelResponder(LoadedModel model, std::string name, int max_batch_rows)
    : loaded_(std::move(model)),
      name_(std::move(name)),
      batcher_(loaded_.model, max_batch_rows),
      seed_rng_(std::random_device{}()) {
  if (!loaded_.model || !loaded_.tokenizer)
    throw Error("LocalModelResponder needs a loaded model and tokenizer");
  loaded_.model->eval();
}

int64_t LocalModelResponder::context_length() const {
  return loaded_.model->config.max_position_embeddings;
}

GenerationResult LocalModelResponder::respond(const ChatCompletionRequest& request) {
  std::vector<int> prompt;
  try {
    prompt = loaded_.tokenizer->encode_chat(request.messages);
  } catch (const Error& e) {
    throw ApiError(400, std::string("the messages cannot be encoded for this model: ") + e.what(),
                   "messages");
  }
  return generate_choices(prompt, request.params, "messages");
}

GenerationResult LocalModelResponder::respond(const CompletionRequest& request) {
  // A text completion continues the raw prompt: <bos> + text, no chat template. Tokenizers without a
  // BOS token (Qwen2's) report -1 and the prompt starts with the text itself.
  std::vector<int> prompt;
  if (loaded_.tokenizer->bos_id() >= 0) prompt.push_back(loaded_.tokenizer->bos_id());
  try {
    auto body = loaded_.tokenizer->encode(request.prompt);
    prompt.insert(prompt.end(), body.begin(), body.end());
  } catch (const Error& e) {
    throw ApiError(400, std::string("the prompt cannot be encoded for this model: ") + e.what(), "prompt");
  }
  if (prompt.empty()) throw ApiError(400, "the prompt is empty and this model has no BOS token", "prompt");
  return generate_choices(prompt, request.params, "prompt");
}

std::vector<int> LocalModelResponder::tokenize(const std::string& text) const {
  try {
    return loaded_.tokenizer->encode(text);
  } catch (const Error& e) {
    throw ApiError(400, std::string("the content cannot be encoded for this model: ") + e.what(), "content");
  }
}

GenerationResult LocalModelResponder::generate_choices(const std::vector<int>& prompt,
                                                       const GenerationParams& params,
                                                       const std::string& prompt_param) {
  const int64_t context = context_length();
  const int64_t prompt_tokens = static_cast<int64_t>(prompt.size());
  if (prompt_tokens >= context)
    throw ApiError(400,
                   "This model's maximum context length is " + std::to_string(context) +
                       " tokens; the prompt has " + std::to_string(prompt_tokens) + " tokens. Shorten the " +
                       prompt_param + ".",
                   prompt_param, "context_length_exceeded");

  const Tokenizer& tok = *loaded_.tokenizer;
  SamplingOptions opts;
  opts.temperature = params.temperature;
  opts.top_p = params.top_p;
  opts.max_new_tokens = params.max_tokens;  // generate() also stops at the end of the context
  opts.stop_ids = tok.stop_ids();           // EOS and the end of a chat turn (<|eot_id|>, <|im_end|>)
  // A device model's <handoff> ends its turn (design.md) and is its decision, so it is the reply's last
  // text, not a special token skipped: a collaborative endpoint in front of this server
  // (`serve --device-url`) reads it there, as it reads llama.cpp's rendering of the exported token.
  const int handoff = tok.handoff_id();
  if (handoff >= 0) opts.stop_ids.push_back(handoff);
  for (int id : params.banned_ids)
    if (id >= tok.vocab_size())
      throw ApiError(400,
                     "'logit_bias' names token " + std::to_string(id) + "; this model's vocabulary has " +
                         std::to_string(tok.vocab_size()) + " tokens",
                     "logit_bias");
  opts.banned_ids = params.banned_ids;
  DecodeRequest decode{std::vector<std::vector<int>>(static_cast<size_t>(params.n), prompt), opts, {}};
  uint64_t base = 0;
  if (params.seed) {
    base = *params.seed;
  } else {
    std::lock_guard<std::mutex> lock(seed_mutex_);
    base = seed_rng_();
  }
  for (size_t i = 0; i < decode.prompts.size(); ++i) decode.seeds.push_back(base + i);
  const size_t rows = decode.prompts.size();
  const Generation gen = batcher_.run(std::move(decode));

  GenerationResult result;
  result.prompt_tokens = prompt_tokens;
  for (size_t i = 0; i < rows; ++i) {
    Choice c;
    c.index = static_cast<int>(i);
    std::vector<int> visible = gen.tokens[i];
    c.completion_tokens = static_cast<int64_t>(visible.size());  // tokens generated, EOS included
    const bool eos = gen.stopped[i];
    const bool handed_off = eos && handoff >= 0 && visible.back() == handoff;
    if (eos) visible.pop_back();
    c.text = tok.decode(visible, /*skip_special=*/true);
    if (handed_off) c.text += kHandoffMarker;
    c.finish_reason = eos ? "stop" : "length";
    // Stop strings are applied to the finished text (generate() knows stop tokens, not strings).
    size_t cut = std::string::npos;
    for (const auto& s : params.stop) cut = std::min(cut, c.text.find(s));
    if (cut != std::string::npos) {
      c.text.resize(cut);
      c.finish_reason = "stop";
    }
    result.choices.push_back(std::move(c));
  }
  return result;
}

}  // namespace handoff
