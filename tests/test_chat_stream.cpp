// Streamed chat replies read as they arrive (cloud/chat_stream.h, CloudClient::chat_streamed): the event
// parser on arbitrary splits, a llama-server-like device that goes on generating past <handoff> cut off at
// the marker, garbage and truncated streams as errors; our server's side of it (stream_options, logit_bias
// bans, /tokenize).
#include <gtest/gtest.h>

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <nlohmann/json.hpp>

#include "cloud/chat_stream.h"
#include "cloud/cloud_client.h"
#include "cloud/local_model_responder.h"
#include "cloud/model_server.h"
#include "collab/remote_device.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "protocol/response.h"
#include "test_support.h"
#include "tiny_model.h"
#include "tokenizer/char_tokenizer.h"

using namespace handoff;
using handoff::testing::error_of;
using json = nlohmann::json;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

namespace {

std::string chunk(const std::string& content, const char* finish = nullptr) {
  json c = {{"index", 0}, {"delta", content.empty() ? json::object() : json{{"content", content}}}};
  c["finish_reason"] = finish ? json(finish) : json(nullptr);
  return "data: " + json{{"object", "chat.completion.chunk"}, {"model", "m"}, {"choices", {c}}}.dump() +
         "\n\n";
}

std::string usage_event(int prompt, int completion) {
  return "data: " +
         json{{"choices", json::array()},
              {"usage", {{"prompt_tokens", prompt}, {"completion_tokens", completion}}}}
             .dump() +
         "\n\n";
}

// A server that streams `events` then, when `endless`, one more token every 5 ms until the client leaves:
// llama-server on a GGUF whose <handoff> is not a stop token. `sent` counts what it wrote.
struct StreamingServer {
  httplib::Server svr;
  std::thread thread;
  int port = -1;
  std::atomic<int> sent{0};
  std::atomic<bool> client_left{false};
  StreamingServer(std::vector<std::string> events, bool endless) {
    svr.Post("/v1/chat/completions",
             [this, events, endless](const httplib::Request&, httplib::Response& res) {
               res.set_chunked_content_provider("text/event-stream",
                                                [this, events, endless](size_t, httplib::DataSink& sink) {
                                                  for (const auto& e : events) {
                                                    if (!sink.write(e.data(), e.size())) return false;
                                                    ++sent;
                                                  }
                                                  while (endless) {
                                                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                                                    const std::string e = chunk(" more");
                                                    if (!sink.write(e.data(), e.size()) || sent > 2000) {
                                                      client_left = true;
                                                      return false;
                                                    }
                                                    ++sent;
                                                  }
                                                  sink.done();
                                                  return true;
                                                });
             });
    port = svr.bind_to_any_port("127.0.0.1");
    thread = std::thread([this] { svr.listen_after_bind(); });
    while (!svr.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~StreamingServer() {
    svr.stop();
    thread.join();
  }
  CloudClient client() const {
    CloudClientOptions c;
    c.base_url = "http://127.0.0.1:" + std::to_string(port) + "/v1";
    c.model = "m";
    c.read_timeout_s = 5;
    c.deadline_s = 10;
    c.max_retries = 0;
    return CloudClient(c);
  }
};

}  // namespace

TEST(ChatStreamTest, EventsSplitAnywhereReadTheSame) {
  const std::string stream = ": keep-alive\r\n\r\n" + chunk("The ") + "event: x\nid: 3\n" + chunk("sum ") +
                             chunk("is 5") + chunk("", "stop") + usage_event(11, 3) + "data: [DONE]\n\n" +
                             "data: {not json after the end}\n\n";
  for (size_t step : {size_t{1}, size_t{2}, size_t{7}, stream.size()}) {
    ChatStreamReader r({kHandoffMarker.data()});
    for (size_t at = 0; at < stream.size(); at += step)
      ASSERT_TRUE(r.feed(stream.data() + at, std::min(step, stream.size() - at))) << r.error();
    EXPECT_EQ(r.response().content, "The sum is 5") << step;
    EXPECT_EQ(r.response().finish_reason, "stop");
    EXPECT_EQ(r.response().usage.prompt_tokens, 11);
    EXPECT_EQ(r.response().usage.completion_tokens, 3);
    EXPECT_EQ(r.content_chunks(), 3);
    EXPECT_TRUE(r.done());
    EXPECT_FALSE(r.holds_marker());
  }
}

TEST(ChatStreamTest, AReplyEndsWhenTheServerGoesOnPastTheMarkerSplitAcrossChunks) {
  ChatStreamReader r({"<handoff>"});
  for (const auto& e : {chunk("I cannot <hand"), chunk("off>")}) ASSERT_TRUE(r.feed(e.data(), e.size()));
  EXPECT_TRUE(r.holds_marker());
  EXPECT_FALSE(r.cut_after_marker());
  const std::string more = chunk(" and more");
  EXPECT_FALSE(r.feed(more.data(), more.size()));  // the caller closes the connection here
  EXPECT_TRUE(r.cut_after_marker());
  EXPECT_EQ(r.response().content, "I cannot <handoff>");
  EXPECT_EQ(r.content_chunks(), 2);
  EXPECT_TRUE(r.error().empty());
}

TEST(ChatStreamTest, GarbageErrorEventsAndEndlessLinesAreErrors) {
  for (const std::string& bad : {std::string("data: {\"choices\": [\n\n"), std::string("data: 17\n\n"),
                                 std::string("data: {\"error\": {\"message\": \"model crashed\"}}\n\n"),
                                 std::string("data: {\"choices\": [5]}\n\n")}) {
    ChatStreamReader r({});
    EXPECT_FALSE(r.feed(bad.data(), bad.size())) << bad;
    EXPECT_FALSE(r.error().empty()) << bad;
  }
  // llama-server's own error line (then it still sends [DONE]), and an `event: error` with its data.
  for (const std::string& bad :
       {std::string("error: {\"code\": 500, \"message\": \"KV cache is full\"}\n\ndata: [DONE]\n\n"),
        std::string("event: error\ndata: {\"message\": \"KV cache is full\"}\n\n")}) {
    ChatStreamReader r({});
    EXPECT_FALSE(r.feed(bad.data(), bad.size())) << bad;
    EXPECT_TRUE(r.server_error()) << bad;
    EXPECT_NE(r.error().find("KV cache is full"), std::string::npos) << r.error();
    EXPECT_FALSE(r.done());
  }
  ChatStreamReader r({}, /*max_line_bytes=*/64);
  const std::string line(100, 'x');
  EXPECT_FALSE(r.feed(line.data(), line.size()));
  EXPECT_NE(r.error().find("longer than 64"), std::string::npos) << r.error();
}

// llama-server does not stop at <handoff> (a user-defined token there): the client reads the marker, closes
// the connection at the next token, and the server sees it gone — the device's latency and token count end
// at its decision, not at max_tokens.
TEST(ChatStreamTest, ADeviceServerThatGoesOnPastTheHandoffIsCutOffThere) {
  StreamingServer server({chunk("", nullptr), chunk("Too hard"), chunk(" for me. "), chunk("<handoff>")},
                         /*endless=*/true);
  const CloudClient client = server.client();
  const auto t0 = Clock::now();
  const RemoteDeviceReply r = ask_remote_device(client, Protocol{}, {{"user", "2+2"}}, 0.0, 1.0, 4096, 0);
  EXPECT_LT(std::chrono::duration<double>(Clock::now() - t0).count(), 3.0);
  EXPECT_EQ(r.text, "Too hard for me. <handoff>");
  EXPECT_TRUE(r.ended);
  EXPECT_EQ(r.tokens, 3);  // the content chunks up to the marker (the server sent no usage)
  for (int i = 0; i < 400 && !server.client_left; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(server.client_left) << "the server never saw the client leave";
  EXPECT_LT(server.sent.load(), 100);
}

TEST(ChatStreamTest, TruncatedAndGarbageStreamsAreDeviceErrorsNamingTheServer) {
  StreamingServer truncated({chunk("The answer"), chunk(" is")}, /*endless=*/false);
  const std::string e1 = error_of([&] {
    ask_remote_device(truncated.client(), Protocol{}, {{"user", "2+2"}}, 0.0, 1.0, 16, 0);
  });
  EXPECT_NE(e1.find("device server"), std::string::npos) << e1;
  EXPECT_NE(e1.find("[DONE]"), std::string::npos) << e1;
  StreamingServer garbage({chunk("ok"), "data: {\"choices\": [{\"delta\": \n\n"}, /*endless=*/false);
  const std::string e2 = error_of([&] {
    ask_remote_device(garbage.client(), Protocol{}, {{"user", "2+2"}}, 0.0, 1.0, 16, 0);
  });
  EXPECT_NE(e2.find("not a chat completion stream"), std::string::npos) << e2;
}

// Our own server speaks the same: a streamed reply with its usage equals the whole reply; logit_bias bans
// (and refuses what it cannot do); /tokenize reads <handoff> as its one token.
TEST(ChatStreamTest, OurServerStreamsUsageBansTokensAndTokenizesTheMarker) {
  const auto dir = fs::temp_directory_path() / ("handoff_stream_" + std::to_string(getpid()));
  torch::manual_seed(3);
  CausalLM model(handoff::testing::tiny_model_config());
  save_checkpoint(dir.string(), model, CharTokenizer());
  ServerOptions o;
  o.port = 0;
  o.log = [](const std::string&) {};
  ModelServer server(std::make_shared<LocalModelResponder>(load_checkpoint(dir.string()), "tiny"), o);
  server.start();
  CloudClientOptions c;
  c.base_url = server.url() + "/v1";
  c.model = "tiny";
  const CloudClient client(c);
  ChatOptions greedy;
  greedy.temperature = 0.0;
  greedy.max_tokens = 24;
  const ChatResult whole = client.chat({{"user", "abc"}}, greedy);
  const ChatResult streamed = client.chat_streamed({{"user", "abc"}}, greedy, {"<handoff>"});
  EXPECT_EQ(streamed.content, whole.content);
  EXPECT_EQ(streamed.usage.completion_tokens, whole.usage.completion_tokens);
  EXPECT_EQ(streamed.usage.prompt_tokens, whole.usage.prompt_tokens);

  EXPECT_EQ(client.tokenize("<handoff>"), std::vector<int>{CharTokenizer().handoff_id()});
  // Ban every token the greedy reply starts with: the reply changes, and never holds a banned token.
  const std::vector<int> first = CharTokenizer().encode(whole.content.substr(0, 1));
  ASSERT_EQ(first.size(), 1u);
  ChatOptions banned = greedy;
  banned.logit_bias = {{first[0], -100.0}};
  const ChatResult b = client.chat({{"user", "abc"}}, banned);
  EXPECT_EQ(b.content.find(whole.content.substr(0, 1)), std::string::npos) << b.content;

  httplib::Client raw(server.url());
  for (const char* bad : {R"("logit_bias": {"5": 3})", R"("logit_bias": {"abc": -100})",
                          R"("logit_bias": {"5": -101})", R"("logit_bias": {"100000": -100})",
                          R"("logit_bias": [5])", R"("stream_options": {"include_usage": true})"}) {
    const std::string body =
        std::string(R"({"model": "tiny", "messages": [{"role": "user", "content": "abc"}], )") + bad + "}";
    auto res = raw.Post("/v1/chat/completions", body, "application/json");
    ASSERT_TRUE(res);
    EXPECT_EQ(res->status, 400) << bad << " → " << res->body;
    EXPECT_NE(json::parse(res->body)["error"]["message"].get<std::string>().size(), 0u);
  }
  auto res = raw.Post("/tokenize", R"({"content": 5})", "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 400) << res->body;
  server.stop();
  fs::remove_all(dir);
}
