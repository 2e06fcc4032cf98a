#include "cloud/openai_types.h"

#include <algorithm>
#include <cctype>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace handoff {

using json = nlohmann::json;

ApiError::ApiError(int status_, std::string message, std::string param_, std::string code_, std::string type_)
    : std::runtime_error(std::move(message)),
      status(status_),
      type(std::move(type_)),
      param(std::move(param_)),
      code(std::move(code_)) {}

namespace {

// Invalid UTF-8 (a byte-level model can stop mid-character) becomes U+FFFD instead of throwing.
std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json null_or(const std::string& s) {
  return s.empty() ? json(nullptr) : json(s);
}

// ---------- request parsing: every check of a request body lives here ----------

json parse_object(const std::string& body) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number beyond a double (1e309): both are the client's JSON.
    throw ApiError(400, std::string("the request body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object");
  return j;
}

// A field that is present and not null (OpenAI clients send null for "use the default").
const json* field(const json& j, const std::string& name) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string quoted(const std::string& name) {
  return "'" + name + "'";
}

int64_t get_int(const json& j, const std::string& name, int64_t fallback) {
  const json* v = field(j, name);
  if (!v) return fallback;
  if (!v->is_number_integer()) throw ApiError(400, quoted(name) + " must be an integer", name);
  if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    return INT64_MAX;  // out of range anyway; reported by the caller's bounds check
  return v->get<int64_t>();
}

double get_number(const json& j, const std::string& name, double fallback) {
  const json* v = field(j, name);
  if (!v) return fallback;
  if (!v->is_number()) throw ApiError(400, quoted(name) + " must be a number", name);
  return v->get<double>();
}

std::string number_text(double x) {
  std::string s = std::to_string(x);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

// content: a string, or an array of {"type": "text", "text": …} parts (joined).
std::string message_content(const json& c, const std::string& param) {
  if (c.is_string()) return c.get<std::string>();
  if (c.is_array()) {
    std::string text;
    for (size_t i = 0; i < c.size(); ++i) {
      const json& part = c[i];
      const std::string p = param + "[" + std::to_string(i) + "]";
      if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") ||
          !part["text"].is_string())
        throw ApiError(400, quoted(p) + " must be a text part {\"type\": \"text\", \"text\": \"...\"}", p);
      text += part["text"].get<std::string>();
    }
    return text;
  }
  throw ApiError(400, quoted(param) + " must be a string or an array of text parts", param);
}

// OpenAI's logit_bias: {"token id": bias in [-100, 100]}. This server bans (-100) and ignores 0; the
// token ids are checked against the vocabulary by the responder.
std::vector<int> parse_logit_bias(const json& j) {
  std::vector<int> banned;
  const json* lb = field(j, "logit_bias");
  if (!lb) return banned;
  if (!lb->is_object()) throw ApiError(400, "'logit_bias' must be an object of token ids", "logit_bias");
  if (lb->size() > 300) throw ApiError(400, "'logit_bias' may name at most 300 tokens", "logit_bias");
  for (const auto& [key, value] : lb->items()) {
    const std::string at = "logit_bias." + key;
    if (key.empty() || key.size() > 9 ||
        !std::all_of(key.begin(), key.end(), [](unsigned char c) { return std::isdigit(c) != 0; }))
      throw ApiError(400, "'logit_bias' keys must be token ids, got '" + key.substr(0, 40) + "'",
                     "logit_bias");
    if (!value.is_number()) throw ApiError(400, quoted(at) + " must be a number", at);
    const double b = value.get<double>();
    if (!(b >= -100.0 && b <= 100.0)) throw ApiError(400, quoted(at) + " must be between -100 and 100", at);
    if (b == -100.0)
      banned.push_back(std::stoi(key));
    else if (b != 0.0)
      throw ApiError(400,
                     quoted(at) + " is " + number_text(b) +
                         ": this server supports only -100 (never emit the token) and 0",
                     at);
  }
  return banned;
}

GenerationParams parse_params(const json& j, const RequestLimits& limits,
                              const std::vector<std::string>& models) {
  GenerationParams p;
  const json* model = field(j, "model");
  if (!model) throw ApiError(400, "'model' is required", "model");
  if (!model->is_string()) throw ApiError(400, "'model' must be a string", "model");
  p.model = model->get<std::string>();
  if (std::find(models.begin(), models.end(), p.model) == models.end()) {
    std::string served;
    for (const auto& m : models) served += (served.empty() ? "" : ", ") + m;
    throw ApiError(404, "The model '" + p.model + "' does not exist; this server serves: " + served, "model",
                   "model_not_found");
  }

  const std::string tokens_field = field(j, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  p.max_tokens = get_int(j, tokens_field, limits.default_max_tokens);
  if (p.max_tokens < 1 || p.max_tokens > limits.max_tokens_limit)
    throw ApiError(400,
                   quoted(tokens_field) + " must be between 1 and " + std::to_string(limits.max_tokens_limit),
                   tokens_field);

  p.temperature = get_number(j, "temperature", 1.0);
  if (p.temperature < 0.0 || p.temperature > 2.0)
    throw ApiError(400, "'temperature' must be between 0 and 2, got " + number_text(p.temperature),
                   "temperature");

  p.top_p = get_number(j, "top_p", 1.0);
  if (!(p.top_p > 0.0 && p.top_p <= 1.0))
    throw ApiError(400, "'top_p' must be in (0, 1], got " + number_text(p.top_p), "top_p");

  const int64_t n = get_int(j, "n", 1);
  if (n < 1 || n > limits.max_n)
    throw ApiError(400, "'n' must be between 1 and " + std::to_string(limits.max_n), "n");
  p.n = static_cast<int>(n);

  if (const json* s = field(j, "seed")) {
    if (!s->is_number_integer()) throw ApiError(400, "'seed' must be an integer", "seed");
    p.seed = s->is_number_unsigned() ? s->get<uint64_t>() : static_cast<uint64_t>(s->get<int64_t>());
  }

  if (const json* st = field(j, "stream")) {
    if (!st->is_boolean()) throw ApiError(400, "'stream' must be a boolean", "stream");
    p.stream = st->get<bool>();
  }

  if (const json* so = field(j, "stream_options")) {
    if (!so->is_object()) throw ApiError(400, "'stream_options' must be an object", "stream_options");
    if (!p.stream)
      throw ApiError(400, "'stream_options' is only allowed when 'stream' is true", "stream_options");
    if (const json* u = field(*so, "include_usage")) {
      if (!u->is_boolean())
        throw ApiError(400, "'stream_options.include_usage' must be a boolean",
                       "stream_options.include_usage");
      p.include_usage = u->get<bool>();
    }
  }
  p.banned_ids = parse_logit_bias(j);

  if (const json* stop = field(j, "stop")) {
    if (stop->is_string()) {
      p.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const auto& s : *stop) {
        if (!s.is_string()) throw ApiError(400, "'stop' must be a string or an array of strings", "stop");
        p.stop.push_back(s.get<std::string>());
      }
    } else {
      throw ApiError(400, "'stop' must be a string or an array of strings", "stop");
    }
    if (static_cast<int>(p.stop.size()) > limits.max_stop_strings)
      throw ApiError(400, "'stop' may hold at most " + std::to_string(limits.max_stop_strings) + " strings",
                     "stop");
    for (const auto& s : p.stop)
      if (s.empty()) throw ApiError(400, "'stop' strings must not be empty", "stop");
  }
  return p;
}

}  // namespace

