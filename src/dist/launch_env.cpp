#include "dist/launch_env.h"

#include <cerrno>
#include <cstdlib>

#include "common/error.h"

namespace handoff {

namespace {

const std::string kHint =
    "launch with torchrun (README, \"Data-parallel training\"), or set RANK, WORLD_SIZE, MASTER_ADDR and "
    "MASTER_PORT consistently; unset them all for a single process";

long parse_int(const char* name, const char* value, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(value, &end, 10);
  if (end == value || *end != '\0' || errno == ERANGE || v < lo || v > hi)
    throw Error(std::string(name) + "='" + value + "' is not an integer in [" + std::to_string(lo) + ", " +
                    std::to_string(hi) + "]",
                kHint);
  return v;
}

}  // namespace

LaunchEnv launch_env_from(const std::function<const char*(const char*)>& get) {
  LaunchEnv e;
  const char* rank = get("RANK");
  const char* world = get("WORLD_SIZE");
  if (!rank && !world) return e;  // alone
  if (!rank || !world)
    throw Error(std::string(rank ? "RANK" : "WORLD_SIZE") + " is set but " + (rank ? "WORLD_SIZE" : "RANK") +
                    " is not",
                kHint);
  constexpr long kMaxRanks = 1 << 16;
  e.world_size = static_cast<int>(parse_int("WORLD_SIZE", world, 1, kMaxRanks));
  e.rank = static_cast<int>(parse_int("RANK", rank, 0, kMaxRanks));
  if (e.rank >= e.world_size)
    throw Error("RANK=" + std::to_string(e.rank) + " is not below WORLD_SIZE=" + std::to_string(e.world_size),
                kHint);
  e.local_world_size = e.world_size;
  if (const char* v = get("LOCAL_WORLD_SIZE"))
    e.local_world_size = static_cast<int>(parse_int("LOCAL_WORLD_SIZE", v, 1, e.world_size));
  e.local_rank = e.rank % e.local_world_size;
  if (const char* v = get("LOCAL_RANK"))
    e.local_rank = static_cast<int>(parse_int("LOCAL_RANK", v, 0, kMaxRanks));
  if (e.local_rank >= e.local_world_size)
    throw Error("LOCAL_RANK=" + std::to_string(e.local_rank) +
                    " is not below LOCAL_WORLD_SIZE=" + std::to_string(e.local_world_size),
                kHint);
  if (const char* v = get("HANDOFF_DIST_TIMEOUT"))
    e.timeout = std::chrono::milliseconds(parse_int("HANDOFF_DIST_TIMEOUT", v, 1, 7 * 24 * 3600) * 1000);
  if (!e.distributed()) return e;
  const char* addr = get("MASTER_ADDR");
  const char* port = get("MASTER_PORT");
  if (!addr || !*addr)
    throw Error("WORLD_SIZE=" + std::to_string(e.world_size) + " but MASTER_ADDR is not set", kHint);
  if (!port) throw Error("WORLD_SIZE=" + std::to_string(e.world_size) + " but MASTER_PORT is not set", kHint);
  e.master_addr = addr;
  e.master_port = static_cast<int>(parse_int("MASTER_PORT", port, 1, 65535));
  if (const char* v = get("TORCHELASTIC_USE_AGENT_STORE")) e.agent_store = std::string(v) == "True";
  if (const char* v = get("TORCHELASTIC_RESTART_COUNT"))
    e.restart_count = static_cast<int>(parse_int("TORCHELASTIC_RESTART_COUNT", v, 0, 1 << 20));
  return e;
}

LaunchEnv launch_env() {
  return launch_env_from([](const char* name) { return std::getenv(name); });
}

}  // namespace handoff
