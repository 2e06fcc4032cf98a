#include "cloud/cloud_client.h"

#include <httplib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <climits>
#include <cmath>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <random>
#include <sstream>
#include <thread>

#include "cloud/chat_stream.h"
#include "common/error.h"

namespace handoff {

// Shared by every call of one client: cancel() wakes every attempt's guard.
struct CloudCancelState {
  std::mutex mu;
  std::condition_variable cv;
  bool cancelled = false;
};

namespace {

using Clock = std::chrono::steady_clock;

bool all_digits(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

struct ParsedUrl {
  std::string scheme, host, path;
  int port = 0;
};

ParsedUrl parse_base_url(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return Error("cloud base URL '" + url + "' " + why,
                 "expected http://host:port[/prefix], e.g. http://127.0.0.1:8080/v1");
  };
  ParsedUrl u;
  const auto sep = url.find("://");
  if (sep == std::string::npos) throw bad("has no scheme");
  u.scheme = url.substr(0, sep);
  std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (u.scheme != "http" && u.scheme != "https") throw bad("must start with http:// or https://");
  std::string rest = url.substr(sep + 3);
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  u.path = slash == std::string::npos ? "" : rest.substr(slash);
  if (authority.find('@') != std::string::npos)
    throw bad("must not carry credentials (use the API key variable)");
  if (u.path.find_first_of("?#") != std::string::npos) throw bad("must not have a query or fragment");
  while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
  std::string port_text;
  if (!authority.empty() && authority[0] == '[') {  // [IPv6]:port
    const auto close = authority.find(']');
    if (close == std::string::npos) throw bad("has an unterminated IPv6 address");
    u.host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') throw bad("has garbage after the IPv6 address");
      port_text = authority.substr(close + 2);
    }
  } else {
    const auto colon = authority.find(':');
    u.host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }
  if (u.host.empty()) throw bad("has no host");
  u.port = u.scheme == "https" ? 443 : 80;
  if (!port_text.empty()) {
    if (port_text.size() > 5 || !all_digits(port_text)) throw bad("has a bad port");
    u.port = std::stoi(port_text);
    if (u.port < 1 || u.port > 65535) throw bad("has a port outside 1..65535");
  }
  return u;
}

template <class SetFn>
void set_timeout(double seconds, SetFn set) {
  seconds = std::max(0.001, seconds);
  const auto sec = static_cast<time_t>(seconds);
  set(sec, static_cast<time_t>((seconds - static_cast<double>(sec)) * 1e6));
}

double backoff_seconds(const CloudClientOptions& o, int retry) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  const double base = std::min(o.backoff_max_s, o.backoff_initial_s * std::pow(2.0, retry));
  return base * (1.0 + 0.5 * std::uniform_real_distribution<double>(0.0, 1.0)(rng));
}

// Retry-After in seconds (the HTTP-date form is ignored), or a negative number.
double retry_after_seconds(const httplib::Response& res) {
  const std::string v = res.get_header_value("Retry-After");
  if (v.empty() || !all_digits(v) || v.size() > 6) return -1;
  return std::stod(v);
}

// Shared by every call of one client: cancel() wakes every attempt's guard.

// Stops `cli` -- shutting its socket, which ends a blocked connect or read -- when `deadline` passes or the
// client is cancelled, whichever comes first. A cpp-httplib client is stopped from another thread by design
// (ClientImpl::stop); here that thread waits on a condition variable and is joined when the attempt ends.
class AttemptGuard {
 public:
  AttemptGuard(httplib::Client& cli, Clock::time_point deadline, CloudCancelState& cancel) : cancel_(cancel) {
    thread_ = std::thread([this, &cli, deadline] {
      std::unique_lock<std::mutex> lock(cancel_.mu);
      cancel_.cv.wait_until(lock, deadline, [this] { return done_ || cancel_.cancelled; });
      if (done_) return;
      fired_ = true;
      cli.stop();
    });
  }
  ~AttemptGuard() {
    {
      std::lock_guard<std::mutex> lock(cancel_.mu);
      done_ = true;
    }
    cancel_.cv.notify_all();
    thread_.join();
  }
  bool fired() {
    std::lock_guard<std::mutex> lock(cancel_.mu);
    return fired_;
  }

