// The cloud path over real loopback HTTP: our OpenAI-compatible server (tiny random model) and the client
// against it and against misbehaving test servers (dead port, stall, garbage, 5xx then 200).
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "cloud/cloud_client.h"
#include "cloud/local_model_responder.h"
#include "cloud/model_server.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "test_support.h"
#include "tokenizer/char_tokenizer.h"

using namespace handoff;
using handoff::testing::error_of;
using handoff::testing::free_port;
namespace fs = std::filesystem;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

const char* kModel = "tiny";
const char* kKeyVar = "HANDOFF_TEST_CLOUD_KEY";
const char* kKey = "sk-test-7f3a9c1e5b";

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// A tiny random checkpoint, written once per test process (ctest runs each test in its own process).
const std::string& checkpoint_dir() {
  static const std::string dir = [] {
    const auto d = fs::temp_directory_path() / ("handoff_cloud_" + std::to_string(getpid()));
    fs::remove_all(d);
    ModelConfig c;
    c.vocab_size = 100;
    c.hidden_size = 32;
    c.intermediate_size = 64;
    c.num_hidden_layers = 1;
    c.num_attention_heads = 4;
    c.num_key_value_heads = 2;
    c.max_position_embeddings = 128;
    torch::manual_seed(7);
    CausalLM model(c);
    save_checkpoint(d.string(), model, CharTokenizer());
    std::atexit(
        [] { fs::remove_all(fs::temp_directory_path() / ("handoff_cloud_" + std::to_string(getpid()))); });
    return d.string();
  }();
  return dir;
}

// Collects the server's request log lines (the sink the API key must never reach).
struct LogSink {
  std::mutex mu;
  std::vector<std::string> lines;
  std::function<void(const std::string&)> fn() {
    return [this](const std::string& l) {
      std::lock_guard<std::mutex> lock(mu);
      lines.push_back(l);
    };
  }
  std::string all() {
    std::lock_guard<std::mutex> lock(mu);
    std::string s;
    for (const auto& l : lines) s += l + "\n";
    return s;
  }
};

// Our server with the tiny model on an ephemeral port.
struct ServerUnderTest {
  LogSink log;
  std::unique_ptr<ModelServer> server;
  explicit ServerUnderTest(const std::string& api_key = "", size_t max_body = 1 << 20) {
    ServerOptions o;
    o.port = 0;
    o.api_key = api_key;
    o.max_body_bytes = max_body;
    o.limits.max_tokens_limit = 256;
    o.log = log.fn();
    auto responder = std::make_shared<LocalModelResponder>(load_checkpoint(checkpoint_dir()), kModel);
    server = std::make_unique<ModelServer>(responder, o);
    server->start();
  }
  std::string base() const { return server->url() + "/v1"; }
  CloudClientOptions client_options(const std::string& key_env = "") const {
    CloudClientOptions c;
    c.base_url = base();
    c.model = kModel;
    c.api_key_env = key_env;
    c.read_timeout_s = 30;
    c.backoff_initial_s = 0.01;
    return c;
  }
  httplib::Result post(const std::string& path, const std::string& body, const std::string& key = "") const {
    httplib::Client cli(server->url());
    httplib::Headers h;
    if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
    return cli.Post(path, h, body, "application/json");
  }
  httplib::Result get(const std::string& path, const std::string& key = "") const {
    httplib::Client cli(server->url());
    httplib::Headers h;
    if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
    return cli.Get(path, h);
  }
};

// A bare httplib server for client tests: the handler decides everything.
struct FakeApi {
  httplib::Server svr;
  std::thread thread;
  int port = -1;
  std::atomic<int> calls{0};
  explicit FakeApi(std::function<void(const httplib::Request&, httplib::Response&, int call)> handler) {
    svr.Post("/v1/chat/completions", [this, handler](const httplib::Request& req, httplib::Response& res) {
      handler(req, res, ++calls);
    });
    port = svr.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { svr.listen_after_bind(); });
    while (!svr.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~FakeApi() {
    svr.stop();
    thread.join();
  }
  CloudClientOptions client_options() const {
    CloudClientOptions c;
    c.base_url = "http://127.0.0.1:" + std::to_string(port);  // no prefix → /v1
    c.model = "fake";
    c.backoff_initial_s = 0.01;
    c.read_timeout_s = 5;
    return c;
  }
};

std::string chat_body(const std::string& content, int max_tokens, double temperature = 0.0) {
  return json({{"model", kModel},
               {"messages", {{{"role", "user"}, {"content", content}}}},
               {"max_tokens", max_tokens},
               {"temperature", temperature}})
      .dump();
}

const char* kValidCompletion =
    R"({"id":"x","object":"chat.completion","created":1,"model":"fake","choices":[{"index":0,)"
    R"("message":{"role":"assistant","content":"Answer: 42"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}})";

}  // namespace

