// Collaborative inference over real loopback HTTP: the reference device model answers easy chain queries
// itself and hands forced queries to the reference cloud model served by our server; the collaborative
// endpoint says who answered; a cloud that is down or returns garbage gives 502 (or the flagged device
// fallback); `handoff ask` and `handoff eval --cloud` end to end.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <httplib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <regex>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli_runner.h"
#include "cloud/local_model_responder.h"
#include "cloud/model_server.h"
#include "collab/collab_responder.h"
#include "collab/collaborator.h"
#include "collab/device_run.h"
#include "collab/pure/budget_guard.h"
#include "common/error.h"
#include "eval/eval_set.h"
#include "protocol/protocol.h"
#include "runtime/runtime.h"
#include "tasks/task.h"
#include "test_support.h"

using namespace handoff;
using handoff::testing::error_of;
using handoff::testing::free_port;
using json = nlohmann::json;
using handoff::testing::run_cli;

namespace {

const std::string kDevice = std::string(HANDOFF_SOURCE_DIR) + "/models/device-chain";
const std::string kCloud = std::string(HANDOFF_SOURCE_DIR) + "/models/cloud-chain";
const std::string kHopsDevice = std::string(HANDOFF_SOURCE_DIR) + "/models/device-hops";
const char* kKeyVar = "HANDOFF_TEST_COLLAB_KEY";
const char* kKey = "sk-collab-91be27d4";

// The reference cloud model behind our OpenAI-compatible server on an ephemeral port.
struct CloudServer {
  std::unique_ptr<ModelServer> server;
  explicit CloudServer(const std::string& api_key = "") {
    ServerOptions o;
    o.port = 0;
    o.api_key = api_key;
    o.log = [](const std::string&) {};
    server = std::make_unique<ModelServer>(
        std::make_shared<LocalModelResponder>(load_checkpoint(kCloud), "cloud"), o);
    server->start();
  }
  std::string base() const { return server->url() + "/v1"; }
};

std::shared_ptr<const CloudClient> client_for(const std::string& base, int retries = 1,
                                              double timeout_s = 30) {
  CloudClientOptions c;
  c.base_url = base;
  c.model = "cloud";
  c.max_retries = retries;
  c.backoff_initial_s = 0.01;
  c.connect_timeout_s = 1;
  c.read_timeout_s = timeout_s;
  return std::make_shared<CloudClient>(c);
}

std::shared_ptr<LoadedModel> device_model() {
  return std::make_shared<LoadedModel>(load_checkpoint(kDevice));
}

// Held-out chain problems of one difficulty (the same generator `handoff eval` uses).
std::vector<Problem> problems(int difficulty, int n) {
  auto task = make_task("chain");
  return make_eval_set(*task, {difficulty}, n, 99);
}

CollabOptions forced_handoff() {
  CollabOptions o;
  o.handoff_threshold = 0.0;  // P(<handoff>) ≥ 0 always: every query goes to the cloud
  return o;
}

class CollabTest : public ::testing::Test {
 protected:
  void SetUp() override { configure_threads(1); }
};

std::string chat(const std::string& query) {
  return json({{"model", "collab"},
               {"messages", {{{"role", "user"}, {"content", query}}}},
               {"temperature", 0.0},
               {"max_tokens", 96}})
      .dump();
}

}  // namespace

TEST_F(CollabTest, DeviceAnswersEasyQueriesItselfAndForcedHandoffsGetTheCloudsAnswer) {
  CloudServer cloud;
  auto task = make_task("chain");
  const auto items = problems(1, 8);
  std::vector<std::vector<ChatMessage>> queries;
  for (const auto& p : items) queries.push_back({{"user", p.prompt}});
  const std::vector<uint64_t> seeds(items.size(), 0);

  Collaborator local(device_model(), client_for(cloud.base()), CollabOptions{});
  auto r = local.answer(queries, seeds);
  int by_device = 0, correct = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    by_device += r[i].answered_by == AnsweredBy::kDevice && !r[i].called_cloud;
    correct += task->verify(items[i], r[i].answer);
    if (!r[i].called_cloud) {
      EXPECT_EQ(r[i].cloud_tokens, 0);
    }
  }
  // The reference device solves 99 % of difficulty 1 greedily and almost never hands off there.
  EXPECT_GE(by_device, 7);
  EXPECT_GE(correct, 7);

  Collaborator forced(device_model(), client_for(cloud.base()), forced_handoff());
  auto f = forced.answer(queries, seeds);
  int cloud_correct = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_TRUE(f[i].called_cloud);
    EXPECT_EQ(f[i].answered_by, AnsweredBy::kCloud);
    EXPECT_EQ(f[i].device_kind, ResponseKind::kHandoff);
    EXPECT_GT(f[i].cloud_tokens, 0);
    EXPECT_GT(f[i].cloud_ms, 0.0);
    cloud_correct += task->verify(items[i], f[i].answer);
  }
  EXPECT_GE(cloud_correct, 7);  // the reference cloud: 96 % at difficulty 1

  // What the cloud received is the original query only (paper.md §1): the same reply as asking it directly.
  auto direct = client_for(cloud.base())->chat({{"user", items[0].prompt}}, [] {
    ChatOptions o;
    o.temperature = 0.0;
    o.max_tokens = 256;
    return o;
  }());
  EXPECT_EQ(f[0].text, direct.content);
}

TEST_F(CollabTest, ConcurrentQueriesShareTheDevicesForwardPassesAndGetTheirOwnAnswers) {
  CloudServer cloud;
  std::vector<Problem> items = problems(2, 4);
  for (auto& p : problems(7, 4)) items.push_back(p);
  CollabOptions o;
  o.handoff_threshold = 0.15;  // the deployment knob: hand off where P(<handoff>) ≥ 0.15 (the boost path)
  Collaborator alone(device_model(), client_for(cloud.base()), o);
  Collaborator shared(device_model(), client_for(cloud.base()), o);
  shared.share_device_decodes(8);
  std::vector<CollabResult> want, got(items.size());
  for (const auto& p : items) want.push_back(alone.answer(p.prompt, 3));
  std::vector<std::thread> ts;
  for (size_t i = 0; i < items.size(); ++i)
    ts.emplace_back([&, i] { got[i] = shared.answer(items[i].prompt, 3); });
  for (auto& t : ts) t.join();
  int handoffs = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(got[i].device_text, want[i].device_text);
    EXPECT_EQ(got[i].answered_by, want[i].answered_by);
    EXPECT_EQ(got[i].answer, want[i].answer);
    handoffs += got[i].called_cloud;
  }
  EXPECT_GT(handoffs, 0);  // some queries go to the cloud, some stay
  EXPECT_LT(handoffs, 8);
  const auto st = shared.device_batch_stats();
  EXPECT_EQ(st.requests, 8);
  EXPECT_GE(st.peak_rows, 2);  // they decoded together, not in turns
  EXPECT_EQ(alone.device_batch_stats().steps, 0);
}