 private:
  CloudCancelState& cancel_;
  bool done_ = false, fired_ = false;
  std::thread thread_;
};

std::string seconds_text(double s) {
  std::ostringstream os;
  os << s;
  return os.str();
}

std::string describe_status(int status, const std::string& body) {
  std::string s = "HTTP " + std::to_string(status);
  const std::string msg = error_message_of(body);
  if (!msg.empty()) s += ": " + msg;
  return s;
}

}  // namespace

CloudClientOptions cloud_client_options(const std::string& base_url, const std::string& model,
                                        const std::string& api_key_env, double read_timeout_s,
                                        int max_retries) {
  CloudClientOptions o;
  o.base_url = base_url;
  o.model = model;
  o.api_key_env = api_key_env;
  o.read_timeout_s = read_timeout_s;
  o.max_retries = max_retries;
  o.deadline_s = std::max(o.deadline_s, read_timeout_s);  // a longer read timeout asked for a longer call
  return o;
}

CloudClient::CloudClient(CloudClientOptions opts)
    : cancel_(std::make_shared<CloudCancelState>()), opts_(std::move(opts)) {
  const ParsedUrl u = parse_base_url(opts_.base_url);
#ifndef CPPHTTPLIB_OPENSSL_SUPPORT
  if (u.scheme == "https")
    throw Error("cloud base URL '" + opts_.base_url +
                    "' needs TLS, but this build's cpp-httplib has no OpenSSL support",
                "use http://, or build with CPPHTTPLIB_OPENSSL_SUPPORT and link libssl");
#endif
  const bool v6 = u.host.find(':') != std::string::npos;
  origin_ = u.scheme + "://" + (v6 ? "[" + u.host + "]" : u.host) + ":" + std::to_string(u.port);
  prefix_ = u.path.empty() ? "/v1" : u.path;
  if (opts_.max_retries < 0) throw Error("cloud client: max_retries must be >= 0");
  if (!opts_.api_key_env.empty()) {
    const char* key = std::getenv(opts_.api_key_env.c_str());
    if (!key || !*key)
      throw Error(
          "environment variable " + opts_.api_key_env + " (the cloud API key) is not set or empty",
          "export " + opts_.api_key_env + "=<key>, or drop the API key option for a server without one");
    api_key_ = key;
  }
}

std::string CloudClient::endpoint(const std::string& path) const {
  return origin_ + prefix_ + path;
}

void CloudClient::cancel() const {
  {
    std::lock_guard<std::mutex> lock(cancel_->mu);
    cancel_->cancelled = true;
  }
  cancel_->cv.notify_all();
}

CloudClient::Reply CloudClient::send(const std::string& method, const std::string& path,
                                     const std::string& body, int max_attempts, BodySink* sink) const {
  return send_at(method, prefix_ + path, body, max_attempts, sink);
}