std::string ApiError::to_json() const {
  return dump(
      {{"error", {{"message", what()}, {"type", type}, {"param", null_or(param)}, {"code", null_or(code)}}}});
}

ChatCompletionRequest parse_chat_request(const std::string& body, const RequestLimits& limits,
                                         const std::vector<std::string>& models) {
  const json j = parse_object(body);
  ChatCompletionRequest r;
  r.params = parse_params(j, limits, models);
  const json* msgs = field(j, "messages");
  if (!msgs) throw ApiError(400, "'messages' is required", "messages");
  if (!msgs->is_array()) throw ApiError(400, "'messages' must be an array", "messages");
  if (msgs->empty()) throw ApiError(400, "'messages' must contain at least one message", "messages");
  static const std::vector<std::string> roles = {"system", "developer", "user", "assistant", "tool"};
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw ApiError(400, quoted(at) + " must be an object", at);
    const json* role = field(m, "role");
    if (!role || !role->is_string())
      throw ApiError(400, quoted(at + ".role") + " must be a string", at + ".role");
    const std::string role_s = role->get<std::string>();
    if (std::find(roles.begin(), roles.end(), role_s) == roles.end())
      throw ApiError(400,
                     "'" + role_s + "' is not a valid role in " + quoted(at + ".role") +
                         "; expected system, developer, user, assistant or tool",
                     at + ".role");
    const json* content = field(m, "content");
    if (!content) throw ApiError(400, quoted(at + ".content") + " is required", at + ".content");
    r.messages.push_back({role_s, message_content(*content, at + ".content")});
  }
  return r;
}