TEST_F(CollabTest, CollaborativeEndpointSaysWhoAnsweredInAFieldAndAHeader) {
  CloudServer cloud;
  const auto items = problems(1, 1);
  for (const bool force : {false, true}) {
    SCOPED_TRACE(force ? "forced hand-off" : "device answers");
    auto collab = std::make_shared<Collaborator>(device_model(), client_for(cloud.base()),
                                                 force ? forced_handoff() : CollabOptions{});
    ServerOptions so;
    so.port = 0;
    so.log = [](const std::string&) {};
    ModelServer endpoint(std::make_shared<CollabResponder>(collab, "collab"), so);
    endpoint.start();
    httplib::Client cli(endpoint.url());
    auto res = cli.Post("/v1/chat/completions", chat(items[0].prompt), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const std::string who = force ? "cloud" : "device";
    EXPECT_EQ(res->get_header_value("x-handoff-by"), who);
    auto j = json::parse(res->body);
    const auto& h = j["choices"][0]["handoff"];
    EXPECT_EQ(h["answered_by"], who);
    EXPECT_EQ(h["called_cloud"], force);
    EXPECT_EQ(j["choices"][0]["message"]["content"].get<std::string>().find("Answer:") != std::string::npos,
              true);
    if (force) {
      EXPECT_GT(h["cloud_tokens"].get<int64_t>(), 0);
      // usage counts both sides' generated tokens
      EXPECT_EQ(j["usage"]["completion_tokens"].get<int64_t>(),
                h["device_tokens"].get<int64_t>() + h["cloud_tokens"].get<int64_t>());
    } else {
      EXPECT_EQ(h["cloud_tokens"], 0);
    }

    // The text completion route and streaming carry the same account.
    auto text =
        cli.Post("/v1/completions",
                 json({{"model", "collab"}, {"prompt", items[0].prompt}, {"temperature", 0.0}}).dump(),
                 "application/json");
    ASSERT_TRUE(text);
    ASSERT_EQ(text->status, 200) << text->body;
    EXPECT_EQ(text->get_header_value("x-handoff-by"), who);
    EXPECT_EQ(json::parse(text->body)["choices"][0]["handoff"]["answered_by"], who);
    auto body = json::parse(chat(items[0].prompt));
    body["stream"] = true;
    auto stream = cli.Post("/v1/chat/completions", body.dump(), "application/json");
    ASSERT_TRUE(stream);
    EXPECT_EQ(stream->get_header_value("x-handoff-by"), who);
    EXPECT_NE(stream->body.find("\"answered_by\":\"" + who + "\""), std::string::npos);
    endpoint.stop();
  }
}

TEST_F(CollabTest, ACloudThatIsDownGives502OrTheFlaggedDeviceFallback) {
  const auto items = problems(2, 1);
  const std::string dead = "http://127.0.0.1:" + std::to_string(free_port()) + "/v1";
  for (const bool fallback : {false, true}) {
    SCOPED_TRACE(fallback ? "fallback" : "no fallback");
    CollabOptions o = forced_handoff();
    o.fallback = fallback;
    auto collab = std::make_shared<Collaborator>(device_model(), client_for(dead, 0), o);
    if (!fallback) {
      try {
        collab->answer(items[0].prompt);
        ADD_FAILURE() << "a hand-off to a dead cloud must fail without --fallback";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("cloud failed"), std::string::npos) << e.what();
      }
    } else {
      auto r = collab->answer(items[0].prompt);
      EXPECT_EQ(r.answered_by, AnsweredBy::kDeviceFallback);
      EXPECT_TRUE(r.called_cloud);
      EXPECT_FALSE(r.cloud_error.empty());
      EXPECT_EQ(r.text.find("<handoff>"), std::string::npos);  // the retry cannot hand off again
      EXPECT_FALSE(r.answer.empty()) << r.text;                // ... and gives its own answer
    }
    ServerOptions so;
    so.port = 0;
    so.log = [](const std::string&) {};
    ModelServer endpoint(std::make_shared<CollabResponder>(collab, "collab"), so);
    endpoint.start();
    httplib::Client cli(endpoint.url());
    auto res = cli.Post("/v1/chat/completions", chat(items[0].prompt), "application/json");
    ASSERT_TRUE(res);
    if (!fallback) {
      EXPECT_EQ(res->status, 502) << res->body;
      EXPECT_EQ(json::parse(res->body)["error"]["code"], "cloud_unavailable");
    } else {
      EXPECT_EQ(res->status, 200) << res->body;
      EXPECT_EQ(res->get_header_value("x-handoff-by"), "device-fallback");
      EXPECT_TRUE(json::parse(res->body)["choices"][0]["handoff"].contains("cloud_error"));
    }
    endpoint.stop();
  }
}

TEST_F(CollabTest, ACloudReturningGarbageIsAnErrorNotACrash) {
  httplib::Server garbage;
  garbage.Post("/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"choices\": [{\"message\": 17", "application/json");  // truncated, wrong type
  });
  const int port = garbage.bind_to_any_port("127.0.0.1");
  std::thread t([&] { garbage.listen_after_bind(); });
  while (!garbage.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  const auto items = problems(1, 1);
  Collaborator collab(device_model(), client_for("http://127.0.0.1:" + std::to_string(port) + "/v1", 0),
                      forced_handoff());
  try {
    collab.answer(items[0].prompt);
    ADD_FAILURE() << "garbage from the cloud must be an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cloud failed"), std::string::npos) << e.what();
  }
  garbage.stop();
  t.join();
}

