#pragma once
// The held-out evaluation set: n test-split problems per difficulty, fixed by a seed, so every method and
// every run is measured on the same items.
//
// A difficulty listed k times weighs k: it gets k * n problems, drawn on as one stream from that
// difficulty's own seed (so its first n are the items a single listing gives, and no item repeats). This is
// how a preset states a mix that is not uniform over the classes (e.g. hops-mix: most items of the class the
// device solves, the way real queries are mostly ones a device can answer).
#include <cstdint>
#include <vector>

#include "tasks/task.h"

namespace handoff {

std::vector<Problem> make_eval_set(const Task& task, const std::vector<int>& difficulties,
                                   int64_t n_per_difficulty, uint64_t seed, Split split = Split::kTest);

// The distinct difficulties of a (possibly weighted) list, in the order they first appear.
std::vector<int> distinct_difficulties(const std::vector<int>& difficulties);

}  // namespace handoff
