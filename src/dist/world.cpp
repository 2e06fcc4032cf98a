#include "dist/world.h"

#include <cstdio>
#include <cstring>
#include <thread>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace handoff {

struct World::Group {
  c10::intrusive_ptr<c10d::Store> store;  // prefixed "handoff/": our own keys
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

World::World() = default;
World::~World() = default;

World& World::instance() {
  static World w;
  return w;
}

namespace {

std::string endpoint(const LaunchEnv& e) {
  return e.master_addr + ":" + std::to_string(e.master_port);
}

std::string seconds(std::chrono::milliseconds t) {
  return std::to_string(t.count() / 1000) + " s";
}

bool loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

// The store every rank meets at: torchrun's agent's (all ranks clients, under its attempt prefix), or one
// that rank 0 hosts and waits on until every rank has connected.
c10::intrusive_ptr<c10d::Store> rendezvous_store(const LaunchEnv& e) {
  c10d::TCPStoreOptions o;
  o.port = static_cast<uint16_t>(e.master_port);
  o.timeout = e.timeout;
  if (e.agent_store) {
    auto s = c10::make_intrusive<c10d::TCPStore>(e.master_addr, o);
    return c10::make_intrusive<c10d::PrefixStore>("/worker/attempt_" + std::to_string(e.restart_count), s);
  }
  o.isServer = e.rank == 0;
  o.numWorkers = static_cast<size_t>(e.world_size);
  o.waitWorkers = true;
  o.multiTenant = true;
  return c10::make_intrusive<c10d::TCPStore>(e.master_addr, o);
}

std::shared_ptr<gloo::transport::Device> gloo_device(const LaunchEnv& e) {
  if (const char* ifname = std::getenv("GLOO_SOCKET_IFNAME"))
    return c10d::ProcessGroupGloo::createDeviceForInterface(ifname);
  if (loopback(e.master_addr)) return c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1");
  return c10d::ProcessGroupGloo::createDefaultDevice();
}

}  // namespace

void World::join(const LaunchEnv& env) {
  if (group_) throw Error("internal: World::join called twice");
  env_ = env;
  if (!env.distributed()) return;
  auto g = std::make_unique<Group>();
  const auto t0 = std::chrono::steady_clock::now();
  try {
    auto base = rendezvous_store(env);
    auto opts = c10d::ProcessGroupGloo::Options::create(env.timeout);
    opts->devices.push_back(gloo_device(env));
    opts->threads = 2;
    g->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(c10::make_intrusive<c10d::PrefixStore>("gloo", base),
                                                        env.rank, env.world_size, opts);
    g->store = c10::make_intrusive<c10d::PrefixStore>("handoff", base);
  } catch (const std::exception& e) {
    const std::string what = dynamic_cast<const c10::Error*>(&e)
                                 ? static_cast<const c10::Error&>(e).what_without_backtrace()
                                 : e.what();
    const bool waited = std::chrono::steady_clock::now() - t0 >= env.timeout * 9 / 10;
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                    ": the rendezvous at " + endpoint(env) +
                    (waited ? " did not complete within " + seconds(env.timeout) : " failed") + ": " + what,
                "start every rank (same MASTER_ADDR/MASTER_PORT, WORLD_SIZE=" +
                    std::to_string(env.world_size) + "); HANDOFF_DIST_TIMEOUT sets the wait in seconds");
  }
  group_ = std::move(g);
}

void World::leave() {
  group_.reset();
}

