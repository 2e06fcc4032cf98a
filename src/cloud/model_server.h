#pragma once
// The OpenAI-compatible HTTP server of `handoff serve` (cpp-httplib): POST /v1/chat/completions,
// POST /v1/completions, GET /v1/models, GET /health. Every request is validated here, once, into a typed
// request (openai_types.h); generation is the Responder's job. Errors leave as OpenAI error objects.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "cloud/openai_types.h"
#include "cloud/responder.h"

namespace handoff {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0 → an ephemeral port; ModelServer::port() tells which
  std::string api_key;              // empty → no authentication; never logged
  size_t max_body_bytes = 1 << 20;  // larger request bodies → 413
  RequestLimits limits;             // max_tokens default/limit, n range
  int http_threads = 8;             // HTTP worker threads (model calls are serialised by the responder)
  int keep_alive_timeout_s = 2;     // an idle keep-alive connection delays stop() by at most this
  // One line per request ("POST /v1/chat/completions 200 12.3 ms": no headers, no body). Default: stderr.
  std::function<void(const std::string&)> log;
};

class ModelServer {
 public:
  ModelServer(std::shared_ptr<Responder> responder, ServerOptions opts);
  ~ModelServer();  // stop() and wait
  ModelServer(const ModelServer&) = delete;
  ModelServer& operator=(const ModelServer&) = delete;

  // Binds host:port (throws Error when it cannot) and returns the bound port. Connections are accepted
  // into the listen queue from here on, so a client may connect before run() starts.
  int bind();
  // Serves until stop(); binds first if bind() was not called. Returns once in-flight requests finished.
  void run();
  // bind() + run() on a background thread.
  void start();
  // Stops accepting connections; requests in flight finish. Safe from any thread (not from a signal
  // handler: `handoff serve` calls it from a signal-waiting thread). Waits for a start()ed server to end.
  void stop();

  int port() const;         // -1 before bind()
  std::string url() const;  // http://host:port

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace handoff
