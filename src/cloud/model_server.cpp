#include "cloud/model_server.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>

#include <c10/util/Exception.h>
#include <nlohmann/json.hpp>

#include "cloud/chat_page.h"
#include "cloud/server_metrics.h"
#include "common/error.h"

namespace handoff {

namespace {

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

HttpResponse json_response(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

HttpResponse error_response(const ApiError& e) {
  return json_response(e.status, e.to_json());
}

// Bodies for the statuses the HTTP layer decides itself (no route, body too large, malformed HTTP, busy).
ApiError error_for_status(int status, const std::string& message) {
  switch (status) {
    case 404:
      return ApiError(404, message, "", "unknown_url");
    case 405:
      return ApiError(405, message, "", "method_not_allowed");
    case 413:
      return ApiError(413, message, "", "request_too_large");
    case 503:
      return ApiError(503, message, "", "server_busy", "server_error");
    default:
      return ApiError(status, message, "", "", status >= 500 ? "server_error" : "invalid_request_error");
  }
}

// POST /tokenize as llama-server reads it: {"content": text} → {"tokens": [ids]} (the responder's
// tokenizer; special tokens such as <handoff> are read as themselves).
std::string tokenize_json(const Responder& responder, const std::string& body) {
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) throw ApiError(400, "the body must be a JSON object");
  const auto content = j.find("content");
  if (content == j.end() || !content->is_string())
    throw ApiError(400, "'content' must be a string", "content");
  return nlohmann::json{{"tokens", responder.tokenize(content->get<std::string>())}}.dump();
}

HttpServerOptions http_options(const ServerOptions& o) {
  HttpServerOptions h;
  h.host = o.host;
  h.port = o.port;
  h.max_body_bytes = o.max_body_bytes;
  h.header_timeout_s = o.header_timeout_s;
  h.keep_alive_timeout_s = o.keep_alive_timeout_s;
  h.body_timeout_s = o.body_timeout_s;
  h.workers = std::max(1, o.http_threads);
  h.max_queued = o.max_queued;
  h.max_connections = o.max_connections;
  h.drain_timeout_s = o.drain_timeout_s;
  return h;
}

}  // namespace

struct ModelServer::Impl {
  std::shared_ptr<Responder> responder;
  ServerOptions opts;
  std::unique_ptr<HttpServer> http;
  std::string id_base;
  std::atomic<uint64_t> id_counter{0};
  ServerMetrics metrics;

  Impl(std::shared_ptr<Responder> r, ServerOptions o)
      : responder(std::move(r)),
        opts(std::move(o)),
        metrics({"/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics", "/tokenize"},
                opts.call_rate_window) {
    metrics.set_call_rate_target(opts.call_rate_target);
    if (!responder) throw Error("ModelServer needs a responder");
    if (!opts.log) opts.log = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx",
                  static_cast<unsigned long long>(std::random_device{}()) << 32 ^ std::random_device{}());
    id_base = buf;
    http = std::make_unique<HttpServer>(http_options(opts), hooks());
    install();
  }

  std::string next_id(const char* prefix) { return prefix + id_base + std::to_string(++id_counter); }

  bool authorized(const HttpRequest& req) const {
    if (opts.api_key.empty()) return true;
    const std::string h = req.header("Authorization");
    const std::string scheme = "Bearer ";
    if (h.size() < scheme.size() ||
        (h.compare(0, scheme.size(), scheme) != 0 && h.compare(0, scheme.size(), "bearer ") != 0))
      return false;
    return same_secret(h.substr(scheme.size()), opts.api_key);
  }

  HttpServer::Hooks hooks() {
    HttpServer::Hooks h;
    // After the headers, before the body: what is refused here costs no memory. Chunked bodies are read
    // (the limit counts decoded bytes); compressed ones would inflate past any limit and are refused.
    h.on_header = [this](const HttpRequest& req) -> std::optional<HttpResponse> {
      const std::string encoding = req.header("Content-Encoding");
      if (!encoding.empty() && encoding != "identity")
        return error_response(ApiError(415, "compressed request bodies (Content-Encoding: " + encoding +
                                                ") are not accepted; send the JSON as is"));
      // The page is static and the browser cannot send a key with it: it asks for one on the API's 401.
      const bool open = req.path == "/health" || (req.path == "/" && req.method == "GET");
      if (!open && !authorized(req))
        return error_response(
            ApiError(401, "Incorrect or missing API key: send the header 'Authorization: Bearer <key>'", "",
                     "invalid_api_key"));
      return std::nullopt;
    };
    h.on_error = [](int status, const std::string& message) {
      return error_response(error_for_status(status, message));
    };
    // One line per request: no headers, no body, no key.
    h.on_done = [this](const HttpRequest& req, int status, double ms) {
      metrics.on_request(req.path, status, ms / 1000.0);
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.1f", ms);
      opts.log((req.method.empty() ? "-" : req.method) + " " + (req.path.empty() ? "-" : req.path) + " " +
               std::to_string(status) + " " + buf + " ms");
    };
    return h;
  }

