#include "cloud/http_server.h"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <thread>

#include "common/error.h"

namespace handoff {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

std::string HttpRequest::header(const std::string& name) const {
  for (const auto& [key, value] : headers)
    if (beast::iequals(key, name)) return value;
  return "";
}

namespace {

std::string str(beast::string_view v) {
  return std::string(v.data(), v.size());
}

std::chrono::milliseconds after(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

// A peer that went away or a socket we closed: nothing to answer.
bool connection_gone(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == net::error::eof || ec == net::error::operation_aborted ||
         ec == net::error::connection_reset || ec == net::error::broken_pipe ||
         ec == net::error::bad_descriptor;
}

}  // namespace

struct HttpServer::Impl {
  struct Route {
    Lane lane;
    Handler handler;
  };
  struct Session;
  using WorkGuard = net::executor_work_guard<net::io_context::executor_type>;
  struct Job {
    std::shared_ptr<Session> session;
    const Handler* handler;
    WorkGuard guard;  // run() does not return while a worker still owes a reply
  };

  HttpServerOptions opts;
  Hooks hooks;
  std::map<std::string, std::map<std::string, Route>> routes;  // path → method → route
  std::atomic<size_t> connections{0}, working{0};

  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  net::steady_timer accept_pause{ioc}, drain_timer{ioc};
  std::thread background;
  std::atomic<int> port{-1};
  std::atomic<bool> stop_requested{false};
  // I/O thread only:
  std::list<std::weak_ptr<Session>> sessions;
  Clock::time_point drain_deadline;

  // The worker lane; `draining` is written on the I/O thread under `mu`.
  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<Job> queue;
  bool draining = false, workers_stop = false;
  std::vector<std::thread> workers;

  Impl(HttpServerOptions o, Hooks h) : opts(std::move(o)), hooks(std::move(h)) {}

  HttpResponse error(int status, const std::string& message) const {
    if (hooks.on_error) {
      try {
        return hooks.on_error(status, message);
      } catch (...) {
      }
    }
    HttpResponse r;
    r.status = status;
    r.content_type = "text/plain";
    r.body = message + "\n";
    return r;
  }

  HttpResponse run_handler(const Handler& handler, const HttpRequest& request) const {
    try {
      return handler(request);
    } catch (const std::exception& e) {
      return error(500, std::string("internal error: ") + e.what());
    } catch (...) {
      return error(500, "internal error");
    }
  }

  enum class Enqueued { ok, full, draining };
  Enqueued enqueue(std::shared_ptr<Session> session, const Handler* handler) {
    std::lock_guard<std::mutex> lock(mu);
    if (draining) return Enqueued::draining;
    if (queue.size() >= opts.max_queued) return Enqueued::full;
    queue.push_back(Job{std::move(session), handler, net::make_work_guard(ioc)});
    cv.notify_one();
    return Enqueued::ok;
  }

  void worker_loop();
  void accept();
  void begin_drain();
  void check_drained();
};

// One connection. Lives on the I/O thread except while a worker computes its reply (then the I/O thread
// does not touch it, and the worker reads only `request`).
struct HttpServer::Impl::Session : std::enable_shared_from_this<Session> {
  Impl& server;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  std::optional<http::request_parser<http::string_body>> parser;
  std::optional<http::response<http::string_body>> reply;
  HttpRequest request;
  const Route* route = nullptr;
  Clock::time_point t0 = Clock::now();
  unsigned version = 11;
  bool keep_alive = false, reading_header = false;

  Session(Impl& s, tcp::socket socket)
      : server(s),
        stream(std::move(socket)),
        buffer(std::max<size_t>(64 << 10, s.opts.max_header_bytes * 2)) {
    ++server.connections;
    // Replies leave as soon as written: with Nagle, a reply split over two segments waits for the
    // client's delayed ACK (40 ms on Linux) on a kept-alive connection.
    beast::error_code ec;
    stream.socket().set_option(tcp::no_delay(true), ec);
  }
  ~Session() { --server.connections; }

  void close() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.close();
  }

  // Closing a socket with unread input makes the kernel send a reset, which can destroy the reply (a 413
  // or 400) before the client reads it. So: stop sending, discard what still arrives for at most a second
  // (and 1 MiB), then close — as nginx's lingering close.
  void linger_close(size_t discarded = 0) {
    if (discarded == 0) {
      beast::error_code ec;
      stream.socket().shutdown(tcp::socket::shutdown_send, ec);
      stream.expires_after(std::chrono::seconds(1));
    }
    auto scratch = std::make_shared<std::array<char, 16384>>();
    stream.async_read_some(net::buffer(*scratch),
                           [self = shared_from_this(), scratch, discarded](beast::error_code ec, size_t n) {
                             if (ec || discarded + n > (1u << 20)) return self->close();
                             self->linger_close(discarded + n);
                           });
  }

