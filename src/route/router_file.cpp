#include "route/router_file.h"

#include <cmath>

#include "common/atomic_file.h"
#include "common/error.h"

namespace handoff::route {

void save_router_file(const std::string& path, const RouterFile& f) {
  const nlohmann::json j = {{"format", "handoff-router"},
                            {"version", 1},
                            {"router", f.router},
                            {"device", f.device},
                            {"task", f.task},
                            {"call_rate_target", f.call_rate_target},
                            {"threshold", f.threshold},
                            {"max_new_tokens", f.max_new_tokens},
                            {"state", f.state}};
  write_file_atomic(path, j.dump(2) + "\n");
}

RouterFile load_router_file(const std::string& path) {
  const std::string hint = "write it again with `handoff route fit`";
  if (!file_exists(path)) throw Error("router file " + path + " does not exist", hint);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error("router file " + path + ": not valid JSON: " + e.what(), hint);
  }
  if (!j.is_object() || j.value("format", std::string()) != "handoff-router" || j.value("version", 0) != 1)
    throw Error("router file " + path + ": not a handoff router file (format/version)", hint);
  RouterFile f;
  try {
    f.router = j.at("router").get<std::string>();
    f.device = j.at("device").get<std::string>();
    f.task = j.at("task").get<std::string>();
    f.call_rate_target = j.at("call_rate_target").get<double>();
    f.threshold = j.at("threshold").get<double>();
    f.max_new_tokens = j.at("max_new_tokens").get<int64_t>();
    f.state = j.at("state");
  } catch (const nlohmann::json::exception& e) {
    throw Error("router file " + path + ": " + e.what(), hint);
  }
  if (!std::isfinite(f.threshold) || !(f.call_rate_target >= 0 && f.call_rate_target <= 1) ||
      f.max_new_tokens <= 0)
    throw Error("router file " + path + ": threshold, call_rate_target or max_new_tokens out of range", hint);
  return f;
}

}  // namespace handoff::route
