#pragma once
// The HTTP/1.1 layer under `handoff serve` (Boost.Beast): bounded whatever a client does. One I/O thread
// reads and writes every connection asynchronously, so a slow or idle client holds a socket, never a
// thread; model work runs on a pool of workers fed by one FIFO queue of whole requests, so keep-alive
// clients are served in arrival order instead of each sticking to a thread (issue 16, items 3, 5, 6).
//  - deadlines on the whole request header, the whole body and the response write (not per read): a
//    connection past one is closed;
//  - the body limit counts the decoded body (chunked included), checked while reading;
//  - at most max_connections sockets and max_queued waiting requests: more → 503 with Retry-After;
//  - routes on the I/O lane (/health, /v1/models) are answered at once, never behind model work;
//  - stop() drains: stops accepting, closes idle connections, answers requests still queued with 503,
//    lets the ones being computed finish and their replies reach the client, then returns.
// cpp-httplib (Debian's 0.11) runs each connection on one pool thread for its whole keep-alive life with
// per-read timeouts, which is what let 20 dripping sockets starve /health.
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace handoff {

struct HttpRequest {
  std::string method, path, query;  // path without "?query"
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // The first header of that name (case-insensitive); "" when absent.
  std::string header(const std::string& name) const;
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                     // 0 → an ephemeral port
  size_t max_body_bytes = 1 << 20;     // decoded body, chunked included → 413
  size_t max_header_bytes = 16 << 10;  // → 431
  double header_timeout_s = 10;        // the first request's whole header, from accept; then closed
  double keep_alive_timeout_s = 5;     // a kept-alive connection's next whole header, from the last reply
  double body_timeout_s = 30;          // the whole body, from the end of the header
  double write_timeout_s = 30;         // the whole reply; a client that does not read it is dropped
  int workers = 8;                     // threads running worker-lane handlers
  size_t max_queued = 256;             // worker-lane requests waiting for a thread; more → 503
  size_t max_connections = 1024;       // open sockets; more → 503 and close
  double drain_timeout_s = 60;         // stop(): how long requests in flight may take to finish
};

// Where a route's handler runs: on the I/O thread (must be quick and never block) or on a worker.
enum class Lane { io, worker };

struct HttpServerStats {
  size_t connections = 0, queued = 0, working = 0;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  struct Hooks {
    // After the header, before the body is read (request.body is empty): a response refuses the
    // request; its body is never read and the connection closes. Runs on the I/O thread.
    std::function<std::optional<HttpResponse>(const HttpRequest&)> on_header;
    // The reply for a status the server decides itself (400, 404, 405, 413, 431, 500, 503).
    std::function<HttpResponse(int status, const std::string& message)> on_error;
    // After each reply is produced: method, path, status and milliseconds since the header arrived.
    std::function<void(const HttpRequest&, int status, double ms)> on_done;
  };

  HttpServer(HttpServerOptions options, Hooks hooks);
  ~HttpServer();  // stop() and wait
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Before bind(). Another method on a known path → 405; an unknown path → 404.
  void route(const std::string& method, const std::string& path, Lane lane, Handler handler);

  // Binds host:port (throws Error when it cannot) and returns the port; clients may connect from here on.
  int bind();
  // Serves until stop() has drained; binds first if needed.
  void run();
  // bind() + run() on a background thread.
  void start();
  // Begins the drain; safe from any thread (not a signal handler). Waits for a start()ed server to end.
  void stop();

  int port() const;  // -1 before bind()
  HttpServerStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace handoff