// A real reasoning cloud (DeepSeek-R1 style) thinks aloud with tentative answers, then answers in \boxed{}:
// judged by its final answer, not by what it wrote while thinking (issue 17).
TEST_F(CollabTest, AReasoningCloudsBoxedAnswerIsJudgedCorrect) {
  auto task = make_task("chain");
  const auto items = problems(3, 4);
  httplib::Server r1;
  r1.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string query = json::parse(req.body)["messages"].back()["content"];
    std::string answer = "?";
    for (const auto& p : items)
      if (p.prompt == query) answer = p.answer;
    const std::string content =
        "<think>\nFirst guess: \\boxed{0}. Answer: 0\nNo, recheck.\n</think>\n\n"
        "The result is \\boxed{" +
        answer + "}.";
    res.set_content(
        json({{"choices",
               {{{"index", 0},
                 {"message", {{"role", "assistant"}, {"content", content}}},
                 {"finish_reason", "stop"}}}},
              {"usage", {{"prompt_tokens", 10}, {"completion_tokens", 30}, {"total_tokens", 40}}}})
            .dump(),
        "application/json");
  });
  const int port = r1.bind_to_any_port("127.0.0.1");
  std::thread t([&] { r1.listen_after_bind(); });
  while (!r1.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  Collaborator collab(device_model(), client_for("http://127.0.0.1:" + std::to_string(port) + "/v1", 0),
                      forced_handoff());
  for (const auto& p : items) {
    const CollabResult r = collab.answer(p.prompt);
    EXPECT_EQ(r.answered_by, AnsweredBy::kCloud);
    EXPECT_EQ(r.answer, p.answer);
    EXPECT_TRUE(task->verify(p, r.answer));
  }
  r1.stop();
  t.join();
}

// The paper's protocol end to end: the device is read by its grammar (answer tags, think block), and the
// cloud is told to box its answer — an R1-style stand-in sees the instruction and is judged correct.
TEST_F(CollabTest, TheProtocolTellsTheCloudItsFormatAndReadsTheDeviceByItsGrammar) {
  auto task = make_task("chain");
  const auto items = problems(3, 3);
  std::mutex mu;
  std::vector<std::string> seen;
  httplib::Server r1;
  r1.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) {
    const std::string content = json::parse(req.body)["messages"].back()["content"];
    {
      std::lock_guard<std::mutex> lock(mu);
      seen.push_back(content);
    }
    std::string answer = "?";
    for (const auto& p : items)
      if (content.rfind(p.prompt + "\n", 0) == 0) answer = p.answer;
    res.set_content(json({{"choices",
                           {{{"index", 0},
                             {"message",
                              {{"role", "assistant"},
                               {"content", "<think>\nhmm \\boxed{0}\n</think>\n\\boxed{" + answer + "}"}}},
                             {"finish_reason", "stop"}}}},
                          {"usage", {{"prompt_tokens", 12}, {"completion_tokens", 9}, {"total_tokens", 21}}}})
                        .dump(),
                    "application/json");
  });
  const int port = r1.bind_to_any_port("127.0.0.1");
  std::thread t([&] { r1.listen_after_bind(); });
  while (!r1.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // The paper's texts with the <handoff> token, so the forced hand-off (the threshold) applies.
  Protocol paper_token = load_protocol("paper");
  paper_token.handoff = "<handoff>";
  auto device = device_model();
  device->use_protocol(paper_token);
  Collaborator collab(device, client_for("http://127.0.0.1:" + std::to_string(port) + "/v1", 0),
                      forced_handoff());
  for (const auto& p : items) {
    const CollabResult r = collab.answer(p.prompt);
    EXPECT_EQ(r.answered_by, AnsweredBy::kCloud);
    EXPECT_EQ(r.answer, p.answer);
    EXPECT_EQ(r.cloud_prompt_tokens, 12);
  }
  ASSERT_EQ(seen.size(), items.size());
  for (const auto& c : seen)
    EXPECT_NE(c.find("put your final answer within \\boxed{}"), std::string::npos) << c;
  // The device, unforced, answers in the embedded grammar ("Answer: X"): under the paper's it is a format
  // error, never a local answer read from the wrong form.
  Collaborator own(device, client_for("http://127.0.0.1:" + std::to_string(port) + "/v1", 0), {});
  const CollabResult plain = own.answer(problems(1, 1)[0].prompt);
  ASSERT_FALSE(plain.called_cloud) << plain.device_text;
  EXPECT_NE(plain.device_text.find("Answer:"), std::string::npos) << plain.device_text;
  EXPECT_EQ(plain.device_kind, ResponseKind::kFormatError) << plain.device_text;
  EXPECT_EQ(plain.answer, "");
  // The paper's own phrase cannot use the hand-off threshold: refused by name, not ignored.
  auto phrase = device_model();
  phrase->use_protocol(load_protocol("paper"));
  try {
    Collaborator refused(phrase, client_for("http://127.0.0.1:" + std::to_string(port) + "/v1", 0),
                         forced_handoff());
    ADD_FAILURE() << "a hand-off threshold was accepted with a hand-off phrase";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("hand-off threshold needs"), std::string::npos) << e.what();
  }
  r1.stop();
  t.join();
  // The command line: an unknown protocol is named.
  CloudServer cloud;
  auto bad = run_cli("ask --device " + kDevice + " --cloud " + cloud.base() + " --protocol nope '1+2'");
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.output.find("nope"), std::string::npos) << bad.output;
}

TEST_F(CollabTest, AskPrintsTheAnswerAndWhoGaveItAndNeverTheKey) {
  setenv(kKeyVar, kKey, 1);
  CloudServer cloud(kKey);
  const auto items = problems(1, 1);
  const std::string common = "--device " + kDevice + " --cloud " + cloud.base() + " --cloud-api-key-env " +
                             kKeyVar + " '" + items[0].prompt + "'";
  auto local = run_cli("ask " + common + " -v");
  EXPECT_EQ(local.code, 0) << local.output;
  EXPECT_NE(local.output.find("answered by: device"), std::string::npos) << local.output;
  EXPECT_NE(local.output.find("answer: " + items[0].answer), std::string::npos) << local.output;

  auto forced = run_cli("ask " + common + " --handoff-threshold 0 --json");
  EXPECT_EQ(forced.code, 0) << forced.output;
  auto j = json::parse(forced.output.substr(forced.output.find('{')));
  EXPECT_EQ(j["answered_by"], "cloud");
  EXPECT_TRUE(j["called_cloud"].get<bool>());
  for (const auto& out : {local.output, forced.output}) EXPECT_EQ(out.find(kKey), std::string::npos);

  // A wrong key: refused by the cloud, a clear error, the key still not printed.
  setenv(kKeyVar, "sk-wrong-000", 1);
  auto refused = run_cli("ask " + common + " --handoff-threshold 0");
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.output.find("401"), std::string::npos) << refused.output;
  EXPECT_EQ(refused.output.find("sk-wrong-000"), std::string::npos) << refused.output;
  unsetenv(kKeyVar);
}

