#include "cloud/model_server.h"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <thread>

#include <c10/util/Exception.h>

#include "common/error.h"

namespace handoff {

namespace {

using Clock = std::chrono::steady_clock;

// Start of the request this worker thread is handling (httplib runs a request's routing, handler and
// logger on one thread). Unset for requests refused before routing (malformed HTTP).
thread_local Clock::time_point t_request_start{};

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Compares without an early exit, so response timing does not reveal how much of a guessed key matched.
bool same_secret(const std::string& given, const std::string& key) {
  unsigned diff = given.size() != key.size() ? 1u : 0u;
  for (size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i]) ^
            static_cast<unsigned char>(key.empty() ? 0 : key[i % key.size()]);
  return diff == 0;
}

void send_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(e.to_json(), "application/json");
}

// Bodies for the statuses httplib produces itself (no route, payload too large, malformed HTTP).
ApiError error_for_status(int status, const httplib::Request& req) {
  switch (status) {
    case 404:
      return ApiError(404, "Unknown request URL: " + req.method + " " + req.path, "", "unknown_url");
    case 413:
      return ApiError(413, "The request body is too large", "", "request_too_large");
    case 400:
      return ApiError(400, "Malformed HTTP request");
    default:
      return ApiError(status, "HTTP status " + std::to_string(status), "", "",
                      status >= 500 ? "server_error" : "invalid_request_error");
  }
}

}  // namespace

struct ModelServer::Impl {
  std::shared_ptr<Responder> responder;
  ServerOptions opts;
  httplib::Server svr;
  std::thread background;
  std::atomic<int> port{-1};
  std::atomic<bool> serving{false}, stop_requested{false};
  std::string id_base;
  std::atomic<uint64_t> id_counter{0};

