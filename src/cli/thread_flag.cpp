#include "cli/thread_flag.h"

#include <CLI/CLI.hpp>
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

void add_training_thread_flags(CLI::App* cmd, int& threads, int& data_threads) {
  cmd->add_option(
         "--threads", threads,
         "ATen's compute threads, one data thread (as the reference checkpoints were trained); 0 and "
         "no --data-threads: the rule of `handoff info`")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--data-threads", data_threads,
                  "Threads that each run a share of every batch's rows on one ATen thread (0: the rule; the "
                  "default, all cores: 2 measured 1.8x one on the quick device)")
      ->check(CLI::NonNegativeNumber);
}

TrainingThreads setup_training_threads(int requested_ops, int requested_data) {
  TrainingThreads t = choose_training_threads(requested_ops, requested_data);
  configure_threads(t.op_threads);
  return t;
}

}  // namespace handoff