// Which ranks are gone: each survivor marks itself under this operation's number and waits a moment for the
// others' marks; ranks without one did not reach the failure (killed, hung, slow, or stopped by an error of
// their own, which their own output names). Best effort — the store lives
// on rank 0 (or torchrun's agent), and when it is gone too that is the answer.
void World::fail(const std::string& op, const std::exception& e) {
  std::string what = e.what();
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) what = c->what_without_backtrace();
  if (auto nl = what.find('\n'); nl != std::string::npos) what = what.substr(0, nl);
  std::string lost;
  try {
    const std::string key = "failed/" + std::to_string(ops_) + "/";
    group_->store->set(key + std::to_string(rank()), std::vector<uint8_t>{1});
    std::this_thread::sleep_for(std::chrono::seconds(2));
    for (int r = 0; r < size(); ++r)
      if (!group_->store->check({key + std::to_string(r)}))
        lost += (lost.empty() ? "" : ", ") + std::to_string(r);
    lost = lost.empty() ? "" : "; rank(s) " + lost + " did not answer within 2 s (killed, hung or failed)";
  } catch (const std::exception&) {
    lost = env_.agent_store ? "; torchrun's rendezvous store at " + endpoint(env_) + " is gone too"
                            : "; the store at " + endpoint(env_) + " is gone too: rank 0 (its host) is lost";
  }
  group_.reset();  // no further collective on a broken group
  throw Error("rank " + std::to_string(rank()) + " of " + std::to_string(size()) + ": " + op +
                  " failed: " + what + lost,
              "the last checkpoint is intact; restart the job (torchrun --max_restarts) to resume from it");
}

template <class F>
void World::timed(const std::string& op, F&& f) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    f();
  } catch (const std::exception& e) {
    fail(op, e);
  }
  comm_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void World::all_reduce_sum(const std::vector<at::Tensor>& tensors) {
  if (!distributed() || tensors.empty()) return;
  if (!group_) throw Error("rank " + std::to_string(rank()) + ": all_reduce after the group was lost");
  constexpr int64_t kBucket = int64_t{8} << 20;  // elements (32 MB of fp32)
  size_t i = 0;
  while (i < tensors.size()) {
    // One flat buffer per bucket of consecutive tensors of one dtype.
    std::vector<at::Tensor> flat;
    int64_t n = 0;
    size_t j = i;
    while (j < tensors.size() && (j == i || (n + tensors[j].numel() <= kBucket &&
                                             tensors[j].scalar_type() == tensors[i].scalar_type()))) {
      flat.push_back(tensors[j].reshape({-1}));
      n += tensors[j].numel();
      ++j;
    }
    std::vector<at::Tensor> buf{at::cat(flat)};
    ++ops_;
    timed("all_reduce", [&] { group_->pg->allreduce(buf)->wait(); });
    int64_t off = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t m = tensors[k].numel();
      tensors[k].copy_(buf[0].narrow(0, off, m).view(tensors[k].sizes()));
      off += m;
    }
    i = j;
  }
}

double World::sum(double x) {
  if (!distributed()) return x;
  auto t = at::full({1}, x, at::kDouble);
  all_reduce_sum({t});
  return t.item<double>();
}

void World::broadcast(const std::vector<at::Tensor>& tensors, int root, std::chrono::milliseconds wait) {
  if (!distributed()) return;
  if (!group_) throw Error("rank " + std::to_string(rank()) + ": broadcast after the group was lost");
  for (const auto& t : tensors) {
    std::vector<at::Tensor> one{t.is_contiguous() ? t : t.contiguous()};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    if (wait.count() > 0) o.timeout = wait;
    ++ops_;
    timed("broadcast", [&] { group_->pg->broadcast(one, o)->wait(); });
    if (!one[0].is_same(t)) t.copy_(one[0]);
  }
}

std::string World::broadcast_bytes(const std::string& bytes, int root, std::chrono::milliseconds wait) {
  if (!distributed()) return bytes;
  auto len = at::full({1}, static_cast<int64_t>(bytes.size()), at::kLong);
  broadcast({len}, root, wait);
  if (len.item<int64_t>() == 0) return "";
  auto buf = at::empty({len.item<int64_t>()}, at::kByte);
  if (rank() == root) std::memcpy(buf.data_ptr(), bytes.data(), bytes.size());
  broadcast({buf}, root);
  return std::string(static_cast<const char*>(buf.data_ptr()), static_cast<size_t>(buf.numel()));
}

