#pragma once
// The held-out evaluation set: n test-split problems per difficulty, fixed by a seed, so every method and
// every run is measured on the same items.
#include <cstdint>
#include <vector>

#include "tasks/task.h"

namespace handoff {

std::vector<Problem> make_eval_set(const Task& task, const std::vector<int>& difficulties,
                                   int64_t n_per_difficulty, uint64_t seed, Split split = Split::kTest);

}  // namespace handoff
