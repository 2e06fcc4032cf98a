#pragma once
// Data-parallel threads inside one process (issue 18, "threads that add up"). For the small matrices of the
// models trained here, splitting each GEMM across threads (ATen's intra-op parallelism) gained 1.2-1.5x on
// two cores; giving each thread a share of the batch's rows, each thread single-threaded, is what two
// processes do (2.00x, docs/results/2026-12-04-dist-scaling) without the second process. Each worker takes
// its items' gradients with torch::autograd::grad into buffers of its own, and the buffers are added in
// worker order: a run reproduces for a given thread count (another count sums in another order, like another
// number of processes).
#include <ATen/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace handoff {

// Runs fn(t) for t in [0, workers) on a thread each (the calling thread is t = 0), every one with the
// caller's thread-local state (grad and inference mode, autocast); an exception on any worker is rethrown
// here (the lowest t's) after every worker has stopped. One worker: fn(0) on the calling thread.
void on_threads(int workers, const std::function<void(int)>& fn);

// Items [0, cost.size()) dealt to `workers` workers: in order of cost (stable), round robin, so that the
// workers' totals differ by at most the largest item. Fewer items than workers: the last lists are empty.
std::vector<std::vector<size_t>> deal_by_cost(const std::vector<int64_t>& cost, int workers);

// Runs loss_of(k) for the items of each worker list on a thread of its own (the calling thread is worker 0)
// and adds the sum of the losses' gradients into params' .grad; a parameter no loss reaches keeps its .grad.
// With one list: loss.backward() item by item on the calling thread — bit for bit the loop it replaces.
// Returns the sum of the losses' values, worker by worker. Threads as on_threads(); for the speed-up the
// process runs one ATen and one OpenBLAS thread (configure_threads(1)).
double backward_on_threads(const std::vector<std::vector<size_t>>& items,
                           const std::function<at::Tensor(size_t)>& loss_of,
                           const std::vector<at::Tensor>& params);

}  // namespace handoff