std::vector<std::string> World::all_gather_bytes(const std::string& bytes) {
  if (!distributed()) return {bytes};
  if (!group_) throw Error("rank " + std::to_string(rank()) + ": all_gather after the group was lost");
  // Lengths first, then every rank's bytes padded to the longest.
  auto lens = at::zeros({size()}, at::kLong);
  lens[rank()] = static_cast<int64_t>(bytes.size());
  all_reduce_sum({lens});
  const int64_t longest = lens.max().item<int64_t>();
  std::vector<at::Tensor> in{at::zeros({std::max<int64_t>(longest, 1)}, at::kByte)};
  std::memcpy(in[0].data_ptr(), bytes.data(), bytes.size());
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < size(); ++r) out[0].push_back(at::empty_like(in[0]));
  ++ops_;
  timed("all_gather", [&] { group_->pg->allgather(out, in)->wait(); });
  std::vector<std::string> all;
  for (int r = 0; r < size(); ++r)
    all.emplace_back(static_cast<const char*>(out[0][r].data_ptr()),
                     static_cast<size_t>(lens[r].item<int64_t>()));
  return all;
}

void World::barrier() {
  if (!distributed()) return;
  if (!group_) throw Error("rank " + std::to_string(rank()) + ": barrier after the group was lost");
  ++ops_;
  timed("barrier", [&] { group_->pg->barrier()->wait(); });
}

namespace {

// Where two JSON texts first differ ("options.steps: 31 vs 30"); the texts' beginnings when they are not
// JSON.
std::string first_difference(const std::string& a, const std::string& b) {
  nlohmann::json ja, jb;
  try {
    ja = nlohmann::json::parse(a);
    jb = nlohmann::json::parse(b);
  } catch (const std::exception&) {
    return a.substr(0, 200) + " vs " + b.substr(0, 200);
  }
  std::string path;
  while (ja.is_object() && jb.is_object()) {
    std::string key;
    for (const auto& [k, v] : ja.items())
      if (!jb.contains(k) || jb[k] != v) {
        key = k;
        break;
      }
    if (key.empty())
      for (const auto& [k, v] : jb.items())
        if (!ja.contains(k)) {
          key = k;
          break;
        }
    if (key.empty()) break;
    path += (path.empty() ? "" : ".") + key;
    ja = ja.value(key, nlohmann::json());
    jb = jb.value(key, nlohmann::json());
  }
  return path + ": " + ja.dump().substr(0, 200) + " vs " + jb.dump().substr(0, 200);
}

}  // namespace

void World::require_same(const std::string& what, const std::string& value) {
  if (!distributed()) return;
  const auto all = all_gather_bytes(value);
  for (int r = 1; r < size(); ++r)
    if (all[r] != all[0])
      throw Error("rank " + std::to_string(r) + " was started with other " + what + " than rank 0 (" +
                      first_difference(all[r], all[0]) + ")",
                  "start every rank with the same command line and run directory");
}

void all_reduce_gradients(World& world, const std::vector<at::Tensor>& parameters) {
  if (!world.distributed()) return;
  std::vector<at::Tensor> params;
  for (const auto& p : parameters)
    if (p.requires_grad()) params.push_back(p);
  // Which gradients exist anywhere (a count per parameter), so that one missing everywhere stays missing.
  std::vector<float> mine(params.size());
  for (size_t i = 0; i < params.size(); ++i) mine[i] = params[i].grad().defined() ? 1.0f : 0.0f;
  auto defined = at::from_blob(mine.data(), {static_cast<int64_t>(mine.size())}, at::kFloat).clone();
  world.all_reduce_sum({defined});
  const float* anywhere = defined.data_ptr<float>();
  std::vector<at::Tensor> grads;
  for (size_t i = 0; i < params.size(); ++i) {
    if (anywhere[i] == 0) continue;
    if (!params[i].grad().defined()) params[i].mutable_grad() = at::zeros_like(params[i]);
    grads.push_back(params[i].mutable_grad());
  }
  world.all_reduce_sum(grads);
}

}  // namespace handoff
