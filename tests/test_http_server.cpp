// The serving layer under hostile and unlucky clients, on loopback (issue 16, items 3, 5, 6): slow sockets,
// chunked bodies past the limit, a full queue, keep-alive fairness, and the drain on stop(). The handlers
// here are stand-ins for model work (a sleep), so the timings are the server's own.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "cloud/http_server.h"
#include "test_support.h"

using namespace handoff;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A server whose /work handler sleeps `work_ms` on the worker lane; /health is on the I/O lane.
struct Fixture {
  std::unique_ptr<HttpServer> server;
  std::atomic<int> started{0};
  explicit Fixture(HttpServerOptions o, int work_ms = 200) {
    o.port = 0;
    server = std::make_unique<HttpServer>(o, HttpServer::Hooks{});
    server->route("POST", "/work", Lane::worker, [this, work_ms](const HttpRequest& r) {
      ++started;
      std::this_thread::sleep_for(std::chrono::milliseconds(work_ms));
      HttpResponse res;
      res.body = "worked " + std::to_string(r.body.size());
      return res;
    });
    server->route("GET", "/health", Lane::io, [](const HttpRequest&) {
      HttpResponse res;
      res.body = "ok";
      return res;
    });
    server->start();
  }
  httplib::Client client(double timeout_s = 10) const {
    httplib::Client c("127.0.0.1", server->port());
    c.set_read_timeout(static_cast<time_t>(timeout_s), 0);
    return c;
  }
};

// A raw TCP connection for what httplib will not send (half requests, drips).
struct RawSocket {
  int fd = -1;
  explicit RawSocket(int port) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) fd = -1;
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~RawSocket() {
    if (fd >= 0) close(fd);
  }
  bool send_text(const std::string& s) const {
    return ::send(fd, s.data(), s.size(), MSG_NOSIGNAL) == (ssize_t)s.size();
  }
  // Everything until the peer closes (closed = true) or 5 s pass.
  std::string read_all(bool* closed = nullptr) const {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) out.append(buf, static_cast<size_t>(n));
    if (closed) *closed = n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK);
    return out;
  }
  std::string read_some() const {
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
  }
};

}  // namespace