// ---------------------------------------------------------------- typed conversion

TEST(CloudTypesTest, ParsesAndDefaultsAChatRequest) {
  RequestLimits limits;
  auto r = parse_chat_request(
      R"({"model":"m","messages":[{"role":"system","content":"be brief"},)"
      R"({"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"stop":"x","seed":3})",
      limits, {"m"});
  EXPECT_EQ(r.params.model, "m");
  EXPECT_EQ(r.params.max_tokens, 128);
  EXPECT_EQ(r.params.temperature, 1.0);
  EXPECT_EQ(r.params.n, 1);
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_EQ(r.params.stop, std::vector<std::string>{"x"});
  EXPECT_EQ(r.params.seed.value_or(0), 3u);
  EXPECT_FALSE(r.params.stream);
  // null means "default", as OpenAI SDKs send it.
  r = parse_chat_request(
      R"({"model":"m","messages":[{"role":"user","content":"q"}],"temperature":null,"stop":null})", limits,
      {"m"});
  EXPECT_EQ(r.params.temperature, 1.0);
  EXPECT_TRUE(r.params.stop.empty());
}

TEST(CloudTypesTest, ErrorBodyIsOpenAIShaped) {
  const ApiError e(404, "The model 'x' does not exist", "model", "model_not_found");
  const auto j = json::parse(e.to_json());
  EXPECT_EQ(j["error"]["message"], "The model 'x' does not exist");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "model");
  EXPECT_EQ(j["error"]["code"], "model_not_found");
  const auto k = json::parse(ApiError(400, "bad").to_json());
  EXPECT_TRUE(k["error"]["param"].is_null());
  EXPECT_TRUE(k["error"]["code"].is_null());
}

TEST(CloudTypesTest, ClientSideParsingRejectsWhatIsNotAChatCompletion) {
  EXPECT_EQ(parse_chat_response(kValidCompletion).content, "Answer: 42");
  EXPECT_EQ(parse_chat_response(kValidCompletion).usage.total_tokens, 8);
  EXPECT_NE(error_of([] { parse_chat_response("<html>bad gateway</html>"); }).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_chat_response(R"({"choices":[{"message":{"content":"hi")");
            }).find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_chat_response(R"({"choices":[]})"); }).find("no choices"), std::string::npos);
  EXPECT_NE(error_of([] {
              parse_chat_response(R"({"choices":[{"message":{"content":7}}]})");
            }).find("not a string"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_chat_response(R"({"error":{"message":"overloaded"}})"); }).find("overloaded"),
            std::string::npos);
  EXPECT_NE(error_of([] { parse_chat_response(""); }).find("empty body"), std::string::npos);
}

// ---------------------------------------------------------------- server + client round trips

TEST(ServerTest, ChatRoundTripThroughClientCountsUsageAndIsDeterministicWhenGreedy) {
  ServerUnderTest s;
  CloudClient client(s.client_options());
  EXPECT_TRUE(client.healthy());
  EXPECT_EQ(client.models(), std::vector<std::string>{kModel});
  ChatOptions o;
  o.temperature = 0.0;
  o.max_tokens = 12;
  const std::string query = "3+4=";
  auto a = client.chat({{"user", query}}, o);
  auto b = client.chat({{"user", query}}, o);
  EXPECT_EQ(a.content, b.content);
  EXPECT_EQ(a.attempts, 1);
  EXPECT_GT(a.latency_ms, 0.0);
  EXPECT_EQ(a.model, kModel);
  // Template: <bos> + query + '\n'.
  EXPECT_EQ(a.usage.prompt_tokens, static_cast<int64_t>(query.size()) + 2);
  EXPECT_EQ(a.usage.total_tokens, a.usage.prompt_tokens + a.usage.completion_tokens);
  ASSERT_EQ(a.finish_reason, "length") << "the tiny model emitted EOS early: '" << a.content << "'";
  EXPECT_EQ(a.usage.completion_tokens, 12);
  EXPECT_LE(a.content.size(), 12u);  // special tokens are dropped from the text
}

