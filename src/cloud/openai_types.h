#pragma once
// The OpenAI chat/completions wire format, and the ONE place where JSON becomes typed structs and back.
// Server side: parse_*_request validates a request body once, at the HTTP edge, into a typed request (or
// throws ApiError with the status and OpenAI error object to send); *_json serialise responses. Client side:
// chat_request_json builds a request and parse_chat_response reads any OpenAI-compatible reply (or throws
// Error). No torch and no httplib here, so this header is cheap to include.
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "tokenizer/tokenizer.h"  // ChatMessage

namespace handoff {

// A request the server refuses, as OpenAI reports it: {"error": {"message", "type", "param", "code"}}.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string message, std::string param = "", std::string code = "",
           std::string type = "invalid_request_error");
  int status;
  std::string type, param, code;  // empty param/code → null in the body
  std::string to_json() const;
};

// Server-side bounds on what a request may ask for.
struct RequestLimits {
  int64_t default_max_tokens = 128;  // our character models answer in a few dozen characters
  int64_t max_tokens_limit = 1024;
  int max_n = 16;
  int max_stop_strings = 4;  // as OpenAI
};

// Sampling fields shared by /v1/chat/completions and /v1/completions, already validated and defaulted.
struct GenerationParams {
  std::string model;
  int64_t max_tokens = 128;
  double temperature = 1.0;       // 0 = greedy
  double top_p = 1.0;             // (0, 1]
  std::vector<std::string> stop;  // generation text is cut before the first occurrence of any of these
  int n = 1;                      // choices per request
  std::optional<uint64_t> seed;   // choice i samples with seed + i; absent → random
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk carries the usage
  // logit_bias entries of -100 (OpenAI: "should result in a ban"): token ids never emitted. Other biases
  // are refused (400): the sampler masks tokens, it does not shift them.
  std::vector<int> banned_ids;
};

struct ChatCompletionRequest {
  GenerationParams params;
  std::vector<ChatMessage> messages;  // non-empty; roles system | developer | user | assistant | tool
};

struct CompletionRequest {
  GenerationParams params;
  std::string prompt;
};

// Throw ApiError (400 for malformed/invalid, 404 model_not_found for a model not in `models`).
ChatCompletionRequest parse_chat_request(const std::string& body, const RequestLimits& limits,
                                         const std::vector<std::string>& models);
CompletionRequest parse_completion_request(const std::string& body, const RequestLimits& limits,
                                           const std::vector<std::string>& models);

struct Usage {
  int64_t prompt_tokens = 0, completion_tokens = 0, total_tokens = 0;
};

// The collaborative endpoint's account of one choice (sent as the choice's "handoff" object, and the
// `x-handoff-by` header): who answered, and what each side spent.
struct HandoffInfo {
  std::string answered_by;  // "device" | "cloud" | "device-fallback"
  bool called_cloud = false;
  std::string device_text;  // the device's own completion (its reasoning, ending in the marker on a hand-off)
  int64_t device_tokens = 0, cloud_tokens = 0;
  double device_ms = 0, cloud_ms = 0;
  std::string cloud_error;  // why the cloud's answer is missing (fallback answers only)
  // Decided with a hand-off threshold: it and the device's score (its highest P(<handoff>)); < 0: none.
  double threshold = -1, score = -1;
  std::optional<bool> guard_changed;  // with the budget guard: whether it changed this decision
};

struct Choice {
  int index = 0;
  std::string text;
  std::string finish_reason;  // "stop" | "length"
  int64_t completion_tokens = 0;
  std::optional<HandoffInfo> handoff;  // collaborative endpoint only
};

// What a Responder produced for one request; the server wraps it in a chat or text completion object.
struct GenerationResult {
  std::vector<Choice> choices;
  int64_t prompt_tokens = 0;
  Usage usage() const;
};

// Response bodies (server side). `id` e.g. "chatcmpl-…", `created` in Unix seconds.
std::string chat_completion_json(const std::string& id, int64_t created, const std::string& model,
                                 const GenerationResult& r);
std::string text_completion_json(const std::string& id, int64_t created, const std::string& model,
                                 const GenerationResult& r);
// A whole server-sent-event stream: per choice a role chunk, a content chunk and a finish chunk, then (with
// `include_usage`) a chunk with no choices and the usage, then [DONE].
std::string chat_completion_sse(const std::string& id, int64_t created, const std::string& model,
                                const GenerationResult& r, bool include_usage = false);
std::string text_completion_sse(const std::string& id, int64_t created, const std::string& model,
                                const GenerationResult& r, bool include_usage = false);
// "device,cloud,…": the x-handoff-by header value, one entry per choice; "" when no choice has HandoffInfo.
std::string handoff_header(const GenerationResult& r);
std::string models_json(const std::vector<std::string>& models, int64_t created);

// Client side: what a caller may set; unset fields are left out of the request so the API's defaults apply.
struct ChatOptions {
  std::optional<int64_t> max_tokens;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::vector<std::string> stop;
  std::optional<uint64_t> seed;
  // Token id → bias added to its logit (-100: never emitted), sent as OpenAI's logit_bias object.
  std::vector<std::pair<int64_t, double>> logit_bias;
  bool stream = false;  // ask for server-sent events, with the usage on a last chunk
};

std::string chat_request_json(const std::string& model, const std::vector<ChatMessage>& messages,
                              const ChatOptions& opts);

struct ChatResponse {
  std::string id, model, content, finish_reason;
  Usage usage;
};

// Reads the first choice of a chat.completion body; throws Error (quoting the start of `body`) if it is not
// one.
ChatResponse parse_chat_response(const std::string& body);
// Model ids of a /v1/models body; throws Error if it is not a model list.
std::vector<std::string> parse_models_response(const std::string& body);
// The message of an OpenAI-style error body, or empty when `body` is not one.
std::string error_message_of(const std::string& body);

}  // namespace handoff