  // Every failure of a handler becomes an OpenAI error object.
  HttpServer::Handler guarded(std::function<HttpResponse(const HttpRequest&)> handler) {
    return [handler](const HttpRequest& req) {
      try {
        return handler(req);
      } catch (const ApiError& e) {
        return error_response(e);
      } catch (const Error& e) {
        return error_response(
            ApiError(500, std::string("generation failed: ") + e.what(), "", "", "server_error"));
      } catch (const c10::Error& e) {
        return error_response(
            ApiError(500, std::string("generation failed (libtorch): ") + e.what_without_backtrace(), "", "",
                     "server_error"));
      } catch (const std::exception& e) {
        return error_response(
            ApiError(500, std::string("internal error: ") + e.what(), "", "", "server_error"));
      }
    };
  }

  template <class Request, class Parse, class ToJson, class ToSse>
  HttpResponse generation(const HttpRequest& req, Parse parse, ToJson to_json, ToSse to_sse,
                          const char* id_prefix) {
    const Request request = parse(req.body, opts.limits, responder->models());
    const GenerationResult result = responder->respond(request);
    metrics.on_generation(result);
    const std::string id = next_id(id_prefix);
    const int64_t created = unix_seconds();
    HttpResponse res;
    const std::string by = handoff_header(result);
    if (!by.empty()) res.headers.emplace_back("x-handoff-by", by);
    if (request.params.stream) {
      // The whole completion is generated first and then sent as events (no token-by-token streaming yet).
      res.headers.emplace_back("Cache-Control", "no-cache");
      res.content_type = "text/event-stream";
      res.body = to_sse(id, created, request.params.model, result, request.params.include_usage);
    } else {
      res.body = to_json(id, created, request.params.model, result);
    }
    return res;
  }

  void install() {
    http->route("POST", "/v1/chat/completions", Lane::worker, guarded([this](const HttpRequest& req) {
                  return generation<ChatCompletionRequest>(req, parse_chat_request, chat_completion_json,
                                                           chat_completion_sse, "chatcmpl-");
                }));
    http->route("POST", "/v1/completions", Lane::worker, guarded([this](const HttpRequest& req) {
                  return generation<CompletionRequest>(req, parse_completion_request, text_completion_json,
                                                       text_completion_sse, "cmpl-");
                }));
    // llama-server's tokenizer endpoint (so a collaborative endpoint in front of this server finds the
    // hand-off token's id the way it finds it on llama-server): {"content": text} → {"tokens": [ids]}.
    http->route("POST", "/tokenize", Lane::worker, guarded([this](const HttpRequest& req) {
                  return json_response(200, tokenize_json(*responder, req.body));
                }));
    http->route("GET", "/v1/models", Lane::io, guarded([this](const HttpRequest&) {
                  return json_response(200, models_json(responder->models(), unix_seconds()));
                }));
    // Prometheus text format; the I/O lane, so a scrape is answered while every worker is busy.
    http->route("GET", "/metrics", Lane::io, guarded([this](const HttpRequest&) {
                  const HttpServerStats st = http->stats();
                  metrics.set_queue(st.queued, st.working, st.connections);
                  HttpResponse res = json_response(200, metrics.render());
                  res.content_type = "text/plain; version=0.0.4; charset=utf-8";
                  return res;
                }));
    // The chat page: static, no key (it asks for one when the API answers 401), the I/O lane.
    http->route("GET", "/", Lane::io, [](const HttpRequest&) {
      HttpResponse res;
      res.content_type = "text/html; charset=utf-8";
      res.body = chat_page_html();
      // Its own script and styles only: no other origin, no framing.
      res.headers = {{"Content-Security-Policy",
                      "default-src 'self'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                      "img-src data:; frame-ancestors 'none'"},
                     {"X-Content-Type-Options", "nosniff"}};
      return res;
    });
    // Liveness: no key, the I/O lane — it answers while every worker is busy.
    http->route("GET", "/health", Lane::io,
                [](const HttpRequest&) { return json_response(200, "{\"status\":\"ok\"}"); });
  }
};

ModelServer::ModelServer(std::shared_ptr<Responder> responder, ServerOptions opts)
    : impl_(std::make_unique<Impl>(std::move(responder), std::move(opts))) {}

ModelServer::~ModelServer() {
  stop();
}

int ModelServer::bind() {
  return impl_->http->bind();
}

void ModelServer::run() {
  impl_->http->run();
}

void ModelServer::start() {
  impl_->http->start();
}

void ModelServer::stop() {
  impl_->http->stop();
}

int ModelServer::port() const {
  return impl_->http->port();
}

std::string ModelServer::url() const {
  return "http://" + impl_->opts.host + ":" + std::to_string(port());
}

HttpServerStats ModelServer::stats() const {
  return impl_->http->stats();
}

}  // namespace handoff