TEST(ServerTest, StopStringsTruncateAndSeedsReproduceSamples) {
  ServerUnderTest s;
  CloudClient client(s.client_options());
  ChatOptions greedy;
  greedy.temperature = 0.0;
  greedy.max_tokens = 20;
  const auto full = client.chat({{"user", "abc"}}, greedy).content;
  ASSERT_GE(full.size(), 6u);
  ChatOptions stop = greedy;
  stop.stop = {full.substr(4, 2)};
  const auto cut = client.chat({{"user", "abc"}}, stop);
  EXPECT_EQ(cut.content, full.substr(0, full.find(full.substr(4, 2))));
  EXPECT_EQ(cut.finish_reason, "stop");

  ChatOptions sampled;
  sampled.temperature = 1.0;
  sampled.max_tokens = 16;
  sampled.seed = 1234;
  EXPECT_EQ(client.chat({{"user", "abc"}}, sampled).content, client.chat({{"user", "abc"}}, sampled).content);

  // n choices in one request, one decode.
  auto res = s.post("/v1/chat/completions", json({{"model", kModel},
                                                  {"messages", {{{"role", "user"}, {"content", "x"}}}},
                                                  {"n", 3},
                                                  {"max_tokens", 5},
                                                  {"seed", 9}})
                                                .dump());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const auto j = json::parse(res->body);
  ASSERT_EQ(j["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(j["choices"][i]["index"], i);
  EXPECT_EQ(j["usage"]["prompt_tokens"], 3);
}

TEST(ServerTest, TextCompletionRoundTrip) {
  ServerUnderTest s;
  auto res =
      s.post("/v1/completions",
             json({{"model", kModel}, {"prompt", "hello"}, {"max_tokens", 7}, {"temperature", 0}}).dump());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  const auto j = json::parse(res->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], kModel);
  EXPECT_TRUE(j["id"].get<std::string>().rfind("cmpl-", 0) == 0);
  EXPECT_TRUE(j["choices"][0]["text"].is_string());
  EXPECT_EQ(j["usage"]["prompt_tokens"], 6);  // <bos> + "hello", no chat template
  EXPECT_EQ(j["usage"]["total_tokens"],
            j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());
  auto health = s.get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST(ServerTest, EachInvalidRequestGetsTheRightStatusAndAnOpenAIErrorBody) {
  ServerUnderTest s("", /*max_body=*/64 * 1024);
  struct Case {
    std::string path, body;
    int status;
    std::string param, code;
  };
  const std::string user = R"("messages":[{"role":"user","content":"hi"}])";
  const std::string m = R"("model":"tiny",)";
  const std::vector<Case> cases = {
      {"/v1/chat/completions", "{not json", 400, "", ""},
      {"/v1/chat/completions", "[1,2]", 400, "", ""},
      {"/v1/chat/completions", "{" + user + "}", 400, "model", ""},
      {"/v1/chat/completions", R"({"model":7,)" + user + "}", 400, "model", ""},
      {"/v1/chat/completions", R"({"model":"gpt-4o",)" + user + "}", 404, "model", "model_not_found"},
      {"/v1/chat/completions", "{" + m + R"("x":1})", 400, "messages", ""},
      {"/v1/chat/completions", "{" + m + R"("messages":[]})", 400, "messages", ""},
      {"/v1/chat/completions", "{" + m + R"("messages":"hi"})", 400, "messages", ""},
      {"/v1/chat/completions", "{" + m + R"("messages":[{"role":"wizard","content":"hi"}]})", 400,
       "messages[0].role", ""},
      {"/v1/chat/completions", "{" + m + R"("messages":[{"role":"user","content":5}]})", 400,
       "messages[0].content", ""},
      {"/v1/chat/completions", "{" + m + R"("messages":[{"role":"user"}]})", 400, "messages[0].content", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"max_tokens":0})", 400, "max_tokens", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"max_tokens":257})", 400, "max_tokens", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"max_tokens":"5"})", 400, "max_tokens", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"max_tokens":2.5})", 400, "max_tokens", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"n":0})", 400, "n", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"n":17})", 400, "n", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"temperature":-0.1})", 400, "temperature", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"temperature":2.5})", 400, "temperature", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"temperature":"hot"})", 400, "temperature", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"temperature":1e309})", 400, "", ""},  // beyond a double
      {"/v1/chat/completions", "{" + m + user + R"(,"top_p":0})", 400, "top_p", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"top_p":1.5})", 400, "top_p", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"stop":5})", 400, "stop", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"stop":["a","b","c","d","e"]})", 400, "stop", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"stream":"yes"})", 400, "stream", ""},
      {"/v1/chat/completions", "{" + m + user + R"(,"seed":"x"})", 400, "seed", ""},
      {"/v1/chat/completions",
       "{" + m + R"("messages":[{"role":"user","content":")" + std::string(200, 'a') + R"("}]})", 400,
       "messages", "context_length_exceeded"},
      {"/v1/chat/completions", "{" + m + R"("messages":[{"role":"user","content":"caf\u00e9"}]})", 400,
       "messages", ""},
      {"/v1/chat/completions", "{" + m + R"("messages":[{"role":"system","content":"no user turn"}]})", 400,
       "messages", ""},
      {"/v1/completions", "{" + m + R"("max_tokens":3})", 400, "prompt", ""},
      {"/v1/completions", "{" + m + R"("prompt":5})", 400, "prompt", ""},
      {"/v1/completions", "{" + m + R"("prompt":")" + std::string(130, 'b') + R"("})", 400, "prompt",
       "context_length_exceeded"},
      {"/v1/nothing", "{}", 404, "", "unknown_url"},
      {"/v1/chat/completions", std::string(100 * 1024, ' '), 413, "", "request_too_large"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.path + " " + c.body.substr(0, 120));
    auto res = s.post(c.path, c.body);
    ASSERT_TRUE(res) << httplib::to_string(res.error());
    EXPECT_EQ(res->status, c.status) << res->body;
    json j;
    ASSERT_NO_THROW(j = json::parse(res->body)) << res->body;
    ASSERT_TRUE(j.contains("error") && j["error"].is_object()) << res->body;
    const auto& e = j["error"];
    EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty());
    EXPECT_EQ(e["type"], "invalid_request_error");
    ASSERT_TRUE(e.contains("param") && e.contains("code"));
    if (c.param.empty()) {
      EXPECT_TRUE(e["param"].is_null()) << res->body;
    } else {
      EXPECT_EQ(e["param"], c.param);
    }
    if (!c.code.empty()) {
      EXPECT_EQ(e["code"], c.code);
    }
  }
  // The server still answers after all that.
  auto ok = s.post("/v1/chat/completions", chat_body("hi", 3));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
}

