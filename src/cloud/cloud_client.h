#pragma once
// A client for any OpenAI-compatible API (our `handoff serve`, vLLM, llama.cpp server, OpenAI itself):
// POST {base}/chat/completions and GET {base}/models with timeouts, retries with exponential backoff and
// jitter on connection errors, 429 and 5xx, and the API key read from an environment variable (never logged,
// never part of an error). Every failure — unreachable host, timeout, garbage or truncated body — is an
// Error.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "cloud/openai_types.h"

namespace handoff {

struct CloudClientOptions {
  // http://host[:port][/prefix] or https://…; requests go to prefix + "/chat/completions", as with the OpenAI
  // SDKs' base_url (e.g. https://api.openai.com/v1). Without a prefix, "/v1" is used.
  std::string base_url;
  std::string model;  // the "model" field of every request
  std::string
      api_key_env;  // name of the environment variable holding the key; empty → no Authorization header
  double connect_timeout_s = 5.0;
  double read_timeout_s = 120.0;   // per attempt: a slow generation must fit in it
  int max_retries = 3;             // attempts after the first one
  double backoff_initial_s = 0.5;  // wait before retry k: min(initial · 2^k, max) plus up to 50 % jitter
  double backoff_max_s = 8.0;
  // The whole call -- connect, every read, every retry and backoff -- ends by this deadline, however the
  // server drips its bytes (the per-read timeouts alone let one byte a second go on forever).
  double deadline_s = 90.0;
  int64_t max_reply_bytes = 4 << 20;  // a longer reply is an error, not held in memory
};

// The options of a client for `base_url` with the knobs its callers set (the CLI's --cloud* flags, the RL
// trainer's cloud options): the model name ("" is fine where the caller asks the cloud for it later), the API
// key's environment variable ("" → none), the per-attempt read timeout and the retries after the first
// attempt. The connect timeout and backoff keep their defaults; the total deadline is the default or the read
// timeout, whichever is longer.
CloudClientOptions cloud_client_options(const std::string& base_url, const std::string& model,
                                        const std::string& api_key_env, double read_timeout_s,
                                        int max_retries);

struct CloudCancelState;  // cloud_client.cpp
struct BodySink;          // chat_stream.h

struct ChatResult {
  std::string content;
  std::string finish_reason;  // "stop" | "length" | whatever the API says
  std::string model;          // as reported by the API
  Usage usage;
  double latency_ms = 0;  // the whole call: every attempt and backoff
  int attempts = 0;
};

class CloudClient {
 public:
  // Throws Error for a malformed base URL, an https URL without TLS support in this build, or a named
  // key variable that is unset or empty.
  explicit CloudClient(CloudClientOptions opts);

  // Thread-safe: each call opens its own connection.
  ChatResult chat(const std::vector<ChatMessage>& messages, const ChatOptions& opts = {}) const;
  // The same reply streamed (server-sent events) and read as it arrives: once its text holds one of
  // `stop_at` and the server goes on generating, the connection is closed and the reply ends there
  // (chat_stream.h); `usage` is the server's when it came, else completion_tokens counts the content chunks
  // read (one token each on llama-server and vLLM) and prompt_tokens is 0. A server that ignores "stream"
  // and sends a whole reply is read as chat() reads it.
  ChatResult chat_streamed(const std::vector<ChatMessage>& messages, ChatOptions opts,
                           const std::vector<std::string>& stop_at) const;
  std::vector<std::string> models() const;
  // POST {origin}/tokenize as llama-server (and `handoff serve --model`) read it: `text`'s token ids, special
  // tokens read as themselves. Error when the server has no such endpoint or answers something else.
  std::vector<int> tokenize(const std::string& text) const;
  // One GET {base}/models attempt within the timeouts: true on HTTP 200.
  bool healthy() const;

  // Ends every call in flight (their sockets are shut) and fails every later one at once: for shutdown.
  void cancel() const;

  const CloudClientOptions& options() const { return opts_; }
  std::string endpoint(const std::string& path) const;  // e.g. http://127.0.0.1:8080/v1/chat/completions

 private:
  struct Reply {
    int status = 0;
    std::string body;
    int attempts = 0;
  };
  // `sink`, when given, also reads a 200 reply's body as it arrives and may end it early.
  Reply send(const std::string& method, const std::string& path, const std::string& body, int max_attempts,
             BodySink* sink = nullptr) const;
  // The same at a path from the origin (not under the /v1 prefix).
  Reply send_at(const std::string& method, const std::string& full_path, const std::string& body,
                int max_attempts, BodySink* sink) const;
  struct Attempt {
    int status = 0;  // 0: no HTTP response
    std::string body, error;
    double retry_after = -1;
    bool too_big = false, deadline_hit = false, cancelled = false;
    bool ended_by_sink = false;  // the sink ended the reply (a marker, garbage, the stream's end)
  };
  // One HTTP exchange, bounded by `deadline` (left_s from now) and cancel().
  Attempt attempt_once(const std::string& method, const std::string& full_path, const std::string& body,
                       std::chrono::steady_clock::time_point deadline, double left_s, BodySink* sink) const;
  [[noreturn]] void refused(const Reply& reply) const;  // throws the Error for a non-200 chat reply

  std::shared_ptr<CloudCancelState> cancel_;
  CloudClientOptions opts_;
  std::string origin_;  // scheme://host:port
  std::string prefix_;  // "/v1"
  std::string api_key_;
};

}  // namespace handoff
