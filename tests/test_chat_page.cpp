// The chat page at GET / of the collaborative endpoint (issue 20), in a real browser: Debian's headless
// Chromium driven by playwright-core (tests/js/chat_page.mjs) loads the page from a loopback endpoint
// (reference device and cloud, budget guard on), types questions and presses Send. Each reply must be
// marked by who answered — the same who /metrics counted — with each side's tokens and milliseconds and the
// device's reasoning, and the page must show the call rate against the budget, as /metrics reports it.
#include <gtest/gtest.h>

#include <httplib.h>

#include <cstdio>
#include <filesystem>
#include <regex>

#include <nlohmann/json.hpp>

#include "cloud/local_model_responder.h"
#include "cloud/model_server.h"
#include "collab/collab_responder.h"
#include "collab/collaborator.h"
#include "eval/eval_set.h"
#include "runtime/runtime.h"
#include "tasks/task.h"
#include "test_support.h"

using namespace handoff;
using json = nlohmann::json;

namespace {

const std::string kSrc = HANDOFF_SOURCE_DIR;
const std::string kJsDir = kSrc + "/tests/js";

std::unique_ptr<ModelServer> serve(std::shared_ptr<Responder> responder, double target = -1,
                                   const std::string& api_key = "") {
  ServerOptions o;
  o.port = 0;
  o.api_key = api_key;
  o.call_rate_target = target;
  o.log = [](const std::string&) {};
  auto s = std::make_unique<ModelServer>(std::move(responder), o);
  s->start();
  return s;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

json run_page(const std::string& url, const std::vector<std::string>& questions,
              const std::string& api_key = "") {
  std::string cmd = "cd " + shell_quote(kJsDir) + " && " +
                    (api_key.empty() ? "" : "API_KEY=" + shell_quote(api_key) + " ") + "node chat_page.mjs " +
                    shell_quote(url);
  for (const auto& q : questions) cmd += " " + shell_quote(q);
  cmd += " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  char buf[65536];
  size_t n;
  while (p && (n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int rc = p ? pclose(p) : -1;
  EXPECT_EQ(rc, 0) << out;
  try {
    return json::parse(out);
  } catch (const std::exception&) {
    ADD_FAILURE() << "not JSON: " << out.substr(0, 2000);
    return json::object();
  }
}

bool browser_installed() {
  return handoff::testing::reference_installed(
      std::filesystem::exists("/usr/bin/chromium") &&
          std::filesystem::exists(kJsDir + "/node_modules/playwright-core/package.json"),
      "Debian chromium and playwright-core under tests/js",
      "apt-get install chromium && npm install --prefix tests/js --no-audit --no-fund");
}

// The reference device and cloud on loopback: the cloud's server and the collaborator to serve.
struct Reference {
  std::unique_ptr<ModelServer> cloud;
  std::shared_ptr<Collaborator> collab;
  Reference() {
    configure_threads(1);
    cloud =
        serve(std::make_shared<LocalModelResponder>(load_checkpoint(kSrc + "/models/cloud-chain"), "cloud"));
    CloudClientOptions c;
    c.base_url = cloud->url() + "/v1";
    c.model = "cloud";
    CollabOptions o;
    o.handoff_threshold = 0.15;  // some hand off, some do not (as in the /metrics test)
    collab = std::make_shared<Collaborator>(
        std::make_shared<LoadedModel>(load_checkpoint(kSrc + "/models/device-chain")),
        std::make_shared<CloudClient>(c), o);
  }
};

}  // namespace

TEST(ChatPageTest, AQuestionTypedInChromiumGetsAnAnswerMarkedByWhoGaveIt) {
  ASSERT_TRUE(browser_installed());
  Reference ref;
  auto endpoint = serve(std::make_shared<CollabResponder>(ref.collab, "collab"), 0.3);

  httplib::Client http(endpoint->url());
  auto page = http.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type").rfind("text/html", 0), 0u);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'self'"), std::string::npos);

  auto task = make_task("chain");
  std::vector<std::string> questions;
  for (int d : {1, 5, 2, 4}) questions.push_back(make_eval_set(*task, {d}, 1, 7).front().prompt);
  const json got = run_page(endpoint->url() + "/", questions);
  ASSERT_FALSE(got.contains("failure")) << got.dump(2);
  EXPECT_EQ(got["page_errors"], json::array()) << got.dump(2);
  EXPECT_EQ(got["model"], "collab");
  ASSERT_EQ(got["replies"].size(), questions.size()) << got.dump(2);
  int clouds = 0;
  for (const auto& r : got["replies"]) {
    ASSERT_FALSE(r["error"].get<bool>()) << r.dump();
    const std::string by = r["answered_by"];
    ASSERT_TRUE(by == "device" || by == "cloud") << by;
    clouds += by == "cloud";
    EXPECT_FALSE(r["text"].get<std::string>().empty());
    const std::string meta = r["meta"];
    EXPECT_TRUE(std::regex_search(meta, std::regex("device \\d+ tok · \\d+ ms"))) << meta;
    EXPECT_EQ(std::regex_search(meta, std::regex("cloud \\d+ tok · \\d+ ms")), by == "cloud") << meta;
    ASSERT_TRUE(r["reasoning"].is_string()) << r.dump();  // the device's reasoning, expandable
    EXPECT_EQ(r["reasoning"].get<std::string>().find("<handoff>") != std::string::npos, by == "cloud");
  }
  // The page's markers are the server's own count, and its call rate is /metrics' over the same answers.
  auto metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  std::smatch m;
  const std::string text = metrics->body;
  ASSERT_TRUE(std::regex_search(text, m, std::regex("\nhandoff_handoffs_total (\\d+)")));
  EXPECT_EQ(std::stoi(m[1]), clouds);
  char expect[64];
  std::snprintf(expect, sizeof expect, "call rate %.2f / budget 0.30", clouds / 4.0);
  EXPECT_EQ(got["rate"], expect);
}

// A server with an API key: the page itself loads without one (a browser cannot send it with the page), shows
// its key field when the API answers 401, says so for a question asked without the key, and answers once the
// key is typed.
TEST(ChatPageTest, WithAnAPIKeyThePageAsksForItAndAnswersOnceItIsTyped) {
  ASSERT_TRUE(browser_installed());
  Reference ref;
  const std::string key = "sk-page-test-31415";
  auto endpoint = serve(std::make_shared<CollabResponder>(ref.collab, "collab"), 0.3, key);
  httplib::Client http(endpoint->url());
  auto page = http.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(http.Get("/v1/models")->status, 401);
  EXPECT_EQ(http.Get("/metrics")->status, 401);

  auto task = make_task("chain");
  const std::vector<std::string> questions = {make_eval_set(*task, {2}, 1, 7).front().prompt,
                                              make_eval_set(*task, {5}, 1, 7).front().prompt};
  const json got = run_page(endpoint->url() + "/", questions, key);
  ASSERT_FALSE(got.contains("failure")) << got.dump(2);
  ASSERT_TRUE(got.contains("without_key")) << got.dump(2);
  EXPECT_TRUE(got["without_key"]["error"].get<bool>()) << got.dump(2);
  EXPECT_NE(got["without_key"]["text"].get<std::string>().find("HTTP 401"), std::string::npos) << got.dump(2);
  EXPECT_EQ(got["model"], "collab");
  ASSERT_EQ(got["replies"].size(), questions.size()) << got.dump(2);
  for (const auto& r : got["replies"]) {
    ASSERT_FALSE(r["error"].get<bool>()) << r.dump();
    const std::string by = r["answered_by"];
    EXPECT_TRUE(by == "device" || by == "cloud") << by;
  }
  EXPECT_TRUE(got["rate"].get<std::string>().find("budget 0.30") != std::string::npos) << got["rate"];
  // The 401s the page met are errors the console reports; nothing else is.
  for (const auto& e : got["page_errors"])
    EXPECT_NE(e.get<std::string>().find("401"), std::string::npos) << e;
}