// Issue 16: the body limit held only with a Content-Length. Chunked bodies are now read with the limit on
// their decoded size (tests/test_http_server.cpp sends one past it); compressed bodies are refused after the
// headers, before anything is read or inflated; so is a request without the key.
TEST(ServerTest, ChunkedBodiesAreReadCompressedAndUnauthenticatedOnesRefusedBeforeTheyAreRead) {
  ServerUnderTest s("", /*max_body=*/64 * 1024);
  const std::string body = chat_body("hi", 4);
  httplib::Client cli(s.server->url());
  auto chunked = cli.Post(
      "/v1/chat/completions",
      [&](size_t, httplib::DataSink& sink) {
        sink.write(body.data(), body.size());
        sink.done();
        return true;
      },
      "application/json");
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 200) << chunked->body;
  auto gzipped = cli.Post("/v1/chat/completions", {{"Content-Encoding", "gzip"}}, body, "application/json");
  ASSERT_TRUE(gzipped);
  EXPECT_EQ(gzipped->status, 415);
  EXPECT_EQ(json::parse(gzipped->body)["error"]["type"], "invalid_request_error");
  // A plain request still works on the same server afterwards.
  auto ok = cli.Post("/v1/chat/completions", body, "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200);

  ServerUnderTest keyed("sk-test", 64 * 1024);
  auto no_key = keyed.post("/v1/chat/completions", std::string(60 * 1024, ' '));
  ASSERT_TRUE(no_key);
  EXPECT_EQ(no_key->status, 401);
}

// A second server on a port that is already served is an error, not a silent share of the traffic.
TEST(ServerTest, APortAlreadyServedIsAnError) {
  ServerUnderTest first;
  ServerOptions o;
  o.port = first.server->port();
  o.log = [](const std::string&) {};
  auto responder = std::make_shared<LocalModelResponder>(load_checkpoint(checkpoint_dir()), kModel);
  ModelServer second(responder, o);
  const std::string msg = error_of([&] { second.bind(); });
  EXPECT_NE(msg.find("cannot listen on"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(o.port)), std::string::npos) << msg;
}

