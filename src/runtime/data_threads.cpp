#include "runtime/data_threads.h"

#include <ATen/ThreadLocalState.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <numeric>
#include <thread>

namespace handoff {

void on_threads(int workers, const std::function<void(int)>& fn) {
  if (workers <= 1) return fn(0);
  std::vector<std::exception_ptr> errors(static_cast<size_t>(workers));
  const at::ThreadLocalState state;
  auto work = [&](int t) {
    try {
      at::ThreadLocalStateGuard guard(state);
      fn(t);
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < workers; ++t) threads.emplace_back(work, t);
  work(0);
  for (auto& th : threads) th.join();
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
}

std::vector<std::vector<size_t>> deal_by_cost(const std::vector<int64_t>& cost, int workers) {
  std::vector<size_t> order(cost.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return cost[a] < cost[b]; });
  std::vector<std::vector<size_t>> lists(static_cast<size_t>(std::max(1, workers)));
  for (size_t k = 0; k < order.size(); ++k) lists[k % lists.size()].push_back(order[k]);
  return lists;
}

namespace {

// What AccumulateGrad does with a new gradient under no grad mode: the first one becomes .grad (a copy here:
// autograd may return a view, and a .grad that is a view cannot be zeroed by the optimiser), later ones are
// added in place.
void accumulate(const std::vector<at::Tensor>& leaves, const std::vector<at::Tensor>& g) {
  for (size_t i = 0; i < leaves.size(); ++i) {
    if (!g[i].defined()) continue;
    at::Tensor& grad = leaves[i].mutable_grad();
    grad = grad.defined() ? grad.add_(g[i]) : g[i].clone();
  }
}

}  // namespace

double backward_in_order(size_t n, int threads, const std::function<at::Tensor(size_t)>& loss_of,
                         const std::vector<at::Tensor>& params) {
  const int T =
      static_cast<int>(std::min<size_t>(static_cast<size_t>(std::max(1, threads)), std::max<size_t>(n, 1)));
  std::vector<double> values(n, 0.0);
  if (T <= 1) {
    for (size_t k = 0; k < n; ++k) {
      at::Tensor loss = loss_of(k);
      loss.backward();
      values[k] = loss.item<double>();
    }
    return std::accumulate(values.begin(), values.end(), 0.0);
  }
  std::vector<at::Tensor> leaves;
  for (const auto& p : params)
    if (p.requires_grad()) leaves.push_back(p);
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex m;
  std::condition_variable turn;
  size_t added = 0;  // items whose gradients are in .grad (guarded by m, as is parked)
  // Gradients of items finished ahead of their turn. A thread parks them and takes the next item rather
  // than waiting (a wait idled a core for up to a fifth of a GAPG update, issue 18); whoever adds item
  // `added` adds the parked ones that follow it. An item starts only within T of `added`, so at most T
  // items' gradients are parked.
  std::map<size_t, std::vector<at::Tensor>> parked;
  on_threads(T, [&](int) {
    for (size_t k; !failed && (k = next.fetch_add(1)) < n;) {
      try {
        {
          std::unique_lock<std::mutex> lock(m);
          turn.wait(lock, [&] { return k <= added + static_cast<size_t>(T) || failed; });
          if (failed) return;
        }
        at::Tensor loss = loss_of(k);
        auto g = torch::autograd::grad({loss}, leaves, {}, /*retain_graph=*/false,
                                       /*create_graph=*/false, /*allow_unused=*/true);
        values[k] = loss.item<double>();
        std::lock_guard<std::mutex> lock(m);
        if (failed) return;
        parked.emplace(k, std::move(g));
        for (auto it = parked.begin(); it != parked.end() && it->first == added; it = parked.erase(it)) {
          accumulate(leaves, it->second);
          ++added;
        }
      } catch (...) {
        {
          // Unwinding released the lock if this thread held it; under it, a waiter cannot miss the wake-up.
          std::lock_guard<std::mutex> lock(m);
          failed = true;
        }
        turn.notify_all();
        throw;
      }
      turn.notify_all();
    }
  });
  return std::accumulate(values.begin(), values.end(), 0.0);
}

}  // namespace handoff