CompletionRequest parse_completion_request(const std::string& body, const RequestLimits& limits,
                                           const std::vector<std::string>& models) {
  const json j = parse_object(body);
  CompletionRequest r;
  r.params = parse_params(j, limits, models);
  const json* prompt = field(j, "prompt");
  if (!prompt) throw ApiError(400, "'prompt' is required", "prompt");
  if (prompt->is_array() && prompt->size() == 1 && (*prompt)[0].is_string()) {
    r.prompt = (*prompt)[0].get<std::string>();
  } else if (prompt->is_string()) {
    r.prompt = prompt->get<std::string>();
  } else {
    throw ApiError(400, "'prompt' must be a string (arrays of prompts and token ids are not supported)",
                   "prompt");
  }
  return r;
}

// ---------- responses (server side) ----------

Usage GenerationResult::usage() const {
  Usage u;
  u.prompt_tokens = prompt_tokens;
  for (const auto& c : choices) u.completion_tokens += c.completion_tokens;
  u.total_tokens = u.prompt_tokens + u.completion_tokens;
  return u;
}

namespace {

json usage_json(const Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"total_tokens", u.total_tokens}};
}

json envelope(const std::string& id, const char* object, int64_t created, const std::string& model) {
  return {{"id", id}, {"object", object}, {"created", created}, {"model", model}};
}

std::string sse_event(const json& j) {
  return "data: " + dump(j) + "\n\n";
}

json handoff_json(const HandoffInfo& h) {
  json j = {{"answered_by", h.answered_by},   {"called_cloud", h.called_cloud},
            {"device_text", h.device_text},   {"device_tokens", h.device_tokens},
            {"cloud_tokens", h.cloud_tokens}, {"device_ms", h.device_ms},
            {"cloud_ms", h.cloud_ms}};
  if (!h.cloud_error.empty()) j["cloud_error"] = h.cloud_error;
  if (h.threshold >= 0) {
    j["threshold"] = h.threshold;
    j["handoff_probability"] = h.score;
  }
  if (h.guard_changed) j["guard_changed"] = *h.guard_changed;
  return j;
}

void add_handoff(json& choice, const Choice& c) {
  if (c.handoff) choice["handoff"] = handoff_json(*c.handoff);
}

// A whole (not streamed) reply: the envelope, one choice per entry of r.choices (its body from `choice_body`,
// plus the hand-off object when there is one), the usage.
template <typename ChoiceBody>
std::string completion_json(const char* object, const std::string& id, int64_t created,
                            const std::string& model, const GenerationResult& r, ChoiceBody choice_body) {
  json j = envelope(id, object, created, model);
  json choices = json::array();
  for (const auto& c : r.choices) {
    choices.push_back(choice_body(c));
    add_handoff(choices.back(), c);
  }
  j["choices"] = std::move(choices);
  j["usage"] = usage_json(r.usage());
  return dump(j);
}

}  // namespace