TEST(ServerTest, ApiKeyIsRequiredAndNeverLogged) {
  ServerUnderTest s(kKey);
  for (const std::string& key : {std::string(""), std::string("sk-wrong")}) {
    auto res = s.post("/v1/chat/completions", chat_body("hi", 3), key);
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 401);
    EXPECT_EQ(json::parse(res->body)["error"]["code"], "invalid_api_key");
    EXPECT_EQ(res->body.find(kKey), std::string::npos);
    auto models = s.get("/v1/models", key);
    ASSERT_TRUE(models);
    EXPECT_EQ(models->status, 401);
  }
  auto res = s.post("/v1/chat/completions", chat_body("hi", 3), kKey);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200) << res->body;
  auto health = s.get("/health");  // liveness needs no key
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);

  // Through the client, the key comes from the environment variable.
  setenv(kKeyVar, kKey, 1);
  CloudClient good(s.client_options(kKeyVar));
  EXPECT_EQ(good.chat({{"user", "hi"}}, ChatOptions{3, 0.0, {}, {}, {}, {}, false}).attempts, 1);
  setenv(kKeyVar, "sk-not-it", 1);
  CloudClient bad(s.client_options(kKeyVar));
  const auto err = error_of([&] { bad.chat({{"user", "hi"}}); });
  EXPECT_NE(err.find("401"), std::string::npos) << err;
  EXPECT_NE(err.find(kKeyVar), std::string::npos) << err;
  EXPECT_EQ(err.find("sk-not-it"), std::string::npos) << err;
  unsetenv(kKeyVar);
  EXPECT_NE(error_of([&] { CloudClient c(s.client_options(kKeyVar)); }).find("not set"), std::string::npos);

  const std::string log = s.log.all();
  EXPECT_NE(log.find("POST /v1/chat/completions 401"), std::string::npos) << log;
  EXPECT_NE(log.find("POST /v1/chat/completions 200"), std::string::npos) << log;
  EXPECT_EQ(log.find(kKey), std::string::npos) << log;
  EXPECT_EQ(log.find("sk-wrong"), std::string::npos) << log;
  EXPECT_EQ(log.find("Bearer"), std::string::npos) << log;
}

