#include "collab/cloud_answers.h"

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"

namespace handoff {

namespace {

constexpr double kTemperature = 0.0;  // the cloud is treated as deterministic (paper §4)

}  // namespace

CloudAnswerCache::CloudAnswerCache(const CloudClient& client, std::string path, int64_t max_tokens,
                                   std::string run, Protocol protocol)
    : client_(client),
      path_(std::move(path)),
      max_tokens_(max_tokens),
      run_(std::move(run)),
      protocol_(std::move(protocol)),
      protocol_key_(protocol_.cloud_key()) {
  if (path_.empty() || !file_exists(path_)) return;
  std::istringstream in(read_file(path_));
  const std::string& model = client_.options().model;
  for (std::string line; std::getline(in, line);) {
    try {
      auto j = nlohmann::json::parse(line);
      // Lines written before the setting was recorded were all asked with max_tokens 128 at temperature 0.
      if (j.at("model").get<std::string>() != model || j.value("max_tokens", int64_t{128}) != max_tokens_ ||
          j.value("temperature", 0.0) != kTemperature || j.value("protocol", std::string()) != protocol_key_)
        continue;
      answers_[j.at("query").get<std::string>()] = {
          j.at("content").get<std::string>(), j.value("prompt_tokens", int64_t{0}),
          j.value("completion_tokens", int64_t{0}), j.value("latency_ms", 0.0)};
      if (!run_.empty() && j.value("run", std::string()) == run_) {
        ++run_calls_loaded_;
        run_prompt_loaded_ += j.value("prompt_tokens", int64_t{0});
        run_completion_loaded_ += j.value("completion_tokens", int64_t{0});
      }
    } catch (const std::exception&) {
      // a torn last line after a crash: that answer is simply asked again
    }
  }
}

CloudAnswer CloudAnswerCache::ask(const std::string& query) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = answers_.find(query);
    if (it != answers_.end())
      return {it->second.content, true, it->second.latency_ms, it->second.prompt_tokens, it->second.tokens};
  }
  ChatOptions o;
  o.max_tokens = max_tokens_;
  o.temperature = kTemperature;
  auto r = client_.chat(protocol_.cloud_messages(query), o);
  std::lock_guard<std::mutex> lock(mu_);
  ++calls_;
  prompt_tokens_paid_ += r.usage.prompt_tokens;
  completion_tokens_paid_ += r.usage.completion_tokens;
  answers_[query] = {r.content, r.usage.prompt_tokens, r.usage.completion_tokens, r.latency_ms};
  if (!path_.empty()) {
    std::ofstream out(path_, std::ios::app);
    if (!out) throw Error("cannot append to the cloud answer cache " + path_);
    nlohmann::json line = {{"model", client_.options().model},
                           {"max_tokens", max_tokens_},
                           {"temperature", kTemperature},
                           {"query", query},
                           {"content", r.content},
                           {"prompt_tokens", r.usage.prompt_tokens},
                           {"completion_tokens", r.usage.completion_tokens},
                           {"latency_ms", r.latency_ms}};
    if (!run_.empty()) line["run"] = run_;
    if (!protocol_key_.empty()) line["protocol"] = protocol_key_;
    out << line.dump() << "\n";
  }
  return {r.content, false, r.latency_ms, r.usage.prompt_tokens, r.usage.completion_tokens};
}

std::vector<CloudAnswer> CloudAnswerCache::ask_all(const std::vector<std::string>& queries, int concurrency) {
  std::vector<CloudAnswer> out(queries.size());
  std::atomic<size_t> next{0};
  std::string first_error;
  std::mutex err_mu;
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < queries.size();) {
      try {
        out[i] = ask(queries[i]);
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (first_error.empty()) first_error = e.what();
        next = queries.size();  // stop handing out work
      }
    }
  };
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, concurrency); ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  if (!first_error.empty()) throw Error("cloud request failed: " + first_error);
  return out;
}

}  // namespace handoff