TEST_F(CollabTest, AskAndEvalRefuseAnUnreachableCloudBeforeAnyWork) {
  const std::string dead = "http://127.0.0.1:" + std::to_string(free_port()) + "/v1";
  auto ask = run_cli("ask --device " + kDevice + " --cloud " + dead + " --cloud-retries 0 '1+2'");
  EXPECT_NE(ask.code, 0);
  EXPECT_NE(ask.output.find("cannot reach the cloud"), std::string::npos) << ask.output;
  auto eval = run_cli("eval --model " + kDevice + " --cloud " + dead + " --cloud-retries 0 --n 2");
  EXPECT_NE(eval.code, 0);
  EXPECT_NE(eval.output.find("cannot reach the cloud"), std::string::npos) << eval.output;
  auto serve = run_cli("serve --device " + kDevice + " --port 0");  // --device needs --cloud
  EXPECT_NE(serve.code, 0);
  EXPECT_NE(serve.output.find("--cloud"), std::string::npos) << serve.output;
}

TEST_F(CollabTest, EvalWithCloudReportsCollaborativeAccuracyAndCallRate) {
  CloudServer cloud;
  const std::string json_path = ::testing::TempDir() + "collab_eval_" + std::to_string(getpid()) + ".json";
  auto r = run_cli("eval --model " + kDevice + " --cloud " + cloud.base() +
                   " --n 6 --difficulties 1,8 --sample-temperature 0 --threads 1 --handoff-threshold 0 " +
                   "--cloud-price-in 1 --cloud-price-out 2 --json " + json_path);
  ASSERT_EQ(r.code, 0) << r.output;
  EXPECT_NE(r.output.find("collaborative"), std::string::npos) << r.output;
  std::ifstream in(json_path);
  auto j = json::parse(in);
  const auto& rows = j["collaborative"];
  ASSERT_EQ(rows.size(), 3u);  // difficulty 1, 8, all
  const auto& all = rows[2];
  EXPECT_EQ(all["difficulty"], "all");
  EXPECT_EQ(all["n"], 12);
  EXPECT_DOUBLE_EQ(all["call_rate"].get<double>(), 1.0);  // forced: every query handed off
  // With every query on the cloud, accuracy is the cloud's (0.96 / 0.91 at difficulties 1 / 8).
  EXPECT_GE(all["accuracy"].get<double>(), 0.75);
  EXPECT_TRUE(j["device"].is_array());
  // The run's cloud bill: 12 calls, the tokens our server reported, priced per million.
  const auto& u = j["cloud_usage"];
  EXPECT_EQ(u["calls"], 12);
  EXPECT_GT(u["prompt_tokens"].get<int64_t>(), 12);
  EXPECT_GT(u["completion_tokens"].get<int64_t>(), 12);
  EXPECT_NEAR(u["cost_usd"].get<double>(),
              (u["prompt_tokens"].get<double>() + 2 * u["completion_tokens"].get<double>()) / 1e6, 1e-12);
  // Replies with no answer in any form are counted (and are among the wrong ones).
  EXPECT_EQ(u["no_answer"].get<int64_t>(), std::llround(all["cloud_no_answer"].get<double>() * 12));
  EXPECT_LE(u["no_answer"].get<int64_t>(), std::llround((1 - all["accuracy"].get<double>()) * 12));
  std::remove(json_path.c_str());
}

// Issue 16: hung cloud calls must not take every worker. With one cloud slot, a second and third hand-off
// while the first is in the cloud get 503 cloud_busy at once (or, with --fallback, the flagged device answer)
// instead of waiting on a worker thread for the slow cloud.
TEST_F(CollabTest, HandoffsPastTheCloudSlotsAre503AtOnceNotQueuedBehindASlowCloud) {
  httplib::Server slow;
  slow.Post("/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    res.set_content(
        R"({"id":"x","object":"chat.completion","created":1,"model":"cloud","choices":[{"index":0,)"
        R"("message":{"role":"assistant","content":"Answer: 42"},"finish_reason":"stop"}],)"
        R"("usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}})",
        "application/json");
  });
  const int port = slow.bind_to_any_port("127.0.0.1");
  std::thread cloud_thread([&] { slow.listen_after_bind(); });
  const auto items = problems(2, 3);
  for (const bool fallback : {false, true}) {
    SCOPED_TRACE(fallback ? "fallback" : "no fallback");
    CollabOptions o = forced_handoff();
    o.fallback = fallback;
    auto collab = std::make_shared<Collaborator>(
        device_model(), client_for("http://127.0.0.1:" + std::to_string(port) + "/v1", 0), o);
    collab->limit_cloud_calls(1);
    ServerOptions so;
    so.port = 0;
    so.http_threads = 4;
    so.log = [](const std::string&) {};
    ModelServer endpoint(std::make_shared<CollabResponder>(collab, "collab"), so);
    endpoint.start();
    std::vector<int> status(3, 0);
    std::vector<std::string> by(3), body(3);
    std::vector<double> seconds(3, 0);
    std::vector<std::thread> ts;
    for (int i = 0; i < 3; ++i) {
      ts.emplace_back([&, i] {
        httplib::Client cli(endpoint.url());
        cli.set_read_timeout(30, 0);
        const auto t0 = std::chrono::steady_clock::now();
        auto res = cli.Post("/v1/chat/completions", chat(items[i].prompt), "application/json");
        seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (res) {
          status[i] = res->status;
          by[i] = res->get_header_value("x-handoff-by");
          body[i] = res->body;
        }
      });
      if (i == 0) std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the first holds the slot
    }
    for (auto& t : ts) t.join();
    EXPECT_EQ(status[0], 200) << body[0];
    EXPECT_EQ(by[0], "cloud");
    for (int i = 1; i < 3; ++i) {
      SCOPED_TRACE(i);
      EXPECT_LT(seconds[i], 1.1);  // not held until the slow cloud answered the first (≥ 1.2 s)
      if (!fallback) {
        EXPECT_EQ(status[i], 503) << body[i];
        EXPECT_EQ(json::parse(body[i])["error"]["code"], "cloud_busy");
      } else {
        EXPECT_EQ(status[i], 200) << body[i];
        EXPECT_EQ(by[i], "device-fallback");
        EXPECT_NE(body[i].find("cloud is busy"), std::string::npos) << body[i];
      }
    }
    endpoint.stop();
  }
  slow.stop();
  cloud_thread.join();
}

