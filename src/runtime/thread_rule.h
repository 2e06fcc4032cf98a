#pragma once
// How many compute threads a command uses when the user does not say (issue 18, "threads that add up").
//
// Why a rule and not "all cores": ATen forks and joins its OpenMP team around every op, and at the embedded
// default's widths an op is a few microseconds of work, so a second thread costs as much as it saves.
// Measured with bench_train_step (OMP_WAIT_POLICY=PASSIVE, idle and with the other core busy, 2 threads over
// 1): d = 64 0.92–1.19×, d = 128 1.19–1.47×, d = 256 1.53–1.71×, d = 512 1.66–1.71×. Below
// kMinWidthForThreads one thread is never slower; from it on, every core of this process's share helps.
#include <cstdint>
#include <string>

namespace handoff {

inline constexpr int64_t kMinWidthForThreads = 128;

struct ThreadChoice {
  int threads = 1;
  std::string why;  // one line for `handoff info` and the commands' start-up line
};

// requested > 0: that many (the user's --threads). Otherwise: one thread for a model narrower than
// kMinWidthForThreads, else `cores` split among the processes of this machine (`local_processes`, torchrun's
// LOCAL_WORLD_SIZE; at least 1 each). hidden_size <= 0 (unknown) counts as wide.
ThreadChoice choose_threads(int requested, int64_t hidden_size, int cores, int local_processes);

// The same with this machine's cores and LOCAL_WORLD_SIZE from the environment (1 when unset or invalid).
ThreadChoice choose_threads(int requested, int64_t hidden_size);

// Training (`sft`, `train`) has a second way to use threads: data threads (runtime/data_threads.h), each
// running whole micro-batches (or, without micro-batches, a share of the rows) on one ATen thread. Measured
// with bench/run_thread_scaling.sh (2 idle cores, steps/s over one thread;
// docs/results/2026-12-04-thread-scaling): SFT d = 64 / 128 / 256: 2 data threads 1.75x / 1.68x / 1.98x, 2
// ATen threads 0.96x / 1.10x / 1.44x. So training's default is data threads, at every width; `--threads N`
// alone keeps ATen's threads (as the reference checkpoints were trained, e.g. models/device-hops at --threads
// 2).
struct TrainingThreads {
  int op_threads = 1;    // ATen's and OpenBLAS's threads
  int data_threads = 1;  // threads that split the batch
  std::string why;
};

// requested_ops > 0 and requested_data == 0: that many ATen threads, one data thread. requested_data > 0:
// that many data threads on one ATen thread each (with requested_ops > 1 too: Error). Neither: the core
// share (as choose_threads's) as data threads. Negative: Error.
TrainingThreads choose_training_threads(int requested_ops, int requested_data, int cores,
                                        int local_processes);
TrainingThreads choose_training_threads(int requested_ops, int requested_data);

}  // namespace handoff
