#include "eval/eval_set.h"

#include <algorithm>

namespace handoff {

std::vector<int> distinct_difficulties(const std::vector<int>& difficulties) {
  std::vector<int> out;
  for (int d : difficulties)
    if (std::find(out.begin(), out.end(), d) == out.end()) out.push_back(d);
  return out;
}

std::vector<Problem> make_eval_set(const Task& task, const std::vector<int>& difficulties,
                                   int64_t n_per_difficulty, uint64_t seed, Split split) {
  std::vector<Problem> out;
  for (int d : distinct_difficulties(difficulties)) {
    const auto weight = std::count(difficulties.begin(), difficulties.end(), d);
    std::mt19937_64 rng(seed * 1000003ull + static_cast<uint64_t>(d));
    for (int64_t i = 0; i < n_per_difficulty * weight; ++i) out.push_back(task.sample(rng, d, split));
  }
  return out;
}

}  // namespace handoff
