#include "cli/thread_flag.h"

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "runtime/runtime.h"

namespace handoff {

int64_t checkpoint_width(const std::string& dir) {
  if (dir.empty() || !file_exists(dir + "/config.json")) return 0;
  try {
    const auto j = nlohmann::json::parse(read_file(dir + "/config.json"));
    if (j.is_object() && j.contains("hidden_size") && j["hidden_size"].is_number_integer())
      return j["hidden_size"].get<int64_t>();
  } catch (const std::exception&) {
  }
  return 0;
}

ThreadChoice setup_threads(int requested, int64_t hidden_size) {
  ThreadChoice c = choose_threads(requested, hidden_size);
  configure_threads(c.threads);
  return c;
}

}  // namespace handoff
