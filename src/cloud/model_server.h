#pragma once
// The OpenAI-compatible HTTP server of `handoff serve`: POST /v1/chat/completions, POST /v1/completions
// (worker lane), GET /v1/models, GET /health (I/O lane: answered at once, never behind model work), on the
// bounded HttpServer (http_server.h). Every request is validated here, once, into a typed request
// (openai_types.h); generation is the Responder's job. Errors leave as OpenAI error objects.
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "cloud/http_server.h"
#include "cloud/openai_types.h"
#include "cloud/responder.h"

namespace handoff {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                  // 0 → an ephemeral port; ModelServer::port() tells which
  std::string api_key;              // empty → no authentication; never logged
  size_t max_body_bytes = 1 << 20;  // larger request bodies (decoded, chunked included) → 413
  RequestLimits limits;             // max_tokens default/limit, n range
  int http_threads = 8;             // worker threads for generation (the responder serialises model calls)
  size_t max_queued = 256;          // generation requests waiting for a worker; more → 503
  size_t max_connections = 1024;    // open sockets; more → 503
  double header_timeout_s = 10;     // whole request header; slower → 408 and closed
  double body_timeout_s = 30;       // whole request body
  double keep_alive_timeout_s = 5;  // a kept-alive connection's next request header
  double drain_timeout_s = 60;      // stop(): how long requests being computed may take to finish
  int64_t call_rate_window = 200;   // collaborative decisions GET /metrics' rolling call rate counts
  double call_rate_target = -1;     // reported by /metrics as the budget when ≥ 0 (--max-call-rate)
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
  // Drains: stops accepting, answers queued requests 503, lets those being computed finish. Safe from any
  // thread (not from a signal handler: `handoff serve` calls it from a signal-waiting thread). Waits for a
  // start()ed server to end.
  void stop();

  int port() const;         // -1 before bind()
  std::string url() const;  // http://host:port
  HttpServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace handoff
