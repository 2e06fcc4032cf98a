#pragma once
// A fitted, calibrated router on disk (`handoff route fit` writes it, `handoff route eval` reads it): JSON
//   {"format": "handoff-router", "version": 1, "router": KEY, "device": DIR, "task": NAME,
//    "call_rate_target": r, "threshold": t, "max_new_tokens": n, "state": {…what fit() learned…}}
// KEY is a score router's (router.h) or "handoff-threshold" (then t is the P(<handoff>) threshold).
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace handoff::route {

struct RouterFile {
  std::string router, device, task;
  double call_rate_target = 0.3, threshold = 0;
  int64_t max_new_tokens = 0;
  nlohmann::json state = nlohmann::json::object();
};

void save_router_file(const std::string& path, const RouterFile& f);  // atomic
// Throws Error naming the file and the field on a missing, unparsable or malformed file.
RouterFile load_router_file(const std::string& path);

}  // namespace handoff::route
