#include "cloud/server_metrics.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "common/error.h"

namespace handoff {

namespace {

// The shortest of %.15g / %.17g that reads back as v: 0.3 stays "0.3" (a bucket bound or a target an
// operator typed), and no value loses a bit.
std::string number(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.15g", v);
  if (std::strtod(buf, nullptr) != v) std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void header(std::string& out, const std::string& name, const std::string& type, const std::string& help) {
  out += "# HELP " + name + " " + help + "\n# TYPE " + name + " " + type + "\n";
}

void histogram_lines(std::string& out, const std::string& name, const std::string& labels,
                     const Histogram& h) {
  const std::string sep = labels.empty() ? "" : labels + ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < h.bounds.size(); ++i) {
    cumulative += h.counts[i];
    out +=
        name + "_bucket{" + sep + "le=\"" + number(h.bounds[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  out += name + "_bucket{" + sep + "le=\"+Inf\"} " + std::to_string(h.count) + "\n";
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += name + "_sum" + braces + " " + number(h.sum) + "\n";
  out += name + "_count" + braces + " " + std::to_string(h.count) + "\n";
}

}  // namespace

Histogram::Histogram(std::vector<double> upper_bounds)
    : bounds(std::move(upper_bounds)), counts(bounds.size() + 1, 0) {}

std::vector<double> Histogram::default_bounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

void Histogram::observe(double seconds) {
  const auto it = std::lower_bound(bounds.begin(), bounds.end(), seconds);  // first bound ≥ seconds
  ++counts[static_cast<size_t>(it - bounds.begin())];
  sum += seconds;
  ++count;
}

ServerMetrics::ServerMetrics(std::vector<std::string> known_paths, int64_t window)
    : known_paths_(std::move(known_paths)), window_(window) {
  if (window_ <= 0) throw Error("the call-rate window must be positive (got " + std::to_string(window) + ")");
}

void ServerMetrics::on_request(const std::string& path, int status, double seconds) {
  const bool known = std::find(known_paths_.begin(), known_paths_.end(), path) != known_paths_.end();
  const std::string label = known ? path : "other";
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{label, status}];
  request_seconds_[label].observe(seconds);
}

void ServerMetrics::on_generation(const GenerationResult& r) {
  const Usage u = r.usage();
  std::lock_guard<std::mutex> lock(mu_);
  prompt_tokens_ += static_cast<uint64_t>(u.prompt_tokens);
  completion_tokens_ += static_cast<uint64_t>(u.completion_tokens);
  for (const auto& c : r.choices) {
    if (!c.handoff) continue;
    const HandoffInfo& h = *c.handoff;
    ++answers_by_[h.answered_by];
    handoffs_ += h.called_cloud;
    cloud_errors_ += !h.cloud_error.empty();
    side_tokens_["device"] += static_cast<uint64_t>(h.device_tokens);
    side_tokens_["cloud"] += static_cast<uint64_t>(h.cloud_tokens);
    side_seconds_["device"].observe(h.device_ms / 1000.0);
    if (h.called_cloud) side_seconds_["cloud"].observe(h.cloud_ms / 1000.0);
    if (h.guard_changed) {
      guard_threshold_ = h.threshold;
      guard_changed_["cloud"] += *h.guard_changed && h.called_cloud;
      guard_changed_["device"] += *h.guard_changed && !h.called_cloud;
    }
    recent_calls_.push_back(h.called_cloud);
    if (static_cast<int64_t>(recent_calls_.size()) > window_) recent_calls_.pop_front();
  }
}

void ServerMetrics::set_call_rate_target(double target) {
  std::lock_guard<std::mutex> lock(mu_);
  target_ = target;
}

void ServerMetrics::set_queue(size_t queued, size_t working, size_t connections) {
  std::lock_guard<std::mutex> lock(mu_);
  queued_ = queued;
  working_ = working;
  connections_ = connections;
}

double ServerMetrics::call_rate() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (recent_calls_.empty()) return 0.0;
  return static_cast<double>(std::count(recent_calls_.begin(), recent_calls_.end(), true)) /
         static_cast<double>(recent_calls_.size());
}

std::string ServerMetrics::render() const {
  const double rate = call_rate();
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  header(out, "handoff_http_requests_total", "counter", "Requests answered, by route and HTTP status.");
  for (const auto& [key, n] : requests_)
    out += "handoff_http_requests_total{path=\"" + key.first + "\",status=\"" + std::to_string(key.second) +
           "\"} " + std::to_string(n) + "\n";
  header(out, "handoff_http_request_duration_seconds", "histogram",
         "From a request's header to its reply, by route.");
  for (const auto& [path, h] : request_seconds_)
    histogram_lines(out, "handoff_http_request_duration_seconds", "path=\"" + path + "\"", h);
  header(out, "handoff_prompt_tokens_total", "counter", "Prompt tokens of answered completions.");
  out += "handoff_prompt_tokens_total " + std::to_string(prompt_tokens_) + "\n";
  header(out, "handoff_completion_tokens_total", "counter", "Completion tokens of answered completions.");
  out += "handoff_completion_tokens_total " + std::to_string(completion_tokens_) + "\n";
  header(out, "handoff_queue_depth", "gauge", "Requests waiting for a worker thread.");
  out += "handoff_queue_depth " + std::to_string(queued_) + "\n";
  header(out, "handoff_requests_in_progress", "gauge", "Requests a worker thread is answering.");
  out += "handoff_requests_in_progress " + std::to_string(working_) + "\n";
  header(out, "handoff_open_connections", "gauge", "Open client connections.");
  out += "handoff_open_connections " + std::to_string(connections_) + "\n";
  header(out, "handoff_answers_total", "counter", "Collaborative answers, by who answered.");
  for (const char* by : {"device", "cloud", "device-fallback"})
    out += std::string("handoff_answers_total{by=\"") + by + "\"} " +
           std::to_string(answers_by_.count(by) ? answers_by_.at(by) : 0) + "\n";
  header(out, "handoff_handoffs_total", "counter", "Device decisions to hand the query to the cloud.");
  out += "handoff_handoffs_total " + std::to_string(handoffs_) + "\n";
  header(out, "handoff_cloud_errors_total", "counter", "Hand-offs whose cloud call failed.");
  out += "handoff_cloud_errors_total " + std::to_string(cloud_errors_) + "\n";
  header(out, "handoff_side_tokens_total", "counter", "Tokens generated by each side of the collaboration.");
  for (const char* side : {"device", "cloud"})
    out += std::string("handoff_side_tokens_total{side=\"") + side + "\"} " +
           std::to_string(side_tokens_.count(side) ? side_tokens_.at(side) : 0) + "\n";
  header(out, "handoff_side_duration_seconds", "histogram", "Each side's time per collaborative answer.");
  for (const auto& [side, h] : side_seconds_)
    histogram_lines(out, "handoff_side_duration_seconds", "side=\"" + side + "\"", h);
  header(out, "handoff_call_rate", "gauge",
         "Share of the last decisions (see _window) that called the cloud.");
  out += "handoff_call_rate " + number(rate) + "\n";
  header(out, "handoff_call_rate_window", "gauge", "Decisions the rolling call rate counts at most.");
  out += "handoff_call_rate_window " + std::to_string(window_) + "\n";
  if (target_ >= 0) {
    header(out, "handoff_call_rate_target", "gauge", "The call-rate budget (--max-call-rate).");
    out += "handoff_call_rate_target " + number(target_) + "\n";
  }
  if (guard_threshold_ >= 0) {
    header(out, "handoff_guard_threshold", "gauge",
           "The hand-off threshold the budget guard gave the last decision.");
    out += "handoff_guard_threshold " + number(guard_threshold_) + "\n";
    header(out, "handoff_guard_changed_total", "counter",
           "Decisions the budget guard changed, by where it sent the query.");
    for (const auto& [to, n] : guard_changed_)
      out += "handoff_guard_changed_total{to=\"" + to + "\"} " + std::to_string(n) + "\n";
  }
  return out;
}

}  // namespace handoff
