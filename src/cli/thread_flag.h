#pragma once
// The commands' thread setup: --threads N, or the measured rule of runtime/thread_rule.h applied to the model
// the command will run (its width read from the checkpoint's config.json).
#include <cstdint>
#include <string>

#include "runtime/thread_rule.h"

namespace CLI {
class App;
}

namespace handoff {

// hidden_size of checkpoint DIR's config.json; 0 when DIR is empty or its config cannot be read (the load
// that follows reports that with its own error).
int64_t checkpoint_width(const std::string& dir);

// Chooses (thread_rule.h) and configures ATen's and OpenBLAS's threads; returns the choice.
ThreadChoice setup_threads(int requested, int64_t hidden_size);
// --threads (ATen's threads) and --data-threads (threads that split each batch) of `sft` and `train`.
void add_training_thread_flags(CLI::App* cmd, int& threads, int& data_threads);

// The same for training commands (thread_rule.h choose_training_threads); configures ATen's threads.
TrainingThreads setup_training_threads(int requested_ops, int requested_data);

inline ThreadChoice setup_threads_for(int requested, const std::string& model_dir) {
  return setup_threads(requested, checkpoint_width(model_dir));
}

}  // namespace handoff