  void read_header(double timeout_s) {
    reading_header = true;
    parser.emplace();
    parser->header_limit(static_cast<std::uint32_t>(server.opts.max_header_bytes));
    parser->body_limit(server.opts.max_body_bytes);
    stream.expires_after(after(timeout_s));
    http::async_read_header(
        stream, buffer, *parser,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->on_header(ec); });
  }

  void on_header(beast::error_code ec) {
    reading_header = false;
    t0 = Clock::now();
    if (ec) return on_read_error(ec);
    const auto& h = parser->get();
    request = HttpRequest{};
    request.method = str(h.method_string());
    const std::string target = str(h.target());
    const size_t q = target.find('?');
    request.path = target.substr(0, q);
    if (q != std::string::npos) request.query = target.substr(q + 1);
    for (const auto& field : h) request.headers.emplace_back(str(field.name_string()), str(field.value()));
    version = h.version();
    keep_alive = h.keep_alive();
    const bool body_unread = !parser->is_done();  // an unread body must not be parsed as the next request

    if (server.draining) return fail(503, "the server is shutting down", body_unread);
    const auto path = server.routes.find(request.path);
    if (path == server.routes.end())
      return fail(404, "Unknown request URL: " + request.method + " " + request.path, body_unread);
    const auto method = path->second.find(request.method);
    if (method == path->second.end())
      return fail(405, "Method " + request.method + " is not allowed on " + request.path, body_unread);
    route = &method->second;
    if (server.hooks.on_header) {
      std::optional<HttpResponse> refusal;
      try {
        refusal = server.hooks.on_header(request);
      } catch (const std::exception& e) {
        refusal = server.error(500, std::string("internal error: ") + e.what());
      }
      if (refusal) return send(std::move(*refusal), body_unread);
    }
    const auto length = parser->content_length();
    if (length && *length > server.opts.max_body_bytes)
      return fail(413, "The request body is too large", body_unread);
    if (parser->is_done()) return dispatch();
    stream.expires_after(after(server.opts.body_timeout_s));
    if (beast::iequals(h[http::field::expect], "100-continue")) {
      auto cont = std::make_shared<http::response<http::empty_body>>(http::status::continue_, version);
      http::async_write(stream, *cont, [self = shared_from_this(), cont](beast::error_code ec, size_t) {
        if (ec) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream, buffer, *parser,
                     [self = shared_from_this()](beast::error_code ec, size_t) { self->on_body(ec); });
  }

  void on_body(beast::error_code ec) {
    if (ec == http::error::body_limit) return fail(413, "The request body is too large", true);
    if (ec) return on_read_error(ec);
    request.body = std::move(parser->get().body());
    dispatch();
  }

  void on_read_error(const beast::error_code& ec) {
    if (connection_gone(ec)) return close();
    // Past a deadline Beast has already closed the socket: there is no 408 to send.
    if (ec == beast::error::timeout) return close();
    // A Content-Length above the limit is refused by the parser with the header.
    if (ec == http::error::body_limit) return fail(413, "The request body is too large", true);
    if (ec == http::error::header_limit) return fail(431, "The request header is too large", true);
    fail(400, "Malformed HTTP request (" + ec.message() + ")", true);
  }

  void dispatch() {
    if (route->lane == Lane::io) return send(server.run_handler(route->handler, request), false);
    switch (server.enqueue(shared_from_this(), &route->handler)) {
      case Enqueued::ok:
        return;
      case Enqueued::draining:
        return fail(503, "the server is shutting down", false);
      case Enqueued::full: {
        HttpResponse r = server.error(503, "the server is busy (" + std::to_string(server.opts.max_queued) +
                                               " requests waiting); retry shortly");
        r.headers.emplace_back("Retry-After", "1");
        return send(std::move(r), false);
      }
    }
  }

  void fail(int status, const std::string& message, bool close_after) {
    send(server.error(status, message), close_after);
  }

  void send(HttpResponse r, bool close_after) {
    if (server.hooks.on_done)
      server.hooks.on_done(request, r.status,
                           std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    reply.emplace(static_cast<http::status>(r.status), version);
    reply->set(http::field::server, "handoff");
    reply->set(http::field::content_type, r.content_type);
    for (const auto& [key, value] : r.headers) reply->set(key, value);
    reply->body() = std::move(r.body);
    reply->keep_alive(keep_alive && !close_after && !server.draining);
    reply->prepare_payload();
    stream.expires_after(after(server.opts.write_timeout_s));
    http::async_write(stream, *reply, [self = shared_from_this(), close_after](beast::error_code ec, size_t) {
      const bool again = !ec && self->reply->keep_alive() && !self->server.draining;
      self->reply.reset();
      if (!ec && close_after) return self->linger_close();
      if (!again) return self->close();
      self->read_header(self->server.opts.keep_alive_timeout_s);
    });
  }
};

void HttpServer::Impl::worker_loop() {
  for (;;) {
    std::optional<Job> job;
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return workers_stop || !queue.empty(); });
      if (queue.empty()) return;
      job.emplace(std::move(queue.front()));
      queue.pop_front();
      ++working;
    }
    HttpResponse reply = run_handler(*job->handler, job->session->request);
    --working;
    net::post(ioc, [session = std::move(job->session), guard = std::move(job->guard),
                    reply = std::move(reply)]() mutable { session->send(std::move(reply), false); });
  }
}

