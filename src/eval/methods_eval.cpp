#include "eval/methods_eval.h"

#include <numeric>

#include "common/error.h"

namespace handoff {

double MethodRow::accuracy() const {
  return correct.empty() ? 0.0 : std::accumulate(correct.begin(), correct.end(), 0.0) / correct.size();
}
double MethodRow::call_rate() const {
  return called.empty() ? 0.0 : std::accumulate(called.begin(), called.end(), 0.0) / called.size();
}

static MethodRow combine(const std::string& name, const DeviceVerdicts& d, const CloudVerdicts& c,
                         const std::vector<Problem>& items, const std::vector<uint8_t>& call,
                         bool device_ran) {
  MethodRow r;
  r.method = name;
  double dt = 0, ct = 0, cms = 0;
  for (size_t i = 0; i < items.size(); ++i) {
    r.called.push_back(call[i]);
    r.correct.push_back(call[i] ? c.correct[i] : d.local_correct[i]);
    r.difficulty.push_back(items[i].difficulty);
    if (device_ran) dt += static_cast<double>(d.tokens[i]);
    if (call[i]) {
      ct += static_cast<double>(c.tokens[i]);
      cms += i < c.latency_ms.size() ? c.latency_ms[i] : 0.0;
    }
  }
  r.device_tokens = items.empty() ? 0 : dt / items.size();
  r.cloud_tokens = items.empty() ? 0 : ct / items.size();
  r.device_ms = r.device_tokens * d.ms_per_token;
  r.cloud_ms = items.empty() ? 0 : cms / items.size();
  return r;
}

MethodRow self_routed(const std::string& name, const DeviceVerdicts& d, const CloudVerdicts& c,
                      const std::vector<Problem>& items) {
  return combine(name, d, c, items, d.handoff, true);
}

MethodRow routed(const std::string& name, const DeviceVerdicts& d, const CloudVerdicts& c,
                 const std::vector<Problem>& items, const std::vector<uint8_t>& route) {
  if (route.size() != items.size()) throw Error("routed: one decision per item is required");
  std::vector<uint8_t> call(items.size());
  for (size_t i = 0; i < items.size(); ++i) call[i] = route[i] || d.handoff[i];
  return combine(name, d, c, items, call, true);
}

}  // namespace handoff