std::string handoff_header(const GenerationResult& r) {
  std::string out;
  for (const auto& c : r.choices) {
    if (!c.handoff) return "";
    out += (out.empty() ? "" : ",") + c.handoff->answered_by;
  }
  return out;
}

std::string chat_completion_json(const std::string& id, int64_t created, const std::string& model,
                                 const GenerationResult& r) {
  return completion_json("chat.completion", id, created, model, r, [](const Choice& c) {
    return json{{"index", c.index},
                {"message", {{"role", "assistant"}, {"content", c.text}}},
                {"logprobs", nullptr},
                {"finish_reason", c.finish_reason}};
  });
}

std::string text_completion_json(const std::string& id, int64_t created, const std::string& model,
                                 const GenerationResult& r) {
  return completion_json("text_completion", id, created, model, r, [](const Choice& c) {
    return json{
        {"index", c.index}, {"text", c.text}, {"logprobs", nullptr}, {"finish_reason", c.finish_reason}};
  });
}

namespace {
// OpenAI's last chunk of a stream asked for its usage: no choices.
std::string usage_chunk(const std::string& id, const char* object, int64_t created, const std::string& model,
                        const GenerationResult& r) {
  json j = envelope(id, object, created, model);
  j["choices"] = json::array();
  j["usage"] = usage_json(r.usage());
  return sse_event(j);
}
}  // namespace

std::string chat_completion_sse(const std::string& id, int64_t created, const std::string& model,
                                const GenerationResult& r, bool include_usage) {
  std::string out;
  auto chunk = [&](const Choice& c, json delta, json finish) {
    json j = envelope(id, "chat.completion.chunk", created, model);
    j["choices"] = json::array({{{"index", c.index},
                                 {"delta", std::move(delta)},
                                 {"logprobs", nullptr},
                                 {"finish_reason", finish}}});
    if (!finish.is_null()) add_handoff(j["choices"][0], c);  // who answered rides on the finish chunk
    out += sse_event(j);
  };
  for (const auto& c : r.choices) {
    chunk(c, {{"role", "assistant"}, {"content", ""}}, nullptr);
    if (!c.text.empty()) chunk(c, {{"content", c.text}}, nullptr);
    chunk(c, json::object(), c.finish_reason);
  }
  if (include_usage) out += usage_chunk(id, "chat.completion.chunk", created, model, r);
  return out + "data: [DONE]\n\n";
}

std::string text_completion_sse(const std::string& id, int64_t created, const std::string& model,
                                const GenerationResult& r, bool include_usage) {
  std::string out;
  for (const auto& c : r.choices) {
    for (int last = 0; last < 2; ++last) {
      json j = envelope(id, "text_completion", created, model);
      j["choices"] = json::array({{{"index", c.index},
                                   {"text", last ? "" : c.text},
                                   {"logprobs", nullptr},
                                   {"finish_reason", last ? json(c.finish_reason) : json(nullptr)}}});
      if (last) add_handoff(j["choices"][0], c);
      out += sse_event(j);
    }
  }
  if (include_usage) out += usage_chunk(id, "text_completion", created, model, r);
  return out + "data: [DONE]\n\n";
}

std::string models_json(const std::vector<std::string>& models, int64_t created) {
  json data = json::array();
  for (const auto& m : models)
    data.push_back({{"id", m}, {"object", "model"}, {"created", created}, {"owned_by", "handoff"}});
  return dump({{"object", "list"}, {"data", data}});
}

// ---------- client side ----------

