#include "runtime/thread_rule.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "common/error.h"

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

namespace {

int local_processes() {
  if (const char* s = std::getenv("LOCAL_WORLD_SIZE")) {
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    if (end != s && *end == '\0' && v > 0 && v < 1 << 16) return static_cast<int>(v);
  }
  return 1;
}

int cores() {
  return static_cast<int>(std::thread::hardware_concurrency());
}

}  // namespace

ThreadChoice choose_threads(int requested, int64_t hidden_size) {
  return choose_threads(requested, hidden_size, cores(), local_processes());
}

TrainingThreads choose_training_threads(int requested_ops, int requested_data, int cores, int local) {
  if (requested_ops < 0 || requested_data < 0)
    throw Error("--threads and --data-threads must be >= 0 (0: the rule of `handoff info`)");
  if (requested_data > 0 && requested_ops > 1)
    throw Error("--threads " + std::to_string(requested_ops) + " with --data-threads " +
                    std::to_string(requested_data) + ": data threads run one ATen thread each",
                "give one of them");
  if (requested_data > 0) return {1, requested_data, "--data-threads " + std::to_string(requested_data)};
  if (requested_ops > 0)
    return {requested_ops, 1, "--threads " + std::to_string(requested_ops) + " (ATen's threads)"};
  const int share = std::max(1, std::max(1, cores) / std::max(1, local));
  const std::string of =
      local > 1 ? std::to_string(cores) + " cores / " + std::to_string(local) + " processes" : "all cores";
  return {1, share,
          "auto: " + std::to_string(share) + " data thread(s) (" + of +
              "), each its share of a batch's rows on one ATen thread"};
}

TrainingThreads choose_training_threads(int requested_ops, int requested_data) {
  return choose_training_threads(requested_ops, requested_data, cores(), local_processes());
}

}  // namespace handoff