TEST(ServerTest, SixteenConcurrentClientsGetTheirOwnAnswers) {
  ServerUnderTest s;
  CloudClient client(s.client_options());
  ChatOptions o;
  o.temperature = 0.0;
  o.max_tokens = 24;
  std::vector<std::string> expected(16);
  for (int i = 0; i < 16; ++i) expected[i] = client.chat({{"user", "q" + std::to_string(i)}}, o).content;
  std::vector<std::string> got(16);
  std::vector<std::string> errors(16);
  std::vector<std::thread> threads;
  for (int i = 0; i < 16; ++i)
    threads.emplace_back([&, i] {
      try {
        got[i] = client.chat({{"user", "q" + std::to_string(i)}}, o).content;
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(errors[i], "") << i;
    EXPECT_EQ(got[i], expected[i]) << i;
  }
}

TEST(ServerTest, StreamingIsWellFormedServerSentEventsEndingInDone) {
  ServerUnderTest s;
  auto plain = s.post("/v1/chat/completions", chat_body("stream me", 10));
  ASSERT_TRUE(plain);
  const std::string expected = json::parse(plain->body)["choices"][0]["message"]["content"];
  auto body = json::parse(chat_body("stream me", 10));
  body["stream"] = true;
  auto res = s.post("/v1/chat/completions", body.dump());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const std::string& sse = res->body;
  ASSERT_GE(sse.size(), 14u);
  EXPECT_EQ(sse.substr(sse.size() - 14), "data: [DONE]\n\n");
  std::string content, finish;
  size_t pos = 0, events = 0;
  while (pos < sse.size()) {
    const size_t end = sse.find("\n\n", pos);
    ASSERT_NE(end, std::string::npos) << "event without a blank line";
    const std::string event = sse.substr(pos, end - pos);
    pos = end + 2;
    ASSERT_EQ(event.rfind("data: ", 0), 0u) << event;
    const std::string data = event.substr(6);
    if (data == "[DONE]") {
      EXPECT_EQ(pos, sse.size());
      break;
    }
    ++events;
    const auto chunk = json::parse(data);
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    const auto& choice = chunk["choices"][0];
    if (choice["delta"].contains("content")) content += choice["delta"]["content"].get<std::string>();
    if (choice["finish_reason"].is_string()) finish = choice["finish_reason"];
  }
  EXPECT_GE(events, 2u);
  EXPECT_EQ(content, expected);
  EXPECT_TRUE(finish == "stop" || finish == "length") << finish;
}

// A responder that takes its time, to check that stop() lets a request in flight finish.
struct SlowResponder : Responder {
  std::vector<std::string> models() const override { return {"slow"}; }
  GenerationResult respond(const ChatCompletionRequest&) override { return answer(); }
  GenerationResult respond(const CompletionRequest&) override { return answer(); }
  GenerationResult answer() {
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    GenerationResult r;
    r.prompt_tokens = 1;
    Choice c;
    c.text = "done";
    c.finish_reason = "stop";
    c.completion_tokens = 1;
    r.choices.push_back(c);
    return r;
  }
};

TEST(ServerTest, StopLetsTheRequestInFlightFinish) {
  LogSink log;
  ServerOptions o;
  o.port = 0;
  o.log = log.fn();
  ModelServer server(std::make_shared<SlowResponder>(), o);
  server.start();
  CloudClientOptions co;
  co.base_url = server.url();
  co.model = "slow";
  co.max_retries = 0;
  CloudClient client(co);
  std::string answer, error;
  std::thread t([&] {
    try {
      answer = client.chat({{"user", "x"}}).content;
    } catch (const std::exception& e) {
      error = e.what();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  const auto t0 = Clock::now();
  server.stop();
  t.join();
  EXPECT_EQ(error, "");
  EXPECT_EQ(answer, "done");
  EXPECT_LT(seconds_since(t0), 3.0);
  EXPECT_FALSE(client.healthy());  // no longer listening
}

// ---------------------------------------------------------------- client against misbehaving servers

TEST(ClientTest, NothingListeningFailsAfterTheConfiguredRetries) {
  CloudClientOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(free_port());
  o.model = "x";
  o.max_retries = 2;
  o.backoff_initial_s = 0.02;
  o.connect_timeout_s = 1;
  o.read_timeout_s = 1;
  CloudClient client(o);
  const auto t0 = Clock::now();
  const auto err = error_of([&] { client.chat({{"user", "hi"}}); });
  EXPECT_NE(err.find("after 3 attempts"), std::string::npos) << err;
  EXPECT_LT(seconds_since(t0), 2.0);
  EXPECT_FALSE(client.healthy());
}

TEST(ClientTest, AStalledServerTimesOutInBoundedTime) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  FakeApi api([&](const httplib::Request&, httplib::Response& res, int) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
    res.set_content(kValidCompletion, "application/json");
  });
  auto o = api.client_options();
  o.read_timeout_s = 0.3;
  o.max_retries = 1;
  CloudClient client(o);
  const auto t0 = Clock::now();
  const auto err = error_of([&] { client.chat({{"user", "hi"}}); });
  const double took = seconds_since(t0);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
  EXPECT_NE(err.find("after 2 attempts"), std::string::npos) << err;
  EXPECT_GE(took, 0.5);
  EXPECT_LT(took, 2.5);
}

// Issue 16: a cloud that drips one byte every 100 ms never trips a per-read timeout; the total deadline ends
// the call, retries included.
TEST(ClientTest, ADrippingServerIsCutOffAtTheTotalDeadline) {
  std::atomic<bool> stop{false};
  FakeApi api([&](const httplib::Request&, httplib::Response& res, int) {
    res.set_chunked_content_provider("application/json", [&](size_t, httplib::DataSink& sink) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      return !stop && sink.write(" ", 1);
    });
  });
  auto o = api.client_options();
  o.read_timeout_s = 1.0;
  o.max_retries = 2;
  o.deadline_s = 0.8;
  CloudClient client(o);
  const auto t0 = Clock::now();
  const auto err = error_of([&] { client.chat({{"user", "hi"}}); });
  const double took = seconds_since(t0);
  stop = true;
  EXPECT_NE(err.find("deadline"), std::string::npos) << err;
  EXPECT_GE(took, 0.75);
  EXPECT_LT(took, 1.5);
  EXPECT_EQ(api.calls, 1);  // the deadline is the whole call's: no retry after it
}

TEST(ClientTest, AReplyPastTheSizeCapIsAnErrorNotHeldInMemory) {
  FakeApi api([&](const httplib::Request&, httplib::Response& res, int) {
    res.set_content(std::string(8 << 20, ' '), "application/json");
  });
  auto o = api.client_options();
  o.max_reply_bytes = 1 << 20;
  const auto err = error_of([&] { CloudClient(o).chat({{"user", "hi"}}); });
  EXPECT_NE(err.find("larger than 1048576 bytes"), std::string::npos) << err;
  EXPECT_EQ(api.calls, 1);
}

TEST(ClientTest, CancelEndsACallInFlightAndFailsLaterOnes) {
  std::mutex mu;
  std::condition_variable cv;
  bool release = false;
  FakeApi api([&](const httplib::Request&, httplib::Response& res, int) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait_for(lock, std::chrono::seconds(10), [&] { return release; });
    res.set_content(kValidCompletion, "application/json");
  });
  auto o = api.client_options();
  o.read_timeout_s = 30;
  o.deadline_s = 60;
  CloudClient client(o);
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    client.cancel();
  });
  const auto t0 = Clock::now();
  const auto err = error_of([&] { client.chat({{"user", "hi"}}); });
  const double took = seconds_since(t0);
  canceller.join();
  EXPECT_NE(err.find("cancelled"), std::string::npos) << err;
  EXPECT_LT(took, 1.0);
  const auto t1 = Clock::now();
  EXPECT_NE(error_of([&] { client.chat({{"user", "hi"}}); }).find("cancelled"), std::string::npos);
  EXPECT_LT(seconds_since(t1), 0.1);
  {
    std::lock_guard<std::mutex> lock(mu);
    release = true;
  }
  cv.notify_all();
}