std::string chat_request_json(const std::string& model, const std::vector<ChatMessage>& messages,
                              const ChatOptions& opts) {
  json msgs = json::array();
  for (const auto& m : messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
  json j = {{"model", model}, {"messages", msgs}, {"stream", opts.stream}};
  if (opts.stream) j["stream_options"] = {{"include_usage", true}};
  if (opts.max_tokens) j["max_tokens"] = *opts.max_tokens;
  if (opts.temperature) j["temperature"] = *opts.temperature;
  if (opts.top_p) j["top_p"] = *opts.top_p;
  if (opts.seed) j["seed"] = *opts.seed;
  if (!opts.stop.empty()) j["stop"] = opts.stop;
  if (!opts.logit_bias.empty()) {
    json bias = json::object();
    for (const auto& [id, b] : opts.logit_bias) bias[std::to_string(id)] = b;
    j["logit_bias"] = bias;
  }
  return dump(j);
}

namespace {

// The start of a body for an error message: printable ASCII only, at most 120 characters.
std::string snippet(const std::string& body) {
  std::string s;
  for (char c : body.substr(0, 120)) s.push_back(c >= 32 && c < 127 ? c : '?');
  if (body.size() > 120) s += "...";
  return body.empty() ? "(empty body)" : "'" + s + "'";
}

json parse_response_body(const std::string& body, const char* what) {
  json j;
  try {
    j = json::parse(body);
  } catch (const json::parse_error&) {
    throw Error(std::string("the ") + what +
                " response is not valid JSON (truncated or not an OpenAI-compatible API?): " + snippet(body));
  }
  if (!j.is_object())
    throw Error(std::string("the ") + what + " response is not a JSON object: " + snippet(body));
  const std::string err = error_message_of(body);
  if (!err.empty()) throw Error(std::string("the ") + what + " response is an error: " + err);
  return j;
}

int64_t usage_field(const json& u, const char* name) {
  auto it = u.find(name);
  return it != u.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

}  // namespace

ChatResponse parse_chat_response(const std::string& body) {
  const json j = parse_response_body(body, "chat completion");
  auto bad = [&](const std::string& why) {
    return Error("the chat completion response " + why + ": " + snippet(body),
                 "is the base URL an OpenAI-compatible API?");
  };
  ChatResponse r;
  if (j.contains("id") && j["id"].is_string()) r.id = j["id"].get<std::string>();
  if (j.contains("model") && j["model"].is_string()) r.model = j["model"].get<std::string>();
  auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty()) throw bad("has no choices");
  const json& c = (*choices)[0];
  if (!c.is_object()) throw bad("has a choice that is not an object");
  auto msg = c.find("message");
  if (msg == c.end() || !msg->is_object()) throw bad("has no message in its first choice");
  auto content = msg->find("content");
  if (content != msg->end() && content->is_string())
    r.content = content->get<std::string>();
  else if (content != msg->end() && !content->is_null())
    throw bad("has a message content that is not a string");
  auto finish = c.find("finish_reason");
  if (finish != c.end() && finish->is_string()) r.finish_reason = finish->get<std::string>();
  auto usage = j.find("usage");
  if (usage != j.end() && usage->is_object()) {
    r.usage.prompt_tokens = usage_field(*usage, "prompt_tokens");
    r.usage.completion_tokens = usage_field(*usage, "completion_tokens");
    r.usage.total_tokens = usage_field(*usage, "total_tokens");
  }
  return r;
}

std::vector<std::string> parse_models_response(const std::string& body) {
  const json j = parse_response_body(body, "model list");
  auto data = j.find("data");
  if (data == j.end() || !data->is_array())
    throw Error("the model list response has no 'data' array: " + snippet(body));
  std::vector<std::string> ids;
  for (const auto& m : *data)
    if (m.is_object() && m.contains("id") && m["id"].is_string()) ids.push_back(m["id"].get<std::string>());
  return ids;
}

std::string error_message_of(const std::string& body) {
  const json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return "";
  auto e = j.find("error");
  if (e == j.end()) return "";
  if (e->is_string()) return e->get<std::string>();
  if (e->is_object() && e->contains("message") && (*e)["message"].is_string())
    return (*e)["message"].get<std::string>();
  return "";
}

}  // namespace handoff
