#pragma once
// The torchrun contract (issue 19): a data-parallel process learns its place from the environment that
// torchrun — or Slurm, or a Kubernetes training operator — sets: RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT. With none of them set, the process is alone and everything runs
// exactly as a single process.
#include <chrono>
#include <functional>
#include <string>

namespace handoff {

struct LaunchEnv {
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_addr;
  int master_port = 0;
  // torchrun's static rendezvous: its agent hosts the TCPStore at MASTER_ADDR:MASTER_PORT and every worker
  // is a client, under the prefix "/worker/attempt_<restart count>" (what torch.distributed does with
  // TORCHELASTIC_USE_AGENT_STORE=True); otherwise rank 0 hosts the store.
  bool agent_store = false;
  int restart_count = 0;
  // How long a rendezvous or a collective may wait for the other ranks (HANDOFF_DIST_TIMEOUT seconds,
  // default 300: a rank saving a checkpoint or waiting on the cloud keeps the others waiting that long).
  std::chrono::milliseconds timeout{300000};

  bool distributed() const { return world_size > 1; }
};

// Reads the variables through `get` (std::getenv in the program; a map in tests). Throws Error naming the
// variable for an inconsistent set: RANK without WORLD_SIZE or the reverse, a non-integer, RANK ≥
// WORLD_SIZE, LOCAL_RANK ≥ LOCAL_WORLD_SIZE, WORLD_SIZE > 1 without MASTER_ADDR or MASTER_PORT, a port
// outside 1..65535, a timeout ≤ 0.
LaunchEnv launch_env_from(const std::function<const char*(const char*)>& get);
LaunchEnv launch_env();  // from this process's environment

}  // namespace handoff