TEST(ClientTest, GarbageAndTruncatedBodiesAreClearErrorsNotRetried) {
  for (const std::string& body :
       {std::string("this is not json"), std::string(R"({"choices":[{"message":{"cont)"),
        std::string(R"({"object":"list"})"), std::string("")}) {
    FakeApi api([&](const httplib::Request&, httplib::Response& res, int) {
      res.set_content(body, "application/json");
    });
    CloudClient client(api.client_options());
    const auto err = error_of([&] { client.chat({{"user", "hi"}}); });
    EXPECT_NE(err.find("chat completion response"), std::string::npos) << err;
    EXPECT_EQ(api.calls, 1);
  }
}

TEST(ClientTest, RetriesServerErrorsAndRateLimitsButNotOtherClientErrors) {
  FakeApi flaky([](const httplib::Request&, httplib::Response& res, int call) {
    if (call == 1) {
      res.status = 500;
      res.set_content(R"({"error":{"message":"boom"}})", "application/json");
    } else if (call == 2) {
      res.status = 429;
      res.set_content("slow down", "text/plain");
    } else {
      res.set_content(kValidCompletion, "application/json");
    }
  });
  CloudClient client(flaky.client_options());
  const auto r = client.chat({{"user", "hi"}});
  EXPECT_EQ(r.content, "Answer: 42");
  EXPECT_EQ(r.finish_reason, "stop");
  EXPECT_EQ(r.usage.total_tokens, 8);
  EXPECT_EQ(r.attempts, 3);
  EXPECT_EQ(flaky.calls, 3);

  FakeApi always500([](const httplib::Request&, httplib::Response& res, int) {
    res.status = 503;
    res.set_content(R"({"error":{"message":"down for maintenance"}})", "application/json");
  });
  auto o = always500.client_options();
  o.max_retries = 2;
  const auto err = error_of([&] { CloudClient(o).chat({{"user", "hi"}}); });
  EXPECT_NE(err.find("after 3 attempts"), std::string::npos) << err;
  EXPECT_NE(err.find("down for maintenance"), std::string::npos) << err;
  EXPECT_EQ(always500.calls, 3);

  FakeApi bad_request([](const httplib::Request&, httplib::Response& res, int) {
    res.status = 400;
    res.set_content(R"({"error":{"message":"'temperature' must be between 0 and 2"}})", "application/json");
  });
  const auto err400 = error_of([&] { CloudClient(bad_request.client_options()).chat({{"user", "hi"}}); });
  EXPECT_NE(err400.find("temperature"), std::string::npos) << err400;
  EXPECT_EQ(bad_request.calls, 1);
}

TEST(ClientTest, SendsTheOpenAIRequestShapeAndTheKeyOnlyInTheHeader) {
  std::string seen_body, seen_auth, seen_path;
  FakeApi api([&](const httplib::Request& req, httplib::Response& res, int) {
    seen_body = req.body;
    seen_auth = req.get_header_value("Authorization");
    seen_path = req.path;
    res.set_content(kValidCompletion, "application/json");
  });
  setenv(kKeyVar, kKey, 1);
  auto o = api.client_options();
  o.api_key_env = kKeyVar;
  ChatOptions opts;
  opts.max_tokens = 5;
  opts.stop = {"\n"};
  CloudClient(o).chat({{"system", "s"}, {"user", "u"}}, opts);
  unsetenv(kKeyVar);
  EXPECT_EQ(seen_path, "/v1/chat/completions");
  EXPECT_EQ(seen_auth, std::string("Bearer ") + kKey);
  EXPECT_EQ(seen_body.find(kKey), std::string::npos);
  const auto j = json::parse(seen_body);
  EXPECT_EQ(j["model"], "fake");
  EXPECT_EQ(j["messages"].size(), 2u);
  EXPECT_EQ(j["max_tokens"], 5);
  EXPECT_FALSE(j.contains("temperature"));  // unset options are left to the API's defaults
  EXPECT_EQ(j["stop"][0], "\n");
}

