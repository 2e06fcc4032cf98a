#pragma once
// This process's place in a data-parallel job and the collectives it needs (issue 19), on libtorch's own
// c10d: a TCPStore rendezvous and a Gloo process group (CPU tensors). No home-made networking. Alone (no
// torchrun variables) every operation is the identity and nothing is opened.
//
// Failures never hang: a rendezvous or a collective waits at most LaunchEnv::timeout; a rank that dies makes
// the others' next collective fail, and the error names the ranks that did not answer.
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "dist/launch_env.h"

namespace handoff {

class World {
 public:
  // The process-wide world: alone until join().
  static World& instance();
  // Joins the group that `env` describes (rendezvous within env.timeout); alone when !env.distributed().
  // Throws Error naming MASTER_ADDR:MASTER_PORT and the timeout when the rendezvous does not complete.
  void join(const LaunchEnv& env);
  // Leaves the group (the job's end): the other ranks' later collectives fail instead of waiting.
  void leave();

  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  bool main() const { return env_.rank == 0; }
  bool distributed() const { return env_.world_size > 1; }
  const LaunchEnv& env() const { return env_; }

  // In place: every tensor becomes its sum over the ranks (CPU, contiguous; packed into buckets of at most
  // 32 MB, one collective per bucket).
  void all_reduce_sum(const std::vector<at::Tensor>& tensors);
  double sum(double x);
  // In place: every tensor becomes root's.
  // `wait` > 0: how long the others may wait for root here (root computing first, e.g. asking the cloud);
  // else the launch's timeout.
  void broadcast(const std::vector<at::Tensor>& tensors, int root = 0,
                 std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  std::string broadcast_bytes(const std::string& bytes, int root = 0,
                              std::chrono::milliseconds wait = std::chrono::milliseconds(0));
  // Everyone's bytes, indexed by rank.
  std::vector<std::string> all_gather_bytes(const std::string& bytes);
  void barrier();
  // The same `value` on every rank, or an Error naming `what` and the first rank whose value differs from
  // rank 0's (options, checkpoints: ranks started differently must not train together).
  void require_same(const std::string& what, const std::string& value);
  // Seconds spent in collectives so far, waiting for slower ranks included (the benchmark's communication
  // share).
  double comm_seconds() const { return comm_seconds_; }

  ~World();

 private:
  World();
  struct Group;  // c10d's store and process group, kept out of this header (compile time)
  [[noreturn]] void fail(const std::string& op, const std::exception& e);
  LaunchEnv env_;
  std::unique_ptr<Group> group_;
  int64_t ops_ = 0;  // collectives so far (the same on every rank while they run in step)
  double comm_seconds_ = 0;
  template <class F>
  void timed(const std::string& op, F&& f);
};

// Sums every parameter's gradient over the ranks, before clipping and the optimiser step: with each rank's
// loss divided by the global normaliser, the sum is the gradient of the whole batch. A gradient missing on
// some ranks counts as zeros there; one missing on every rank stays missing (the optimiser skips it, as
// alone).
void all_reduce_gradients(World& world, const std::vector<at::Tensor>& parameters);

}  // namespace handoff