CloudClient::Reply CloudClient::send_at(const std::string& method, const std::string& full_path,
                                        const std::string& body, int max_attempts, BodySink* sink) const {
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(opts_.deadline_s));
  const std::string what = method + " " + origin_ + full_path;
  std::string last_failure;
  int attempt = 1;
  for (;; ++attempt) {
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    if (left <= 0) {
      last_failure = "the " + seconds_text(opts_.deadline_s) + " s deadline passed";
      break;
    }
    if (sink) sink->reset();
    Attempt a = attempt_once(method, full_path, body, deadline, left, sink);
    if (a.ended_by_sink && !a.cancelled && !a.deadline_hit) return {a.status, std::move(a.body), attempt};
    if (a.cancelled) throw Error(what + " was cancelled: the process is shutting down");
    if (a.too_big)
      throw Error(what + ": the reply is larger than " + std::to_string(opts_.max_reply_bytes) + " bytes",
                  "is this an OpenAI-compatible chat endpoint?");
    if (a.status != 0 && a.status != 429 && a.status < 500) return {a.status, std::move(a.body), attempt};
    last_failure = a.deadline_hit  ? "the " + seconds_text(opts_.deadline_s) + " s deadline passed"
                   : a.status != 0 ? describe_status(a.status, a.body)
                                   : "no response (" + a.error + ")";
    if (a.deadline_hit || attempt == max_attempts) break;
    const double backoff = a.retry_after >= 0 ? std::min(a.retry_after, opts_.backoff_max_s)
                                              : backoff_seconds(opts_, attempt - 1);
    std::unique_lock<std::mutex> lock(cancel_->mu);  // a backoff ends early on cancel()
    cancel_->cv.wait_for(lock, std::chrono::duration<double>(backoff), [&] { return cancel_->cancelled; });
  }
  throw Error(what + " failed after " + std::to_string(attempt) + (attempt == 1 ? " attempt" : " attempts") +
                  ": " + last_failure,
              "is the cloud server running and reachable? (handoff serve prints the URL it listens on)");
}

CloudClient::Attempt CloudClient::attempt_once(const std::string& method, const std::string& full_path,
                                               const std::string& body, Clock::time_point deadline,
                                               double left_s, BodySink* sink) const {
  Attempt out;
  {
    std::lock_guard<std::mutex> lock(cancel_->mu);
    if (cancel_->cancelled) {
      out.cancelled = true;
      return out;
    }
  }
  httplib::Client cli(origin_);
  set_timeout(std::min(opts_.connect_timeout_s, left_s),
              [&](time_t s, time_t us) { cli.set_connection_timeout(s, us); });
  set_timeout(std::min(opts_.read_timeout_s, left_s),
              [&](time_t s, time_t us) { cli.set_read_timeout(s, us); });
  set_timeout(std::min(opts_.read_timeout_s, left_s),
              [&](time_t s, time_t us) { cli.set_write_timeout(s, us); });
  httplib::Request req;
  req.method = method;
  req.path = full_path;
  req.set_header("Accept", "application/json");
  if (!api_key_.empty()) req.set_header("Authorization", "Bearer " + api_key_);
  if (method == "POST") {
    req.set_header("Content-Type", "application/json");
    req.body = body;
  }
  // The status arrives before the body: only a 200's body goes to the sink.
  int status = 0;
  req.response_handler = [&](const httplib::Response& r) {
    status = r.status;
    return true;
  };
  // The body is read through a receiver, so that a reply past the cap is dropped as it arrives.
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    if (out.body.size() + n > static_cast<size_t>(opts_.max_reply_bytes)) {
      out.too_big = true;
      return false;
    }
    out.body.append(data, n);
    if (sink && status == 200 && !sink->feed(data, n)) {
      out.ended_by_sink = true;
      return false;
    }
    return true;
  };
  httplib::Result res{nullptr, httplib::Error::Unknown};
  bool fired = false;
  {
    AttemptGuard guard(cli, deadline, *cancel_);
    res = cli.send(req);
    fired = guard.fired();
  }
  if (fired) {
    std::lock_guard<std::mutex> lock(cancel_->mu);
    (cancel_->cancelled ? out.cancelled : out.deadline_hit) = true;
  }
  if (out.ended_by_sink) out.status = status;
  if (res && !out.too_big && !fired) {
    out.status = res->status;
    out.retry_after = retry_after_seconds(*res);
  } else if (!res) {
    out.error = httplib::to_string(res.error());
  }
  return out;
}

void CloudClient::refused(const Reply& reply) const {
  throw Error(
      "POST " + endpoint("/chat/completions") + " was refused: " + describe_status(reply.status, reply.body),
      reply.status == 401 ? "check the API key variable " +
                                (opts_.api_key_env.empty() ? std::string("(none set)") : opts_.api_key_env)
                          : "");
}