namespace {

// /usr/bin/python3 with Debian's python3-prometheus-client parses a /metrics body into
// {"name{label=value,...}": value} (samples of every family, histogram buckets included).
json parse_prometheus(const std::string& text) {
  const std::string in = ::testing::TempDir() + "metrics.txt", out = ::testing::TempDir() + "metrics.json";
  std::ofstream(in) << text;
  const std::string cmd =
      "/usr/bin/python3 -c \"import json,sys; from prometheus_client.parser import "
      "text_string_to_metric_families as p; "
      "print(json.dumps({s.name + ('{' + ','.join(k + '=' + v for k, v in sorted(s.labels.items())) + '}' "
      "if s.labels else ''): s.value for f in p(open(sys.argv[1]).read()) for s in f.samples}))\" " +
      in + " > " + out + " 2>&1";
  if (std::system(cmd.c_str()) != 0) {
    std::ifstream err(out);
    return json{{"error", std::string(std::istreambuf_iterator<char>(err), {})}};
  }
  std::ifstream f(out);
  return json::parse(f);
}

}  // namespace

// GET /metrics (issue 20): Prometheus text that a Prometheus parser reads, whose counters add up to what the
// clients saw — requests by route and status, tokens, who answered, hand-offs, each side's tokens, the
// rolling call rate — and that never carries the key or any prompt text.
TEST_F(CollabTest, MetricsParseAsPrometheusAndAddUpToWhatClientsSaw) {
  ASSERT_TRUE(handoff::testing::reference_installed(
      std::system("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null") == 0,
      "/usr/bin/python3 with prometheus_client (Debian python3-prometheus-client)",
      "apt-get install python3-prometheus-client"));
  CloudServer cloud;
  CollabOptions o;
  o.handoff_threshold = 0.15;  // some hand off, some do not
  auto collab = std::make_shared<Collaborator>(device_model(), client_for(cloud.base()), o);
  ServerOptions so;
  so.port = 0;
  so.api_key = kKey;
  so.call_rate_window = 4;
  so.log = [](const std::string&) {};
  ModelServer endpoint(std::make_shared<CollabResponder>(collab, "collab"), so);
  endpoint.start();
  httplib::Client cli(endpoint.url());
  cli.set_bearer_token_auth(kKey);
  int64_t prompt_tokens = 0, completion_tokens = 0, device_tokens = 0, cloud_tokens = 0;
  std::vector<bool> called;
  std::vector<std::string> prompts;
  for (int d = 1; d <= 5; ++d)
    for (const auto& p : problems(d, 2)) {
      prompts.push_back(p.prompt);
      auto res = cli.Post("/v1/chat/completions", chat(p.prompt), "application/json");
      ASSERT_TRUE(res);
      ASSERT_EQ(res->status, 200) << res->body;
      const auto j = json::parse(res->body);
      prompt_tokens += j["usage"]["prompt_tokens"].get<int64_t>();
      completion_tokens += j["usage"]["completion_tokens"].get<int64_t>();
      const auto& h = j["choices"][0]["handoff"];
      device_tokens += h["device_tokens"].get<int64_t>();
      cloud_tokens += h["cloud_tokens"].get<int64_t>();
      called.push_back(h["called_cloud"].get<bool>());
    }
  ASSERT_EQ(cli.Post("/v1/chat/completions", "{not json", "application/json")->status, 400);
  ASSERT_EQ(cli.Get("/no/such/path")->status, 404);
  httplib::Client anonymous(endpoint.url());
  ASSERT_EQ(anonymous.Get("/metrics")->status, 401);  // the same key as every other route but /health
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u);
  EXPECT_EQ(res->body.find(kKey), std::string::npos);
  for (const auto& p : prompts) EXPECT_EQ(res->body.find(p), std::string::npos) << p;
  const json m = parse_prometheus(res->body);
  ASSERT_FALSE(m.contains("error")) << m << res->body;
  const int64_t handoffs = std::count(called.begin(), called.end(), true);
  ASSERT_GT(handoffs, 0);
  ASSERT_LT(handoffs, 10);
  EXPECT_EQ(m["handoff_http_requests_total{path=/v1/chat/completions,status=200}"], 10);
  EXPECT_EQ(m["handoff_http_requests_total{path=/v1/chat/completions,status=400}"], 1);
  EXPECT_EQ(m["handoff_http_requests_total{path=other,status=404}"], 1);  // unknown paths get no label
  EXPECT_EQ(m["handoff_http_requests_total{path=/metrics,status=401}"], 1);
  EXPECT_EQ(m["handoff_http_request_duration_seconds_count{path=/v1/chat/completions}"], 11);
  EXPECT_EQ(m["handoff_http_request_duration_seconds_bucket{le=+Inf,path=/v1/chat/completions}"], 11);
  EXPECT_EQ(m["handoff_prompt_tokens_total"], prompt_tokens);
  EXPECT_EQ(m["handoff_completion_tokens_total"], completion_tokens);
  EXPECT_EQ(m["handoff_answers_total{by=cloud}"], handoffs);
  EXPECT_EQ(m["handoff_answers_total{by=device}"], 10 - handoffs);
  EXPECT_EQ(m["handoff_handoffs_total"], handoffs);
  EXPECT_EQ(m["handoff_cloud_errors_total"], 0);
  EXPECT_EQ(m["handoff_side_tokens_total{side=device}"], device_tokens);
  EXPECT_EQ(m["handoff_side_tokens_total{side=cloud}"], cloud_tokens);
  EXPECT_EQ(m["handoff_side_duration_seconds_count{side=device}"], 10);
  EXPECT_EQ(m["handoff_side_duration_seconds_count{side=cloud}"], handoffs);
  // The rolling rate counts the last 4 decisions only.
  EXPECT_DOUBLE_EQ(m["handoff_call_rate"].get<double>(),
                   static_cast<double>(std::count(called.end() - 4, called.end(), true)) / 4.0);
  EXPECT_EQ(m["handoff_call_rate_window"], 4);
  EXPECT_EQ(m["handoff_queue_depth"], 0);
  endpoint.stop();
}