TEST(ClientTest, RejectsBadBaseUrls) {
  auto make = [](const std::string& url) {
    return error_of([&] {
      CloudClientOptions o;
      o.base_url = url;
      CloudClient c(o);
    });
  };
  EXPECT_NE(make("127.0.0.1:8080").find("no scheme"), std::string::npos);
  EXPECT_NE(make("ftp://host").find("http://"), std::string::npos);
  EXPECT_NE(make("http://:80").find("no host"), std::string::npos);
  EXPECT_NE(make("http://host:99999").find("port"), std::string::npos);
  EXPECT_NE(make("http://user:pw@host").find("credentials"), std::string::npos);
  EXPECT_EQ(make("http://localhost:8080/v1/"), "(no error)");
  CloudClientOptions o;
  o.base_url = "http://localhost:8080";
  EXPECT_EQ(CloudClient(o).endpoint("/models"), "http://localhost:8080/v1/models");
  o.base_url = "http://localhost:8080/openai/v1/";
  EXPECT_EQ(CloudClient(o).endpoint("/models"), "http://localhost:8080/openai/v1/models");
  const std::string https = make("https://api.example.com/v1");
#ifdef CPPHTTPLIB_OPENSSL_SUPPORT
  EXPECT_EQ(https, "(no error)");
#else
  EXPECT_NE(https.find("TLS"), std::string::npos) << https;
#endif
}

// ---------------------------------------------------------------- the `handoff serve` process

TEST(ServerTest, ServeCommandPrintsItsPortServesAndStopsOnSigterm) {
  int out_pipe[2], err_pipe[2];
  ASSERT_EQ(pipe(out_pipe), 0);
  ASSERT_EQ(pipe(err_pipe), 0);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err_pipe[1], 2);
  posix_spawn_file_actions_addclose(&fa, out_pipe[0]);
  posix_spawn_file_actions_addclose(&fa, err_pipe[0]);
  setenv(kKeyVar, kKey, 1);
  const std::string bin = HANDOFF_BINARY, dir = checkpoint_dir();
  std::vector<std::string> args = {bin,         "serve", "--model",       dir,
                                   "--port",    "0",     "--api-key-env", kKeyVar,
                                   "--threads", "1",     "--model-name",  kModel};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ), 0);
  struct Reaper {  // a failed assertion below must not leave the server running
    pid_t pid;
    ~Reaper() {
      if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, nullptr, 0);
      }
    }
  } reaper{pid};
  posix_spawn_file_actions_destroy(&fa);
  close(out_pipe[1]);
  close(err_pipe[1]);

  // Read "listening on http://127.0.0.1:PORT" from stdout.
  std::string out;
  char c;
  while (out.find('\n') == std::string::npos && read(out_pipe[0], &c, 1) == 1) out.push_back(c);
  const std::string prefix = "listening on http://127.0.0.1:";
  ASSERT_EQ(out.rfind(prefix, 0), 0u) << out;
  const int port = std::stoi(out.substr(prefix.size()));
  ASSERT_GT(port, 0);

  CloudClientOptions o;
  o.base_url = "http://127.0.0.1:" + std::to_string(port);
  o.model = kModel;
  o.api_key_env = kKeyVar;
  const auto r = CloudClient(o).chat({{"user", "hi"}}, ChatOptions{4, 0.0, {}, {}, {}, {}, false});
  unsetenv(kKeyVar);
  EXPECT_EQ(r.usage.completion_tokens, r.finish_reason == "length" ? 4 : r.usage.completion_tokens);
  httplib::Client raw("127.0.0.1", port);
  auto unauth = raw.Get("/v1/models");
  ASSERT_TRUE(unauth);
  EXPECT_EQ(unauth->status, 401);

  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  reaper.pid = -1;
  std::string err;
  char buf[4096];
  ssize_t n;
  while ((n = read(err_pipe[0], buf, sizeof buf)) > 0) err.append(buf, static_cast<size_t>(n));
  close(out_pipe[0]);
  close(err_pipe[0]);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << err;
  EXPECT_NE(err.find("POST /v1/chat/completions 200"), std::string::npos) << err;
  EXPECT_NE(err.find("GET /v1/models 401"), std::string::npos) << err;
  EXPECT_NE(err.find("stopped"), std::string::npos) << err;
  EXPECT_EQ(err.find(kKey), std::string::npos) << err;
}
