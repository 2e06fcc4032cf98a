// Protocols as data (issue 17; design.md src/protocol/): the built-ins, the JSON form, rendering and checks.
// The device grammar of a protocol is in protocol_grammar.cpp.
#include "protocol/protocol.h"

#include <cstdio>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "protocol/answer_forms.h"

namespace handoff {

namespace {

using nlohmann::json;

constexpr const char* kQuery = "{query}";

// The paper's device instruction (§4: reason in <think>, answer in <answer>, or write the hand-off phrase),
// in our words.
constexpr const char* kPaperDeviceSystem =
    "You are a helpful assistant. Solve the user's problem. First think through the reasoning process "
    "inside <think> </think>, then give the final answer inside <answer> </answer>, i.e. <think> reasoning "
    "here </think> <answer> answer here </answer>. If you cannot solve the problem reliably yourself, end "
    "your reply with <unknown> I need external assistance </unknown> instead of an answer, and a stronger "
    "model will answer it.";
// DeepSeek-R1's recommended usage: no system prompt, the instruction in the user turn.
constexpr const char* kPaperCloudUser =
    "{query}\n\nPlease reason step by step, and put your final answer within \\boxed{}.";

std::string render(const std::string& tmpl, const std::string& query) {
  std::string out = tmpl;
  const size_t at = out.find(kQuery);
  if (at == std::string::npos) throw Error("a protocol's user text has no {query}: \"" + tmpl + "\"");
  out.replace(at, std::string(kQuery).size(), query);
  return out;
}

std::vector<ChatMessage> wrap(const std::string& system, const std::string& user,
                              std::vector<ChatMessage> m) {
  for (auto it = m.rbegin(); it != m.rend(); ++it)
    if (it->role == "user") {
      it->content = render(user, it->content);
      break;
    }
  bool has_system = false;
  for (const auto& x : m) has_system = has_system || x.role == "system";
  if (!system.empty() && !has_system) m.insert(m.begin(), {"system", system});
  return m;
}

AnswerForm parse_form(const std::string& s, const std::string& where) {
  for (AnswerForm f :
       {AnswerForm::kAnswerLine, AnswerForm::kAnswerTags, AnswerForm::kBoxed, AnswerForm::kHashes})
    if (answer_form_name(f) == s) return f;
  throw Error(where + ": unknown answer form \"" + s + "\"",
              "one of answer-line, answer-tags, boxed, hashes");
}

// The fields of `obj` exactly: every name in `fields` present (those in `optional` may be absent), no other.
void require_fields(const json& obj, const std::vector<std::string>& fields,
                    const std::vector<std::string>& optional, const std::string& where) {
  if (!obj.is_object()) throw Error(where + " must be a JSON object");
  for (const auto& f : fields)
    if (!obj.contains(f)) throw Error(where + ": the field \"" + f + "\" is missing");
  for (const auto& [k, v] : obj.items()) {
    bool known = false;
    for (const auto& f : fields) known = known || f == k;
    for (const auto& f : optional) known = known || f == k;
    if (!known) throw Error(where + ": unknown field \"" + k + "\"");
  }
}

std::string text_field(const json& obj, const std::string& key, const std::string& where) {
  const json& v = obj.at(key);
  if (!v.is_string()) throw Error(where + ": " + key + " must be a string");
  return v.get<std::string>();
}

void check_user_template(const std::string& tmpl, const std::string& where) {
  const size_t at = tmpl.find(kQuery);
  if (at == std::string::npos || tmpl.find(kQuery, at + 1) != std::string::npos)
    throw Error(where + " must contain {query} exactly once (where the task's question goes): \"" + tmpl +
                "\"");
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

std::string answer_form_name(AnswerForm f) {
  switch (f) {
    case AnswerForm::kAnswerLine:
      return "answer-line";
    case AnswerForm::kAnswerTags:
      return "answer-tags";
    case AnswerForm::kBoxed:
      return "boxed";
    case AnswerForm::kHashes:
      return "hashes";
  }
  return "unknown";
}

std::vector<ChatMessage> Protocol::device_messages(const std::string& query) const {
  return wrap(device_system, device_user, {{"user", query}});
}

std::vector<ChatMessage> Protocol::cloud_messages(const std::string& query) const {
  return wrap(cloud_system, cloud_user, {{"user", query}});
}

std::vector<ChatMessage> Protocol::device_conversation(std::vector<ChatMessage> conversation) const {
  return wrap(device_system, device_user, std::move(conversation));
}

std::vector<ChatMessage> Protocol::cloud_conversation(std::vector<ChatMessage> conversation) const {
  return wrap(cloud_system, cloud_user, std::move(conversation));
}

std::string Protocol::cloud_key() const {
  if (cloud_system.empty() && cloud_user == kQuery) return "";
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx",
                static_cast<unsigned long long>(fnv1a(cloud_system + '\0' + cloud_user)));
  return hex;
}

std::string Protocol::to_json_text() const {
  json j = {{"name", name},
            {"device",
             {{"system", device_system},
              {"user", device_user},
              {"answer", answer_form_name(answer)},
              {"handoff", handoff},
              {"think", think},
              {"enable_thinking", enable_thinking ? json(*enable_thinking) : json(nullptr)}}},
            {"cloud", {{"system", cloud_system}, {"user", cloud_user}}}};
  return j.dump(2) + "\n";
}

Protocol Protocol::from_json_text(const std::string& text, const std::string& source) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  require_fields(j, {"name", "device", "cloud"}, {}, source);
  require_fields(j["device"], {"system", "user", "answer", "handoff", "think"}, {"enable_thinking"},
                 source + ": device");
  require_fields(j["cloud"], {"system", "user"}, {}, source + ": cloud");
  Protocol p;
  p.name = text_field(j, "name", source);
  if (p.name.empty()) throw Error(source + ": name must not be empty");
  const json& d = j["device"];
  const std::string dw = source + ": device", cw = source + ": cloud";
  p.device_system = text_field(d, "system", dw);
  p.device_user = text_field(d, "user", dw);
  check_user_template(p.device_user, dw + ".user");
  p.answer = parse_form(text_field(d, "answer", dw), dw + ".answer");
  p.handoff = text_field(d, "handoff", dw);
  if (trim_text(p.handoff).empty() || p.handoff.find('\n') != std::string::npos ||
      trim_text(p.handoff).size() != p.handoff.size())
    throw Error(dw +
                ".handoff must be one line of text without surrounding spaces (the <handoff> token or a "
                "phrase): \"" +
                p.handoff + "\"");
  if (!d["think"].is_boolean()) throw Error(dw + ".think must be true or false");
  p.think = d["think"].get<bool>();
  if (d.contains("enable_thinking") && !d["enable_thinking"].is_null()) {
    if (!d["enable_thinking"].is_boolean()) throw Error(dw + ".enable_thinking must be true, false or null");
    p.enable_thinking = d["enable_thinking"].get<bool>();
  }
  p.cloud_system = text_field(j["cloud"], "system", cw);
  p.cloud_user = text_field(j["cloud"], "user", cw);
  check_user_template(p.cloud_user, cw + ".user");
  for (const auto& [where, text] : {std::pair<std::string, std::string>{dw + ".system", p.device_system},
                                    {cw + ".system", p.cloud_system}})
    if (text.find(kQuery) != std::string::npos)
      throw Error(where + " contains {query}, which only the user text is rendered with");
  return p;
}

std::vector<std::string> builtin_protocol_names() {
  return {"handoff", "paper"};
}

Protocol load_protocol(const std::string& name_or_path) {
  if (name_or_path == "handoff") return Protocol{};
  if (name_or_path == "paper") {
    Protocol p;
    p.name = "paper";
    p.device_system = kPaperDeviceSystem;
    p.answer = AnswerForm::kAnswerTags;
    p.handoff = std::string(kHandoffAlias);
    p.think = true;
    p.cloud_user = kPaperCloudUser;
    return p;
  }
  if (!file_exists(name_or_path))
    throw Error("unknown protocol \"" + name_or_path + "\"",
                "built in: handoff (the default), paper; or the path of a protocol JSON file "
                "(`handoff protocol show paper` prints one to start from)");
  return Protocol::from_json_text(read_file(name_or_path), name_or_path);
}

Protocol recorded_protocol(const std::string& dir) {
  const std::string path = dir + "/" + kProtocolFile;
  if (dir.empty() || !file_exists(path)) return Protocol{};
  return Protocol::from_json_text(read_file(path), path);
}

Protocol resolve_protocol(const std::string& flag, const std::string& dir) {
  return flag.empty() ? recorded_protocol(dir) : load_protocol(flag);
}

}  // namespace handoff