// The budget guard on the reference device (issue 20): a stream that gets harder (chain difficulties 1 → 5,
// so the device's P(<handoff>) drifts up) keeps its call rate near the target once the guard has seen the
// traffic, where the base threshold alone drifts with the stream; every decision reports the threshold it
// used and its score, and `guard_changed` agrees with an unguarded decode at the base threshold.
TEST_F(CollabTest, TheBudgetGuardHoldsTheCallRateOfADriftingStreamAndSaysWhatItChanged) {
  CloudServer cloud;
  std::vector<std::vector<ChatMessage>> queries;
  for (int d = 1; d <= 5; ++d)
    for (const auto& p : problems(d, 40)) queries.push_back({{"user", p.prompt}});
  BudgetGuardOptions g;
  g.target = 0.3;
  g.window = 100;
  g.base_threshold = 0.15;  // the reference device's P(<handoff>) rarely reaches 0.5
  auto guard = std::make_shared<BudgetGuard>(g);
  Collaborator collab(device_model(), client_for(cloud.base()), CollabOptions{});
  collab.guard_budget(guard);
  std::vector<CollabResult> got;
  for (size_t i = 0; i < queries.size(); i += 4) {  // a few queries per request, one threshold each
    const std::vector<std::vector<ChatMessage>> batch(queries.begin() + i, queries.begin() + i + 4);
    for (auto& r : collab.answer(batch, std::vector<uint64_t>(batch.size(), 0))) got.push_back(r);
  }
  ASSERT_EQ(got.size(), queries.size());

  // The base threshold's own decisions on the same queries, decoded without the guard.
  auto device = device_model();
  std::vector<std::vector<int>> prompts;
  for (const auto& q : queries)
    prompts.push_back(device->tokenizer->encode_chat(device->protocol.device_conversation(q)));
  const DeviceSpeech io{*device->tokenizer, device->protocol};
  const auto base =
      run_device_prompts(device->model, io, prompts, device_sampling(io, 0.0, 96, 1.0, g.base_threshold),
                         std::vector<uint64_t>(prompts.size(), 0));
  int checked = 0, disagree = 0, changed = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const auto& r = got[i];
    ASSERT_TRUE(r.guarded);
    ASSERT_GE(r.handoff_threshold, 0.0);
    ASSERT_GE(r.handoff_score, 0.0);
    // The knob's rule: a hand-off reached the threshold; a kept query never did.
    if (r.called_cloud)
      EXPECT_GE(r.handoff_score, r.handoff_threshold - 1e-6);
    else
      EXPECT_LT(r.handoff_score, r.handoff_threshold);
    changed += r.guard_changed;
    const bool base_call = base[i].parsed.kind == ResponseKind::kHandoff;
    if (!r.called_cloud || r.handoff_score >= g.base_threshold) {  // decidable from what the device saw
      ++checked;
      disagree += r.guard_changed != (base_call != r.called_cloud);
    }
  }
  EXPECT_GE(checked, 150);
  EXPECT_LE(disagree, 2);  // batch composition can move a float tie, nothing more
  EXPECT_GT(changed, 0);
  auto rate = [&](size_t from, size_t to, auto called) {
    int n = 0;
    for (size_t i = from; i < to; ++i) n += called(i);
    return static_cast<double>(n) / static_cast<double>(to - from);
  };
  const double guarded_late = rate(100, 200, [&](size_t i) { return got[i].called_cloud; });
  const double base_early =
      rate(0, 100, [&](size_t i) { return base[i].parsed.kind == ResponseKind::kHandoff; });
  const double base_late =
      rate(100, 200, [&](size_t i) { return base[i].parsed.kind == ResponseKind::kHandoff; });
  std::printf("call rate, queries 101-200: guard %.3f, base threshold %.3f (queries 1-100: %.3f)\n",
              guarded_late, base_late, base_early);
  EXPECT_NEAR(guarded_late, 0.3, 0.07);
  EXPECT_GT(std::abs(base_late - base_early), 0.15) << "the stream must drift for the test to mean anything";
  const GuardState st = guard->state();
  EXPECT_EQ(st.decisions, 200);
  EXPECT_EQ(st.changed, changed);

  // Through the endpoint, as `serve` runs it (continuous batching: the scores come from SlotDecoder): each
  // choice carries the threshold, the score and whether the guard changed it; /metrics counts the changes
  // and shows the last threshold.
  collab.share_device_decodes(4);
  ServerOptions so;
  so.port = 0;
  so.call_rate_target = g.target;
  so.log = [](const std::string&) {};
  ModelServer endpoint(
      std::make_shared<CollabResponder>(std::shared_ptr<Collaborator>(&collab, [](auto*) {}), "collab"), so);
  endpoint.start();
  httplib::Client cli(endpoint.url());
  int endpoint_changed = 0;
  double last_threshold = -1;
  for (size_t i = 150; i < 170; ++i) {
    auto res = cli.Post("/v1/chat/completions", chat(queries[i][0].content), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const auto h = json::parse(res->body)["choices"][0]["handoff"];
    ASSERT_TRUE(h.contains("threshold") && h.contains("handoff_probability") && h.contains("guard_changed"))
        << h;
    endpoint_changed += h["guard_changed"].get<bool>();
    if (h["called_cloud"].get<bool>())  // the knob's rule holds for the batched decoder's scores too
      EXPECT_GE(h["handoff_probability"].get<double>(), h["threshold"].get<double>() - 1e-6) << h;
    else
      EXPECT_LT(h["handoff_probability"].get<double>(), h["threshold"].get<double>()) << h;
    last_threshold = h["threshold"].get<double>();
  }
  const std::string m = cli.Get("/metrics")->body;
  std::smatch hit;
  ASSERT_TRUE(std::regex_search(m, hit, std::regex("\nhandoff_guard_threshold (\\S+)"))) << m;
  EXPECT_NEAR(std::stod(hit[1]), last_threshold, 1e-9);
  int counted = 0;
  for (const char* to : {"cloud", "device"})
    if (std::regex_search(
            m, hit, std::regex(std::string("handoff_guard_changed_total\\{to=\"") + to + "\"\\} (\\d+)")))
      counted += std::stoi(hit[1]);
  EXPECT_EQ(counted, endpoint_changed);
  EXPECT_NE(m.find("handoff_call_rate_target 0.3"), std::string::npos);
}

