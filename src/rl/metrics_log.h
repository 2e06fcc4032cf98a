#pragma once
// JSONL metrics, one line per logged step. Opening for a resumed run drops lines past the checkpoint's step,
// so the file never holds two histories.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

namespace handoff {

class MetricsLog {
 public:
  MetricsLog(const std::string& path, int64_t resume_step);
  void write(const nlohmann::json& line);
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace handoff
