#include "runtime/data_threads.h"

#include <ATen/ThreadLocalState.h>
#include <torch/csrc/autograd/autograd.h>

#include <algorithm>
#include <exception>
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

// grads[i] += g[i] where g[i] is defined (a parameter this loss does not reach has none).
void add_into(std::vector<at::Tensor>& grads, const std::vector<at::Tensor>& g) {
  if (grads.empty()) grads.resize(g.size());
  for (size_t i = 0; i < g.size(); ++i)
    if (g[i].defined()) grads[i] = grads[i].defined() ? grads[i].add_(g[i]) : g[i];
}

}  // namespace

double backward_on_threads(const std::vector<std::vector<size_t>>& items,
                           const std::function<at::Tensor(size_t)>& loss_of,
                           const std::vector<at::Tensor>& params) {
  if (items.size() <= 1) {
    double total = 0;
    for (size_t k : items.empty() ? std::vector<size_t>{} : items[0]) {
      at::Tensor loss = loss_of(k);
      loss.backward();
      total += loss.item<double>();
    }
    return total;
  }
  std::vector<at::Tensor> leaves;
  for (const auto& p : params)
    if (p.requires_grad()) leaves.push_back(p);
  const size_t T = items.size();
  std::vector<std::vector<at::Tensor>> grads(T);
  std::vector<double> totals(T, 0.0);
  on_threads(static_cast<int>(T), [&](int t) {
    for (size_t k : items[t]) {
      at::Tensor loss = loss_of(k);
      add_into(grads[t], torch::autograd::grad({loss}, leaves, {}, /*retain_graph=*/false,
                                               /*create_graph=*/false, /*allow_unused=*/true));
      totals[t] += loss.item<double>();
    }
  });
  for (size_t i = 0; i < leaves.size(); ++i) {
    at::Tensor sum;
    for (size_t t = 0; t < T; ++t)
      if (!grads[t].empty() && grads[t][i].defined())
        sum = sum.defined() ? sum.add_(grads[t][i]) : grads[t][i];
    if (!sum.defined()) continue;
    // A gradient autograd returns may be a view, and a .grad that is one cannot be zeroed by the optimiser.
    at::Tensor& g = leaves[i].mutable_grad();
    g = g.defined() ? g.add_(sum) : sum.clone();
  }
  return std::accumulate(totals.begin(), totals.end(), 0.0);
}

}  // namespace handoff