// `serve --max-call-rate`: out-of-range or misplaced budgets fail before anything is loaded or served.
TEST_F(CollabTest, BadBudgetGuardFlagsAreErrorsNamingTheFlag) {
  const std::string dead = "http://127.0.0.1:" + std::to_string(free_port()) + "/v1";
  for (const char* flags :
       {"--max-call-rate 1", "--max-call-rate 0", "--max-call-rate 1.5",
        "--max-call-rate 0.3 --call-rate-window 5", "--max-call-rate 0.3 --handoff-threshold 0"}) {
    auto r = run_cli("serve --device " + kDevice + " --cloud " + dead + " --port 0 " + flags);
    EXPECT_NE(r.code, 0) << flags;
    EXPECT_TRUE(r.output.find("--max-call-rate") != std::string::npos ||
                r.output.find("--call-rate-window") != std::string::npos)
        << flags << "\n"
        << r.output;
    EXPECT_EQ(r.output.find("listening"), std::string::npos) << r.output;
  }
  auto r = run_cli("serve --model " + kDevice + " --port 0 --max-call-rate 0.3");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.output.find("collaborative endpoint"), std::string::npos) << r.output;
}

// `--device-url` (issue 20): the device behind an OpenAI-compatible server — here our own `serve --model`
// of the reference device on loopback, which ends a reply with the <handoff> text as llama.cpp renders the
// exported token — decides as the device loaded in-process does: the same reasoning, the same hand-offs,
// the same answers, through the collaborative endpoint's same JSON.
TEST_F(CollabTest, ADeviceBehindAnOpenAIServerDecidesAsTheLoadedDeviceDoes) {
  CloudServer cloud;
  ServerOptions o;
  o.port = 0;
  o.log = [](const std::string&) {};
  ModelServer device_server(std::make_shared<LocalModelResponder>(load_checkpoint(kHopsDevice), "device"), o);
  device_server.start();
  CollabOptions greedy;
  CloudClientOptions dc = client_for(device_server.url() + "/v1", 0)->options();
  dc.model = "device";
  auto remote = std::make_shared<Collaborator>(std::make_shared<CloudClient>(dc), Protocol{},
                                               client_for(cloud.base()), greedy);
  Collaborator local(std::make_shared<LoadedModel>(load_checkpoint(kHopsDevice)), client_for(cloud.base()),
                     greedy);
  std::vector<std::vector<ChatMessage>> queries;
  // Chain questions to the hops device: off its task, it hands off on about 40 % of them greedily (the
  // reference devices rarely hand off greedily on their own tasks), so the stream has both decisions.
  for (int d = 1; d <= 6; ++d)
    for (const auto& p : problems(d, 2)) queries.push_back({{"user", p.prompt}});
  const std::vector<uint64_t> seeds(queries.size(), 0);
  const auto want = local.answer(queries, seeds);
  const auto got = remote->answer(queries, seeds);
  int same = 0, handoffs = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    same += got[i].device_text == want[i].device_text && got[i].called_cloud == want[i].called_cloud &&
            got[i].text == want[i].text;
    handoffs += got[i].called_cloud;
    EXPECT_EQ(got[i].device_tokens, want[i].device_tokens) << got[i].device_text;  // the server's usage
    EXPECT_GT(got[i].device_ms, 0.0);
  }
  std::printf("device server vs loaded device: %d of %zu decisions and replies equal, %d hand-offs\n", same,
              queries.size(), handoffs);
  EXPECT_GE(same, static_cast<int>(queries.size()) - 1);  // a float tie between batchings at most
  EXPECT_GT(handoffs, 0) << "the stream must include hand-offs for the test to mean anything";

  // The collaborative endpoint in front of it: the same handoff object and header as with --device DIR.
  ModelServer endpoint(std::make_shared<CollabResponder>(remote, "collab"), o);
  endpoint.start();
  httplib::Client cli(endpoint.url());
  for (size_t i = 0; i < 3; ++i) {
    const size_t q = i * 4 + 3;
    auto res = cli.Post("/v1/chat/completions", chat(queries[q][0].content), "application/json");
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const auto j = json::parse(res->body);
    const auto& h = j["choices"][0]["handoff"];
    EXPECT_EQ(h["answered_by"], got[q].called_cloud ? "cloud" : "device");
    EXPECT_EQ(res->get_header_value("x-handoff-by"), h["answered_by"].get<std::string>());
    EXPECT_EQ(h["device_text"], got[q].device_text);
    EXPECT_FALSE(h.contains("threshold"));  // no logits from a server: no threshold, no guard
  }
  // Token ids mean nothing to an endpoint with two vocabularies.
  json banned = json::parse(chat(queries[0][0].content));
  banned["logit_bias"] = {{"3", -100}};
  auto refused = cli.Post("/v1/chat/completions", banned.dump(), "application/json");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 400) << refused->body;

  // `handoff eval --device-url`: the collaborative system measured with the device behind the server reads
  // as `eval --model` of the same device does (the same held-out items, decisions and answers).
  const auto dir =
      std::filesystem::temp_directory_path() / ("handoff_remote_eval_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string common = " --cloud " + cloud.base() + " --task chain --n 3 --difficulties 1,4,6 --json ";
  auto by_url = run_cli("eval --device-url " + device_server.url() + "/v1 --device-model device" + common +
                        (dir / "url.json").string());
  ASSERT_EQ(by_url.code, 0) << by_url.output;
  auto by_model = run_cli("eval --model " + kHopsDevice + common + (dir / "model.json").string());
  ASSERT_EQ(by_model.code, 0) << by_model.output;
  auto read = [](const std::filesystem::path& f) {
    std::ifstream in(f);
    return json::parse(in);
  };
  const json u = read(dir / "url.json"), m = read(dir / "model.json");
  EXPECT_FALSE(u.contains("device"));  // no checkpoint here to evaluate alone
  const json ua = u["collaborative"].back(), ma = m["collaborative"].back();
  EXPECT_EQ(ua["n"], 9);
  EXPECT_NEAR(ua["accuracy"].get<double>(), ma["accuracy"].get<double>(), 1.0 / 9 + 1e-9) << u << m;
  EXPECT_NEAR(ua["call_rate"].get<double>(), ma["call_rate"].get<double>(), 1.0 / 9 + 1e-9) << u << m;
  EXPECT_NE(by_url.output.find("collaborative: device " + device_server.url()), std::string::npos)
      << by_url.output;
  std::filesystem::remove_all(dir);
}