// Item 3: 20 sockets that drip their headers took every cpp-httplib thread, and /health timed out. Now they
// hold no thread: /health and real work answer at once, and the drips are closed at the header deadline
// (which counts the whole header, not each read).
TEST(HttpServerTest, DrippingClientsNeitherStallHealthNorWorkAndAreCutAtTheDeadline) {
  HttpServerOptions o;
  o.workers = 2;
  o.header_timeout_s = 1.5;
  Fixture f(o, 50);
  std::vector<std::unique_ptr<RawSocket>> drips;
  for (int i = 0; i < 20; ++i) {
    drips.push_back(std::make_unique<RawSocket>(f.server->port()));
    ASSERT_TRUE(drips.back()->send_text("POST /work HTTP/1.1\r\n"));
  }
  std::atomic<bool> dripping{true};
  std::thread dripper([&] {
    for (int k = 0; dripping && k < 30; ++k) {
      for (auto& d : drips) d->send_text("X-Drip: " + std::to_string(k) + "\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  });
  auto cli = f.client(5);
  double worst_health = 0;
  for (int i = 0; i < 5; ++i) {
    const auto t0 = Clock::now();
    auto h = cli.Get("/health");
    worst_health = std::max(worst_health, seconds_since(t0));
    ASSERT_TRUE(h);
    EXPECT_EQ(h->status, 200);
  }
  EXPECT_LT(worst_health, 0.5);
  auto w = cli.Post("/work", "abc", "text/plain");
  ASSERT_TRUE(w);
  EXPECT_EQ(w->body, "worked 3");
  // Every dripping socket is closed at the header deadline, not when it chooses to stop.
  const auto t0 = Clock::now();
  int closed = 0;
  for (auto& d : drips) {
    bool c = false;
    EXPECT_EQ(d->read_all(&c), "");
    closed += c;
  }
  dripping = false;
  dripper.join();
  EXPECT_LT(seconds_since(t0), 2.0);
  EXPECT_EQ(closed, 20);
  EXPECT_EQ(f.started, 1);  // no dripping request reached a handler
}

// A body slower than its deadline is cut; the limit counts decoded bytes of a chunked body.
TEST(HttpServerTest, SlowBodiesTimeOutAndChunkedBodiesAreCountedDecoded) {
  HttpServerOptions o;
  o.body_timeout_s = 1.0;
  o.max_body_bytes = 1000;
  Fixture f(o, 1);
  {
    RawSocket s(f.server->port());
    s.send_text("POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc");
    const auto t0 = Clock::now();
    bool closed = false;
    EXPECT_EQ(s.read_all(&closed), "");
    EXPECT_TRUE(closed);
    EXPECT_LT(seconds_since(t0), 2.0);
  }
  auto cli = f.client();
  auto chunked_ok = cli.Post(
      "/work",
      [](size_t, httplib::DataSink& sink) {
        const std::string part(300, 'a');
        for (int i = 0; i < 3; ++i) sink.write(part.data(), part.size());
        sink.done();
        return true;
      },
      "text/plain");
  ASSERT_TRUE(chunked_ok);
  EXPECT_EQ(chunked_ok->status, 200);
  EXPECT_EQ(chunked_ok->body, "worked 900");
  {
    // 50 chunks of 100 bytes: refused once the decoded body passes 1000 bytes, without reading the rest.
    RawSocket s(f.server->port());
    std::string req = "POST /work HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 50; ++i) req += "64\r\n" + std::string(100, 'b') + "\r\n";
    req += "0\r\n\r\n";
    s.send_text(req);
    const std::string reply = s.read_all();
    EXPECT_EQ(reply.rfind("HTTP/1.1 413", 0), 0u) << reply.substr(0, 200);
  }
  // Header too large, garbage, unknown path, wrong method.
  {
    RawSocket s(f.server->port());
    s.send_text("GET /health HTTP/1.1\r\nX-Big: " + std::string(20000, 'h') + "\r\n\r\n");
    EXPECT_EQ(s.read_all().rfind("HTTP/1.1 431", 0), 0u);
  }
  {
    RawSocket s(f.server->port());
    s.send_text("NOT HTTP AT ALL\r\n\r\n");
    EXPECT_EQ(s.read_all().rfind("HTTP/1.1 400", 0), 0u);
  }
  auto missing = cli.Get("/nowhere");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
  auto wrong = cli.Get("/work");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 405);
  EXPECT_EQ(f.started, 1);
}

// curl sends `Expect: 100-continue` before large bodies and waits for the interim reply.
TEST(HttpServerTest, ExpectContinueIsAnswered) {
  Fixture f(HttpServerOptions{}, 1);
  RawSocket s(f.server->port());
  s.send_text("POST /work HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  const std::string interim = s.read_some();
  EXPECT_EQ(interim.rfind("HTTP/1.1 100", 0), 0u) << interim;
  s.send_text("abcd");
  std::string reply = interim.substr(interim.find("\r\n\r\n") + 4);
  for (int i = 0; i < 5 && reply.find("worked 4") == std::string::npos; ++i) reply += s.read_some();
  EXPECT_NE(reply.find("200 OK"), std::string::npos) << reply;
  EXPECT_NE(reply.find("worked 4"), std::string::npos) << reply;
}

// A full queue answers 503 with Retry-After at once instead of holding the client; /health still answers.
TEST(HttpServerTest, AFullQueueIs503WithRetryAfterAndHealthStillAnswers) {
  HttpServerOptions o;
  o.workers = 1;
  o.max_queued = 2;
  Fixture f(o, 400);
  std::vector<int> status(8, 0);
  std::vector<std::string> retry(8);
  std::vector<std::thread> ts;
  for (int i = 0; i < 8; ++i)
    ts.emplace_back([&, i] {
      auto r = f.client().Post("/work", "x", "text/plain");
      if (r) {
        status[i] = r->status;
        retry[i] = r->get_header_value("Retry-After");
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const auto t0 = Clock::now();
  auto h = f.client().Get("/health");
  EXPECT_LT(seconds_since(t0), 0.3);
  ASSERT_TRUE(h);
  for (auto& t : ts) t.join();
  int ok = 0, busy = 0;
  for (int i = 0; i < 8; ++i) {
    if (status[i] == 200) ++ok;
    if (status[i] == 503) {
      ++busy;
      EXPECT_EQ(retry[i], "1");
    }
  }
  EXPECT_EQ(ok + busy, 8);
  EXPECT_EQ(ok, 3);  // one working, two queued
}

// Item 5: 16 keep-alive clients on 2 workers. Requests are served in arrival order, not by connection, so
// every client progresses: the busiest does at most twice the least busy one's requests.
TEST(HttpServerTest, KeepAliveClientsShareTheWorkersFairly) {
  HttpServerOptions o;
  o.workers = 2;
  Fixture f(o, 20);
  const int clients = 16;
  std::vector<int> done(clients, 0);
  std::atomic<bool> go{true};
  std::vector<std::thread> ts;
  for (int i = 0; i < clients; ++i)
    ts.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", f.server->port());
      c.set_keep_alive(true);
      c.set_read_timeout(10, 0);
      while (go) {
        auto r = c.Post("/work", "x", "text/plain");
        if (r && r->status == 200) ++done[i];
      }
    });
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  go = false;
  for (auto& t : ts) t.join();
  const int lo = *std::min_element(done.begin(), done.end());
  const int hi = *std::max_element(done.begin(), done.end());
  EXPECT_GE(lo, 3);
  EXPECT_LE(hi, 2 * lo + 1) << "min " << lo << " max " << hi;
}

// Item 6: stop() under load. The request being computed finishes with its answer; the queued ones get a
// 503 saying the server is shutting down — none is closed without a response — and stop() returns.
TEST(HttpServerTest, StopAnswersEveryAcceptedRequest) {
  HttpServerOptions o;
  o.workers = 1;
  Fixture f(o, 500);
  std::vector<int> status(5, 0);
  std::vector<std::string> body(5);
  std::vector<std::thread> ts;
  for (int i = 0; i < 5; ++i) {
    ts.emplace_back([&, i] {
      auto r = f.client().Post("/work", "x", "text/plain");
      if (r) {
        status[i] = r->status;
        body[i] = r->body;
      }
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const auto t0 = Clock::now();
  f.server->stop();
  const double took = seconds_since(t0);
  for (auto& t : ts) t.join();
  int ok = 0, shutting = 0;
  for (int i = 0; i < 5; ++i) {
    if (status[i] == 200 && body[i] == "worked 1") ++ok;
    if (status[i] == 503 && body[i].find("shutting down") != std::string::npos) ++shutting;
  }
  EXPECT_EQ(ok, 1);
  EXPECT_EQ(shutting, 4);
  EXPECT_EQ(f.started, 1);
  EXPECT_LT(took, 1.5);
  EXPECT_FALSE(f.client(1).Get("/health"));  // no longer listening
}

// More sockets than max_connections: the extra ones get 503 at once; the others keep working.
TEST(HttpServerTest, ConnectionsPastTheLimitAre503) {
  HttpServerOptions o;
  o.max_connections = 4;
  Fixture f(o, 1);
  std::vector<std::unique_ptr<RawSocket>> idle;
  for (int i = 0; i < 4; ++i) idle.push_back(std::make_unique<RawSocket>(f.server->port()));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_EQ(f.server->stats().connections, 4u);
  RawSocket extra(f.server->port());
  EXPECT_EQ(extra.read_all().rfind("HTTP/1.1 503", 0), 0u);
  idle.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto h = f.client().Get("/health");
  ASSERT_TRUE(h);
  EXPECT_EQ(h->status, 200);
}