  Impl(std::shared_ptr<Responder> r, ServerOptions o) : responder(std::move(r)), opts(std::move(o)) {
    if (!responder) throw Error("ModelServer needs a responder");
    if (!opts.log) opts.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx",
                  static_cast<unsigned long long>(std::random_device{}()) << 32 ^ std::random_device{}());
    id_base = buf;
    install();
  }

  std::string next_id(const char* prefix) { return prefix + id_base + std::to_string(++id_counter); }

  bool authorized(const httplib::Request& req) const {
    if (opts.api_key.empty()) return true;
    const std::string h = req.get_header_value("Authorization");
    const std::string scheme = "Bearer ";
    if (h.size() < scheme.size() ||
        (h.compare(0, scheme.size(), scheme) != 0 && h.compare(0, scheme.size(), "bearer ") != 0))
      return false;
    return same_secret(h.substr(scheme.size()), opts.api_key);
  }

  // Wraps a route: authentication, then the handler, with every failure turned into an OpenAI error object.
  httplib::Server::Handler guarded(std::function<void(const httplib::Request&, httplib::Response&)> handler,
                                   bool needs_key = true) {
    return [this, handler, needs_key](const httplib::Request& req, httplib::Response& res) {
      if (needs_key && !authorized(req)) {
        // Neither the expected nor the given key is echoed.
        send_error(
            res, ApiError(401, "Incorrect or missing API key: send the header 'Authorization: Bearer <key>'",
                          "", "invalid_api_key"));
        return;
      }
      try {
        handler(req, res);
      } catch (const ApiError& e) {
        send_error(res, e);
      } catch (const Error& e) {
        send_error(res, ApiError(500, std::string("generation failed: ") + e.what(), "", "", "server_error"));
      } catch (const c10::Error& e) {
        send_error(
            res, ApiError(500, std::string("generation failed (libtorch): ") + e.what_without_backtrace(), "",
                          "", "server_error"));
      } catch (const std::exception& e) {
        send_error(res, ApiError(500, std::string("internal error: ") + e.what(), "", "", "server_error"));
      }
    };
  }

  template <class Request, class Parse, class ToJson, class ToSse>
  void generation(const httplib::Request& req, httplib::Response& res, Parse parse, ToJson to_json,
                  ToSse to_sse, const char* id_prefix) {
    const Request request = parse(req.body, opts.limits, responder->models());
    const GenerationResult result = responder->respond(request);
    const std::string id = next_id(id_prefix);
    const int64_t created = unix_seconds();
    const std::string by = handoff_header(result);
    if (!by.empty()) res.set_header("x-handoff-by", by);
    if (request.params.stream) {
      // The whole completion is generated first and then sent as events (no token-by-token streaming yet).
      res.set_header("Cache-Control", "no-cache");
      res.set_content(to_sse(id, created, request.params.model, result), "text/event-stream");
    } else {
      res.set_content(to_json(id, created, request.params.model, result), "application/json");
    }
  }

  void install() {
    svr.new_task_queue = [n = std::max(1, opts.http_threads)] { return new httplib::ThreadPool(n); };
    svr.set_payload_max_length(opts.max_body_bytes);
    svr.set_keep_alive_timeout(opts.keep_alive_timeout_s);
    // SO_REUSEADDR only: cpp-httplib's default SO_REUSEPORT let a second server bind a port already served,
    // silently splitting the traffic between two processes.
    svr.set_socket_options([](socket_t sock) {
      int yes = 1;
      setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, reinterpret_cast<void*>(&yes), sizeof(yes));
    });

    // Runs after the headers and before cpp-httplib reads the body: what is refused here costs no memory.
    svr.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      t_request_start = Clock::now();
      auto refuse = [&](const ApiError& e) {
        send_error(res, e);
        res.set_header("Connection", "close");  // the unread body must not be parsed as the next request
        return httplib::Server::HandlerResponse::Handled;
      };
      // The body-size limit holds only with a Content-Length: a chunked body, or a compressed one that
      // inflates (100 MB from 97 KB of gzip), would be read whole before any handler could count it.
      const std::string encoding = req.get_header_value("Content-Encoding");
      if (!encoding.empty() && encoding != "identity")
        return refuse(ApiError(415, "compressed request bodies (Content-Encoding: " + encoding +
                                        ") are not accepted; send the JSON as is"));
      if (req.get_header_value("Transfer-Encoding").find("chunked") != std::string::npos)
        return refuse(ApiError(411, "chunked request bodies are not accepted; send a Content-Length"));
      if (req.path != "/health" && !authorized(req))
        return refuse(ApiError(401,
                               "Incorrect or missing API key: send the header 'Authorization: Bearer <key>'",
                               "", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Unhandled;
    });
    svr.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
      char ms[32] = "-";
      if (t_request_start != Clock::time_point{})
        std::snprintf(ms, sizeof ms, "%.1f",
                      std::chrono::duration<double, std::milli>(Clock::now() - t_request_start).count());
      t_request_start = {};
      opts.log(req.method + " " + req.path + " " + std::to_string(res.status) + " " + ms + " ms");
    });
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      if (res.body.empty()) send_error(res, error_for_status(res.status, req));
    });
    svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
      send_error(res, ApiError(500, "internal error", "", "", "server_error"));
    });

    svr.Post("/v1/chat/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
               generation<ChatCompletionRequest>(req, res, parse_chat_request, chat_completion_json,
                                                 chat_completion_sse, "chatcmpl-");
             }));
    svr.Post("/v1/completions", guarded([this](const httplib::Request& req, httplib::Response& res) {
               generation<CompletionRequest>(req, res, parse_completion_request, text_completion_json,
                                             text_completion_sse, "cmpl-");
             }));
    svr.Get("/v1/models", guarded([this](const httplib::Request&, httplib::Response& res) {
              res.set_content(models_json(responder->models(), unix_seconds()), "application/json");
            }));
    // Liveness probes carry no key.
    svr.Get("/health", guarded(
                           [](const httplib::Request&, httplib::Response& res) {
                             res.set_content("{\"status\":\"ok\"}", "application/json");
                           },
                           /*needs_key=*/false));
  }
};

ModelServer::ModelServer(std::shared_ptr<Responder> responder, ServerOptions opts)
    : impl_(std::make_unique<Impl>(std::move(responder), std::move(opts))) {}

ModelServer::~ModelServer() {
  stop();
}

int ModelServer::bind() {
  if (impl_->port >= 0) return impl_->port;
  const auto& o = impl_->opts;
  int port = -1;
  if (o.port == 0) {
    port = impl_->svr.bind_to_any_port(o.host);
  } else if (impl_->svr.bind_to_port(o.host, o.port)) {
    port = o.port;
  }
  if (port < 0)
    throw Error("cannot listen on " + o.host + ":" + std::to_string(o.port),
                "is another server using the port? --port 0 picks a free one");
  impl_->port = port;
  return port;
}

void ModelServer::run() {
  bind();
  impl_->serving = true;
  if (!impl_->stop_requested) impl_->svr.listen_after_bind();
  impl_->serving = false;
}

void ModelServer::start() {
  bind();
  impl_->background = std::thread([this] { run(); });
}

void ModelServer::stop() {
  impl_->stop_requested = true;
  // run() may be between setting `serving` and httplib's listen loop; httplib's stop() ignores a server that
  // is not running yet, so wait for it to be running (or for run() to have given up).
  while (impl_->serving && !impl_->svr.is_running())
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->svr.stop();
  if (impl_->background.joinable() && impl_->background.get_id() != std::this_thread::get_id())
    impl_->background.join();
}

int ModelServer::port() const {
  return impl_->port;
}

std::string ModelServer::url() const {
  return "http://" + impl_->opts.host + ":" + std::to_string(impl_->port);
}

}  // namespace handoff
