#pragma once
// What `GET /metrics` reports, in Prometheus' text exposition format (0.0.4), on both servers (a model behind
// `handoff serve --model`, and the collaborative endpoint): requests by route and status with their latency,
// tokens, queue depth, and — for collaborative answers — who answered, hand-offs, cloud errors, fallbacks,
// each side's tokens and latency, and the call rate over the last `window` decisions against its target.
// Never a key, a header or any text of a request or a reply: only counts and durations.
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "cloud/openai_types.h"

namespace handoff {

// A Prometheus histogram (cumulative buckets, sum, count) over seconds.
struct Histogram {
  explicit Histogram(std::vector<double> upper_bounds = default_bounds());
  void observe(double seconds);
  static std::vector<double> default_bounds();  // 1 ms … 60 s
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // per bucket (not cumulative); the last is +Inf
  double sum = 0;
  uint64_t count = 0;
};

class ServerMetrics {
 public:
  // `window`: decisions the rolling call rate counts (> 0). `known_paths`: routes labelled by name; any
  // other path is counted as "other", so a client cannot grow the label set.
  ServerMetrics(std::vector<std::string> known_paths, int64_t window = 200);

  void on_request(const std::string& path, int status, double seconds);
  void on_generation(const GenerationResult& r);
  void set_call_rate_target(double target);  // < 0: none
  void set_queue(size_t queued, size_t working, size_t connections);

  // The rolling hand-off rate over the last `window` collaborative decisions (0 with none yet).
  double call_rate() const;
  std::string render() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::string> known_paths_;
  int64_t window_;
  std::map<std::pair<std::string, int>, uint64_t> requests_;  // (path, status) → count
  std::map<std::string, Histogram> request_seconds_;          // path → latency
  uint64_t prompt_tokens_ = 0, completion_tokens_ = 0;
  std::map<std::string, uint64_t> answers_by_;  // "device" | "cloud" | "device-fallback"
  uint64_t handoffs_ = 0, cloud_errors_ = 0;
  std::map<std::string, uint64_t> side_tokens_;  // "device" | "cloud"
  std::map<std::string, Histogram> side_seconds_;
  std::deque<bool> recent_calls_;
  std::map<std::string, uint64_t> guard_changed_;  // "cloud" | "device": where the guard sent a query
  double guard_threshold_ = -1;                    // the last guarded decision's threshold
  double target_ = -1;
  size_t queued_ = 0, working_ = 0, connections_ = 0;
};

}  // namespace handoff
