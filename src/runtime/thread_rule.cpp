#include "runtime/thread_rule.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace handoff {

ThreadChoice choose_threads(int requested, int64_t hidden_size, int cores, int local_processes) {
  if (requested > 0) return {requested, "--threads " + std::to_string(requested)};
  const int share = std::max(1, std::max(1, cores) / std::max(1, local_processes));
  const std::string of_share = local_processes > 1
                                   ? " (" + std::to_string(cores) + " cores / " +
                                         std::to_string(local_processes) + " processes on this machine)"
                                   : " (all cores)";
  if (hidden_size > 0 && hidden_size < kMinWidthForThreads)
    return {1, "auto: width " + std::to_string(hidden_size) + " < " + std::to_string(kMinWidthForThreads) +
                   ", where a second thread measured 0.92-1.19x of one (bench_train_step)"};
  const std::string width = hidden_size > 0 ? "width " + std::to_string(hidden_size) : "width unknown";
  return {share, "auto: " + width + " >= " + std::to_string(kMinWidthForThreads) + ", " +
                     std::to_string(share) + " thread(s)" + of_share};
}

ThreadChoice choose_threads(int requested, int64_t hidden_size) {
  int local = 1;
  if (const char* s = std::getenv("LOCAL_WORLD_SIZE")) {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (end != s && *end == '\0' && v > 0 && v < 1 << 16) local = static_cast<int>(v);
  }
  return choose_threads(requested, hidden_size, static_cast<int>(std::thread::hardware_concurrency()), local);
}

}  // namespace handoff
