#pragma once
// Data-parallel threads inside one process (issue 18, "threads that add up"). For the small matrices of the
// models trained here, splitting each GEMM across threads (ATen's intra-op parallelism) gained 1.0-1.3x on
// two cores; giving each thread whole micro-batches of a step, each thread on one ATen thread, is what two
// processes do (2.00x, docs/results/2026-12-04-dist-scaling) without the second process.
//
// Reproducibility: the threads take the next micro-batch as they free up (a busy core gets less of the work),
// and each micro-batch's gradients are added into .grad in micro-batch order — the additions a single
// thread's backward() makes, in the same order. So the weights do not depend on the thread count: the same
// bytes as one thread, given the same micro-batches.
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

// For k in [0, n): the gradients of loss_of(k) with respect to params added into their .grad, in order of k
// (a parameter no loss reaches keeps its .grad), on `threads` threads (as on_threads) that each take the next
// k as they free up; an item finished before those ahead of it parks its gradients and its thread goes on
// (the thread that adds an item adds the parked ones that follow), and an item starts only within `threads`
// of the next to add, so at most `threads` items' gradients are parked at once. The result equals
// loss_of(k).backward() for k = 0, 1, … on one thread, bit for bit, whatever the thread count — which is what
// one thread runs. Returns the sum of the losses' values in order of k. For the speed-up the process runs one
// ATen and one OpenBLAS thread (configure_threads(1)).
double backward_in_order(size_t n, int threads, const std::function<at::Tensor(size_t)>& loss_of,
                         const std::vector<at::Tensor>& params);

}  // namespace handoff