// --fallback with a device server: a hand-off whose cloud call fails is asked of the device server again
// with the hand-off token banned (logit_bias; the id from its /tokenize), as the loaded device decodes again
// with it banned — the same flagged answers.
TEST_F(CollabTest, ADeviceServerAnswersItselfWhenTheCloudFailsAsTheLoadedDeviceDoes) {
  ServerOptions o;
  o.port = 0;
  o.log = [](const std::string&) {};
  ModelServer device_server(std::make_shared<LocalModelResponder>(load_checkpoint(kHopsDevice), "device"), o);
  device_server.start();
  CloudClientOptions dc = client_for(device_server.url() + "/v1", 0)->options();
  dc.model = "device";
  auto server = std::make_shared<CloudClient>(dc);
  const auto dead = client_for("http://127.0.0.1:" + std::to_string(free_port()) + "/v1", 0);
  CollabOptions fallback;
  fallback.fallback = true;
  const std::string no_id = error_of([&] { Collaborator unknown(server, Protocol{}, dead, fallback); });
  EXPECT_NE(no_id.find("--device-handoff-token-id"), std::string::npos) << no_id;
  const int id = remote_handoff_token(*server);
  EXPECT_EQ(id, load_checkpoint(kHopsDevice).tokenizer->handoff_id());

  Collaborator remote(server, Protocol{}, dead, fallback, id);
  Collaborator local(std::make_shared<LoadedModel>(load_checkpoint(kHopsDevice)), dead, fallback);
  std::vector<std::vector<ChatMessage>> queries;
  for (int d = 1; d <= 6; ++d)
    for (const auto& p : problems(d, 2)) queries.push_back({{"user", p.prompt}});
  const std::vector<uint64_t> seeds(queries.size(), 0);
  const auto want = local.answer(queries, seeds);
  const auto got = remote.answer(queries, seeds);
  int same = 0, fallbacks = 0;
  for (size_t i = 0; i < queries.size(); ++i) {
    same += got[i].answered_by == want[i].answered_by && got[i].text == want[i].text &&
            got[i].answer == want[i].answer;
    if (got[i].answered_by != AnsweredBy::kDeviceFallback) continue;
    ++fallbacks;
    EXPECT_EQ(got[i].text.find(kHandoffMarker), std::string::npos) << got[i].text;
    EXPECT_FALSE(got[i].cloud_error.empty());
    EXPECT_GT(got[i].device_tokens, static_cast<int64_t>(got[i].device_text.size() / 8));
  }
  std::printf("fallback through the device server: %d of %zu equal to the loaded device's, %d fallbacks\n",
              same, queries.size(), fallbacks);
  EXPECT_GE(same, static_cast<int>(queries.size()) - 1);
  EXPECT_GT(fallbacks, 0) << "the stream must include hand-offs for the test to mean anything";
}

// A device server that is down, or answers garbage: a clear error naming the device server — 502
// device_unavailable at the endpoint, a non-zero exit naming it from the CLI — and what it cannot be asked
// (the threshold, the guard, the fallback) is refused before it is contacted.
TEST_F(CollabTest, ADeviceServerThatIsDownOrAnswersGarbageIsA502NamingIt) {
  CloudServer cloud;
  httplib::Server garbage;
  garbage.Post("/v1/chat/completions", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"choices\": [{\"message\": 17", "application/json");
  });
  // Behind a proxy prefix, a server whose vocabulary reads the marker as two tokens.
  garbage.Post("/proxy/tokenize", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("{\"tokens\": [60, 61]}", "application/json");
  });
  const int port = garbage.bind_to_any_port("127.0.0.1");
  std::thread t([&] { garbage.listen_after_bind(); });
  while (!garbage.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  auto collab =
      std::make_shared<Collaborator>(client_for("http://127.0.0.1:" + std::to_string(port) + "/v1", 0),
                                     Protocol{}, client_for(cloud.base()), CollabOptions{});
  ServerOptions o;
  o.port = 0;
  o.log = [](const std::string&) {};
  ModelServer endpoint(std::make_shared<CollabResponder>(collab, "collab"), o);
  endpoint.start();
  httplib::Client cli(endpoint.url());
  auto res = cli.Post("/v1/chat/completions", chat(problems(1, 1)[0].prompt), "application/json");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 502) << res->body;
  const auto err = json::parse(res->body)["error"];
  EXPECT_EQ(err["code"], "device_unavailable");
  EXPECT_NE(err["message"].get<std::string>().find("device server"), std::string::npos) << err;
  // Nor can it say the hand-off token's id (no /tokenize): --fallback needs it named.
  const std::string no_tokenize = error_of(
      [&] { remote_handoff_token(*client_for("http://127.0.0.1:" + std::to_string(port) + "/v1", 0)); });
  EXPECT_NE(no_tokenize.find("--device-handoff-token-id"), std::string::npos) << no_tokenize;
  const std::string split = error_of([&] {
    remote_handoff_token(*client_for("http://127.0.0.1:" + std::to_string(port) + "/proxy/v1", 0));
  });
  EXPECT_NE(split.find("as 2 tokens [60, 61]"), std::string::npos) << split;
  garbage.stop();
  t.join();

  const std::string dead = "http://127.0.0.1:" + std::to_string(free_port()) + "/v1";
  auto ask = run_cli("ask --device-url " + dead + " --cloud " + cloud.base() + " --device-retries 0 '1+2'");
  EXPECT_NE(ask.code, 0);
  EXPECT_NE(ask.output.find("cannot reach the device server"), std::string::npos) << ask.output;
  auto threshold =
      run_cli("ask --device-url " + dead + " --cloud " + cloud.base() + " --handoff-threshold 0.3 '1+2'");
  EXPECT_NE(threshold.code, 0);
  EXPECT_NE(threshold.output.find("--device DIR"), std::string::npos) << threshold.output;
  auto fallback = run_cli("ask --device-url " + dead + " --cloud " + cloud.base() + " --fallback '1+2'");
  EXPECT_NE(fallback.code, 0);
  EXPECT_NE(fallback.output.find("device server"), std::string::npos) << fallback.output;
  auto eval = run_cli("eval --device-url " + dead + " --task chain --n 1");  // no cloud to collaborate with
  EXPECT_NE(eval.code, 0);
  EXPECT_NE(eval.output.find("--cloud"), std::string::npos) << eval.output;
  auto both =
      run_cli("ask --device " + kDevice + " --device-url " + dead + " --cloud " + cloud.base() + " '1+2'");
  EXPECT_NE(both.code, 0);
  auto guard =
      run_cli("serve --device-url " + dead + " --cloud " + cloud.base() + " --max-call-rate 0.3 --port 0");
  EXPECT_NE(guard.code, 0);
  EXPECT_NE(guard.output.find("--device DIR"), std::string::npos) << guard.output;
}
