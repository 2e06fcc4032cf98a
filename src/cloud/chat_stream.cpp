#include "cloud/chat_stream.h"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace handoff {

using nlohmann::json;

ChatStreamReader::ChatStreamReader(std::vector<std::string> stop_at, size_t max_line_bytes)
    : stop_at_(std::move(stop_at)), max_line_(max_line_bytes) {
  stop_at_.erase(std::remove(stop_at_.begin(), stop_at_.end(), std::string()), stop_at_.end());
}

void ChatStreamReader::reset() {
  pending_.clear();
  r_ = {};
  chunks_ = events_ = 0;
  marker_ = stopped_ = done_ = server_error_ = false;
  error_.clear();
  event_name_.clear();
}

bool ChatStreamReader::feed(const char* data, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (data[i] != '\n') {
      if (pending_.size() >= max_line_) {
        error_ = "a line of the event stream is longer than " + std::to_string(max_line_) + " bytes";
        return false;
      }
      pending_.push_back(data[i]);
      continue;
    }
    if (!pending_.empty() && pending_.back() == '\r') pending_.pop_back();
    const bool go_on = line(pending_);
    pending_.clear();
    if (!go_on) return false;
  }
  return true;
}

// SSE: `data:` lines carry the events; comments (":"), `id:`, `retry:` and blank lines (an event's end) are
// framing. An error is `event: error` before its data, or llama-server's own `error: {...}` line (which it
// follows with `data: [DONE]`).
bool ChatStreamReader::line(const std::string& l) {
  if (done_) return true;
  auto value = [&](size_t from) { return l.substr(l.size() > from && l[from] == ' ' ? from + 1 : from); };
  if (l.empty()) event_name_.clear();
  if (l.compare(0, 6, "event:") == 0) event_name_ = value(6);
  if (l.compare(0, 6, "error:") == 0 || (event_name_ == "error" && l.compare(0, 5, "data:") == 0)) {
    const std::string body = l.compare(0, 6, "error:") == 0 ? value(6) : value(5);
    const std::string message = error_message_of(body);
    error_ = message.empty() ? body.substr(0, 200) : message;
    server_error_ = true;
    return false;
  }
  if (l.compare(0, 5, "data:") != 0) return true;
  std::string data = value(5);
  ++events_;
  if (data == "[DONE]") {
    done_ = true;
    return true;  // the server ends the body; what it might still send is ignored
  }
  return event(data);
}

bool ChatStreamReader::event(const std::string& data) {
  const json j = json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) {
    error_ = "an event of the stream is not a JSON object: '" + data.substr(0, 80) + "'";
    return false;
  }
  if (j.contains("error")) {
    error_ = error_message_of(data);
    if (error_.empty()) error_ = j["error"].dump().substr(0, 200);
    server_error_ = true;
    return false;
  }
  if (j.contains("model") && j["model"].is_string()) r_.model = j["model"].get<std::string>();
  if (const auto u = j.find("usage"); u != j.end() && u->is_object()) {
    auto field = [&](const char* name) {
      const auto it = u->find(name);
      return it != u->end() && it->is_number_integer() ? it->get<int64_t>() : int64_t{0};
    };
    r_.usage = {field("prompt_tokens"), field("completion_tokens"), field("total_tokens")};
  }
  const auto choices = j.find("choices");
  if (choices == j.end() || !choices->is_array() || choices->empty()) return true;  // e.g. the usage chunk
  const json& c = (*choices)[0];
  if (!c.is_object()) {
    error_ = "a chunk's choice is not an object";
    return false;
  }
  std::string text;
  if (const auto d = c.find("delta"); d != c.end() && d->is_object())
    if (const auto t = d->find("content"); t != d->end() && t->is_string()) text = t->get<std::string>();
  if (!text.empty()) {
    // The server went on past a marker: what follows is cut, and the connection closed.
    if (marker_) {
      stopped_ = true;
      r_.finish_reason = "stop";
      return false;
    }
    const size_t from = r_.content.size();
    r_.content += text;
    ++chunks_;
    for (const auto& s : stop_at_) {
      const size_t at = r_.content.find(s, from >= s.size() ? from - s.size() + 1 : 0);
      marker_ = marker_ || at != std::string::npos;
    }
  }
  if (const auto f = c.find("finish_reason"); f != c.end() && f->is_string())
    r_.finish_reason = f->get<std::string>();
  return true;
}

}  // namespace handoff
