#pragma once
// The cloud's answers to queries, cached on disk. The cloud LLM is fixed and treated as deterministic (paper
// §4, "Cloud answers during training"), so each (cloud model, protocol, max_tokens, temperature, query) is
// asked once:
// a resumed or repeated run, and every method of the demo sharing the cache, never pays twice — and a run
// that asks with another max_tokens (a reasoning cloud's reply cut at 128 tokens has no answer yet) never
// reads answers fetched under another setting.
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cloud/cloud_client.h"
#include "protocol/protocol.h"

namespace handoff {

struct CloudAnswer {
  std::string content;  // the cloud's whole reply
  bool cached = false;
  double latency_ms = 0;  // the HTTP round trip that fetched it (also for cached answers: as measured then)
  int64_t prompt_tokens = 0, completion_tokens = 0;
};

// What a run's cloud calls cost: the calls and the tokens the cloud billed, priced at USD per million tokens.
struct CloudUsage {
  int64_t calls = 0, prompt_tokens = 0, completion_tokens = 0;
  double cost_usd(double price_in, double price_out) const {
    return (static_cast<double>(prompt_tokens) * price_in +
            static_cast<double>(completion_tokens) * price_out) /
           1e6;
  }
};

class CloudAnswerCache {
 public:
  // `path` empty → memory only. Lines of the file: {"model", "protocol", "max_tokens", "temperature",
  // "query", "content", "prompt_tokens", "completion_tokens", "latency_ms", "run"}; lines of another model or
  // setting are not this cache's (lines without the setting, written before it was recorded, were asked
  // with 128 and 0; without "protocol", with the bare query). The cloud is asked the protocol's cloud
  // conversation (Protocol::cloud_messages); "protocol" is Protocol::cloud_key().
  // `run` tags the lines this cache appends, so that a run killed and resumed counts every call it paid for
  // from the file itself, also those made after its last checkpoint.
  CloudAnswerCache(const CloudClient& client, std::string path, int64_t max_tokens = 128,
                   std::string run = "", Protocol protocol = {});

  CloudAnswer ask(const std::string& query);
  // Asks every uncached query, `concurrency` requests in flight at a time; answers in input order.
  std::vector<CloudAnswer> ask_all(const std::vector<std::string>& queries, int concurrency = 4);

  int64_t calls_made() const { return calls_; }  // HTTP calls by this process (cache misses)
  // Tokens the cloud billed (each reply's usage) for the calls tagged with this cache's `run`, as
  // run_calls().
  int64_t run_prompt_tokens() const { return run_prompt_loaded_ + prompt_tokens_paid_; }
  int64_t run_completion_tokens() const { return run_completion_loaded_ + completion_tokens_paid_; }
  CloudUsage run_usage() const { return {run_calls(), run_prompt_tokens(), run_completion_tokens()}; }
  // HTTP calls tagged with this cache's `run`: those in the file when it was opened plus this process's.
  int64_t run_calls() const { return run_calls_loaded_ + calls_; }
  size_t size() const { return answers_.size(); }

 private:
  const CloudClient& client_;
  std::string path_;
  int64_t max_tokens_;
  std::string run_;
  Protocol protocol_;
  std::string protocol_key_;
  int64_t run_calls_loaded_ = 0, run_prompt_loaded_ = 0, run_completion_loaded_ = 0;
  struct Entry {
    std::string content;
    int64_t prompt_tokens = 0, tokens = 0;
    double latency_ms = 0;  // of the call that fetched it
  };
  std::unordered_map<std::string, Entry> answers_;  // query → answer
  std::mutex mu_;
  int64_t calls_ = 0, prompt_tokens_paid_ = 0, completion_tokens_paid_ = 0;
};

}  // namespace handoff