namespace {
ChatResult chat_result(const ChatResponse& r, int attempts, Clock::time_point t0) {
  ChatResult out;
  out.content = r.content;
  out.finish_reason = r.finish_reason;
  out.model = r.model;
  out.usage = r.usage;
  out.attempts = attempts;
  out.latency_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  return out;
}
}  // namespace

ChatResult CloudClient::chat(const std::vector<ChatMessage>& messages, const ChatOptions& opts) const {
  const auto t0 = Clock::now();
  const Reply reply = send("POST", "/chat/completions", chat_request_json(opts_.model, messages, opts),
                           1 + opts_.max_retries);
  if (reply.status != 200) refused(reply);
  return chat_result(parse_chat_response(reply.body), reply.attempts, t0);
}

ChatResult CloudClient::chat_streamed(const std::vector<ChatMessage>& messages, ChatOptions opts,
                                      const std::vector<std::string>& stop_at) const {
  const auto t0 = Clock::now();
  opts.stream = true;
  ChatStreamReader reader(stop_at, static_cast<size_t>(opts_.max_reply_bytes));
  const Reply reply = send("POST", "/chat/completions", chat_request_json(opts_.model, messages, opts),
                           1 + opts_.max_retries, &reader);
  if (reply.status != 200) refused(reply);
  const std::string what = "the streamed reply of POST " + endpoint("/chat/completions");
  if (reader.server_error()) throw Error(what + " reported an error: " + reader.error());
  if (!reader.error().empty())
    throw Error(what + " is not a chat completion stream: " + reader.error(),
                "is the base URL an OpenAI-compatible API?");
  if (!reader.events()) return chat_result(parse_chat_response(reply.body), reply.attempts, t0);
  if (!reader.done() && !reader.holds_marker())
    throw Error(what + " ended before its [DONE] event (truncated)");
  ChatResponse r = reader.response();
  if (r.usage.completion_tokens == 0 && reader.content_chunks() > 0) {
    r.usage.completion_tokens = reader.content_chunks();
    r.usage.prompt_tokens = 0;  // unknown: the server's usage never came
    r.usage.total_tokens = r.usage.completion_tokens;
  }
  return chat_result(r, reply.attempts, t0);
}

std::vector<std::string> CloudClient::models() const {
  const Reply reply = send("GET", "/models", "", 1 + opts_.max_retries);
  if (reply.status != 200)
    throw Error("GET " + endpoint("/models") + " was refused: " + describe_status(reply.status, reply.body));
  return parse_models_response(reply.body);
}

std::vector<int> CloudClient::tokenize(const std::string& text) const {
  // llama-server's /tokenize sits beside its /v1: under the same proxy prefix, if there is one.
  const std::string base = prefix_.size() >= 3 && prefix_.compare(prefix_.size() - 3, 3, "/v1") == 0
                               ? prefix_.substr(0, prefix_.size() - 3)
                               : prefix_;
  const std::string url = origin_ + base + "/tokenize";
  const std::string body =
      nlohmann::json{{"content", text}, {"add_special", false}, {"parse_special", true}}.dump();
  const Reply reply = send_at("POST", base + "/tokenize", body, 1 + opts_.max_retries, nullptr);
  if (reply.status != 200)
    throw Error("POST " + url + " was refused: " + describe_status(reply.status, reply.body),
                "a server without llama.cpp's /tokenize cannot be asked for token ids");
  const auto j = nlohmann::json::parse(reply.body, nullptr, /*allow_exceptions=*/false);
  std::vector<int> ids;
  const auto tokens = j.is_object() ? j.find("tokens") : j.end();
  if (!j.is_object() || tokens == j.end() || !tokens->is_array())
    throw Error("POST " + url + " did not answer {\"tokens\": [...]}");
  for (const auto& t : *tokens) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() > INT_MAX)
      throw Error("POST " + url + " answered a token that is not an id: " + t.dump().substr(0, 40));
    ids.push_back(t.get<int>());
  }
  return ids;
}

bool CloudClient::healthy() const {
  try {
    return send("GET", "/models", "", 1).status == 200;
  } catch (const Error&) {
    return false;
  }
}

}  // namespace handoff
