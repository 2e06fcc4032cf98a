#pragma once
// The cloud's answers to queries, cached on disk. The cloud LLM is fixed and treated as deterministic (paper
// §4, "Cloud answers during training"), so each (cloud model, max_tokens, temperature, query) is asked once:
// a resumed or repeated run, and every method of the demo sharing the cache, never pays twice — and a run
// that asks with another max_tokens (a reasoning cloud's reply cut at 128 tokens has no answer yet) never
// reads answers fetched under another setting.
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "cloud/cloud_client.h"

namespace handoff {

struct CloudAnswer {
  std::string content;  // the cloud's whole reply
  bool cached = false;
  double latency_ms = 0;  // the HTTP round trip that fetched it (also for cached answers: as measured then)
  int64_t completion_tokens = 0;
};

class CloudAnswerCache {
 public:
  // `path` empty → memory only. Lines of the file: {"model", "max_tokens", "temperature", "query",
  // "content", "completion_tokens", "latency_ms", "run"}; lines of another model or setting are not
  // this cache's (lines without the setting, written before it was recorded, were asked with 128 and 0).
  // `run` tags the lines this cache appends, so that a run killed and resumed counts every call it paid for
  // from the file itself, also those made after its last checkpoint.
  CloudAnswerCache(const CloudClient& client, std::string path, int64_t max_tokens = 128,
                   std::string run = "");

  CloudAnswer ask(const std::string& query);
  // Asks every uncached query, `concurrency` requests in flight at a time; answers in input order.
  std::vector<CloudAnswer> ask_all(const std::vector<std::string>& queries, int concurrency = 4);

  int64_t calls_made() const { return calls_; }  // HTTP calls by this process (cache misses)
  // HTTP calls tagged with this cache's `run`: those in the file when it was opened plus this process's.
  int64_t run_calls() const { return run_calls_loaded_ + calls_; }
  size_t size() const { return answers_.size(); }

 private:
  const CloudClient& client_;
  std::string path_;
  int64_t max_tokens_;
  std::string run_;
  int64_t run_calls_loaded_ = 0;
  struct Entry {
    std::string content;
    int64_t tokens = 0;
    double latency_ms = 0;  // of the call that fetched it
  };
  std::unordered_map<std::string, Entry> answers_;  // query → answer
  std::mutex mu_;
  int64_t calls_ = 0;
};

}  // namespace handoff