void HttpServer::Impl::accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (ec == net::error::operation_aborted || !acceptor.is_open()) return;
    if (ec) {  // out of descriptors or similar: pause instead of spinning
      accept_pause.expires_after(std::chrono::milliseconds(100));
      accept_pause.async_wait([this](beast::error_code e) {
        if (!e && acceptor.is_open()) accept();
      });
      return;
    }
    auto session = std::make_shared<Session>(*this, std::move(socket));
    sessions.remove_if([](const std::weak_ptr<Session>& w) { return w.expired(); });
    if (connections > opts.max_connections) {
      HttpResponse r = error(503, "the server has too many open connections; retry shortly");
      r.headers.emplace_back("Retry-After", "1");
      session->send(std::move(r), true);
    } else {
      sessions.push_back(session);
      session->read_header(opts.header_timeout_s);
    }
    accept();
  });
}

// stop(): no new connections; idle ones closed; queued requests answered 503; requests being computed
// finish and are answered; then run() returns (or, past drain_timeout_s, everything is cut).
void HttpServer::Impl::begin_drain() {
  std::deque<Job> queued;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (draining) return;
    draining = true;
    queued.swap(queue);
  }
  beast::error_code ec;
  acceptor.close(ec);
  accept_pause.cancel();
  for (auto& w : sessions)
    if (auto s = w.lock(); s && s->reading_header) s->close();
  for (auto& job : queued) job.session->fail(503, "the server is shutting down", false);
  queued.clear();
  drain_deadline = Clock::now() + after(opts.drain_timeout_s);
  check_drained();
}

void HttpServer::Impl::check_drained() {
  if (connections == 0) return;  // nothing left: ioc.run() returns
  if (Clock::now() >= drain_deadline) {
    for (auto& w : sessions)
      if (auto s = w.lock()) s->close();
    ioc.stop();
    return;
  }
  drain_timer.expires_after(std::chrono::milliseconds(10));
  drain_timer.async_wait([this](beast::error_code e) {
    if (!e) check_drained();
  });
}

HttpServer::HttpServer(HttpServerOptions options, Hooks hooks)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(hooks))) {
  if (impl_->opts.workers < 1) throw Error("HttpServer needs at least one worker thread");
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::route(const std::string& method, const std::string& path, Lane lane, Handler handler) {
  impl_->routes[path][method] = Impl::Route{lane, std::move(handler)};
}

int HttpServer::bind() {
  if (impl_->port >= 0) return impl_->port;
  const auto& o = impl_->opts;
  const std::string where = o.host + ":" + std::to_string(o.port);
  beast::error_code ec;
  tcp::resolver resolver(impl_->ioc);
  const auto found = resolver.resolve(o.host, std::to_string(o.port), tcp::resolver::passive, ec);
  if (ec || found.empty()) throw Error("cannot listen on " + where + ": " + ec.message());
  const tcp::endpoint endpoint = found.begin()->endpoint();
  auto& a = impl_->acceptor;
  a.open(endpoint.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);  // not SO_REUSEPORT: one server per port
  if (!ec) a.bind(endpoint, ec);
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    a.close();
    throw Error("cannot listen on " + where + ": " + ec.message(),
                "is another server using the port? --port 0 picks a free one");
  }
  impl_->port = a.local_endpoint().port();
  return impl_->port;
}

void HttpServer::run() {
  bind();
  if (impl_->stop_requested) return;
  for (int i = 0; i < impl_->opts.workers; ++i) impl_->workers.emplace_back([this] { impl_->worker_loop(); });
  impl_->accept();
  impl_->ioc.run();
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->workers_stop = true;
  }
  impl_->cv.notify_all();
  for (auto& t : impl_->workers) t.join();
  impl_->workers.clear();
}

void HttpServer::start() {
  bind();
  impl_->background = std::thread([this] { run(); });
}

void HttpServer::stop() {
  impl_->stop_requested = true;
  net::post(impl_->ioc, [impl = impl_.get()] { impl->begin_drain(); });
  if (impl_->background.joinable() && impl_->background.get_id() != std::this_thread::get_id())
    impl_->background.join();
}

int HttpServer::port() const {
  return impl_->port;
}

HttpServerStats HttpServer::stats() const {
  HttpServerStats s;
  s.connections = impl_->connections;
  s.working = impl_->working;
  std::lock_guard<std::mutex> lock(impl_->mu);
  s.queued = impl_->queue.size();
  return s;
}

}  // namespace handoff
