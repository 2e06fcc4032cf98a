#include "eval/eval_set.h"

namespace handoff {

std::vector<Problem> make_eval_set(const Task& task, const std::vector<int>& difficulties,
                                   int64_t n_per_difficulty, uint64_t seed, Split split) {
  std::vector<Problem> out;
  for (int d : difficulties) {
    std::mt19937_64 rng(seed * 1000003ull + static_cast<uint64_t>(d));
    for (int64_t i = 0; i < n_per_difficulty; ++i) out.push_back(task.sample(rng, d, split));
  }
  return out;
}

}  // namespace handoff
